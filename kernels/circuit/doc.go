// Package circuit holds quantum circuits and their unitaries: the gates of
// OpenQASM 2.0's qelib1.inc that the compilation kernels use, a Circuit type,
// the unitary of a circuit of up to MaxUnitaryQubits qubits, the
// Hilbert–Schmidt distance between unitaries, and an OpenQASM 2.0 reader
// (ParseQASM) and writer (WriteQASM, FormatQASM).
//
// # Conventions
//
// Qubit 0 is the most significant bit of a basis-state index (big-endian,
// as in textbooks and BQSKit): on two qubits, |q0 q1⟩ = |10⟩ is index 2, and
// CX(0, 1) is the matrix with rows 2 and 3 of the identity swapped. Matrices
// are dense, row-major complex128 (Matrix).
//
// The distance between unitaries U and V of dimension N is the
// Hilbert–Schmidt cost
//
//	Distance(U, V) = 1 − |Tr(U†V)| / N
//
// which is 0 exactly when V = e^{iφ}U for some global phase φ, and at most
// 1. It is the figure the instantiation and synthesis kernels drive below
// their success threshold (1e-10 by default).
//
// # Gates
//
// id, x, y, z, h, s, sdg, t, tdg, sx, sxdg, rx(θ), ry(θ), rz(θ), u1(λ),
// u2(φ,λ), u3(θ,φ,λ) (also spelled U), cx (also CX), cz, swap, cu1(λ),
// rzz(θ), rxx(θ) and ccx, with the matrices of qelib1.inc
// (rz(θ) = diag(e^{-iθ/2}, e^{iθ/2}), rzz(θ) = exp(−iθ/2 Z⊗Z),
// rxx(θ) = exp(−iθ/2 X⊗X)); and constant two-qubit gates defined in the
// circuit (Defined, Circuit.Defs). CNOTs counts cx and cz as one CNOT
// each, rzz, rxx and cu1 as two, swap and a defined gate as three, ccx as
// six, their usual decompositions.
//
// Besides gates, a circuit holds measurements into classical bits,
// resets, barriers, and conditions on classical registers (OpenQASM's
// if), kept in order; Unitary and Simulate refuse them, UnitaryPart drops
// them.
//
// # OpenQASM
//
// ParseQASM reads OPENQASM 2.0 with include "qelib1.inc", any number of
// qreg (concatenated in declaration order) and creg (of at most 64 bits),
// measure, reset, barrier, if (c==n) before a gate, measure or reset,
// definitions of constant two-qubit gates (gate NAME a,b { … }, whose
// body may use earlier definitions and is stored expanded), register
// broadcasting (h q; cx q, r; measure q -> c;) and parameter expressions
// over numbers, pi, + − * / ^, parentheses and sin, cos, tan, exp, ln,
// sqrt. Gate definitions with parameters or on other than two qubits,
// opaque, other include files and unknown gates are refused with a
// *SyntaxError naming line and column and wrapping ErrUnsupported; any
// other mistake is a *SyntaxError too. WriteQASM writes the definitions,
// one quantum register q (named apart from the classical registers), the
// classical registers and the operations, parameters in the shortest
// form that reads back to the same float64, so ParseQASM(FormatQASM(c))
// equals c.
package circuit
