// Package resynth resynthesises whole circuits block by block, for a gate
// set.
//
// Partition splits a circuit into blocks of at most Request.BlockQubits
// qubits (2 to 4), scanning from its start (PartitionBackward, with
// Request.Backward, from its end: the blocks' edges fall elsewhere, so
// passes of both directions in turn find what the other's blocks cut);
// measurements, resets, barriers and conditioned ops are
// fences that stay in place, in order. Every block that holds a gate
// outside the gate set, and every block of two or more of the set's
// two-qubit gates, becomes one synth task (package synth), all of them in
// one Map: a block outside the set is retargeted (replaced whatever its
// count; when no circuit reaches the threshold, by the closest one,
// counted in the error bound), a block inside it only by fewer two-qubit
// gates within the threshold. A conditioned gate outside the set is
// synthesised alone and each gate of its replacement keeps the condition.
// A 4-qubit block inside the set is handed to its synthesis as a known
// circuit (synth.Request.Known: its CNOTs removed one at a time first)
// and its search is bounded by synth.WidePatience.
// Assemble puts the blocks back in order; runs of single-qubit gates are
// then merged per qubit and written in the set's basis (u3, or rz and
// sx). A compilation is thus a three-level fork-join: resynth maps synth
// tasks, which map instantiate tasks, which map their starting points.
//
// NewPlan and Plan.Finish are the two halves of Resynthesize, for a
// caller that places the synth tasks itself (qlaunch compile maps them
// from its client, over the whole tree, and counts them as they
// complete): the result depends only on the circuit, the request and the
// tasks' values in task order, never on where or when they ran.
//
// # Unit fits
//
// FitUnits replaces each 4-qubit block of a circuit whose two-qubit
// gates lie on a line (three pairs a-b, b-c, c-d) and that has more than
// 12 CNOTs by six 2-CNOT units along the line, a triangle or a brick,
// when the fit reaches the threshold. A free-fermion circuit on 4
// qubits — a transverse-field Ising chain's Trotter steps, ZZ and X
// rotations, in the Hadamard basis — always has that form (Kökcü et al.,
// PRA 105, 032420, 2022), however many steps it has. Trotter angles keep
// such a block near the identity, where fits from random starts end on
// near misses, so the fit starts on the block with its angles scaled 5×
// and follows them down to the block's own in 40 fits, each from the
// last one's parameters (polished, instantiate.Options.Polish). qlaunch
// compile runs it on the input at levels 3 and 4 with 4-qubit blocks.
//
// # Permutations
//
// With Request.PermuteInputs, a block that is the first on every one of
// its qubits (a leading block of single-qubit gates joined to it) is also
// synthesised up to each permutation of its input qubits, and with
// PermuteOutputs a last block up to each permutation of its outputs; the
// fewest two-qubit gates win, the block as it is on a tie.
// Result.PermutedInputs and PermutedOutputs say where the input's qubits
// went (the output equals PermutationSwaps(Inverse(PermutedInputs)), the
// input, then PermutationSwaps(PermutedOutputs)): a caller whose qubits
// are relabelled anyway — a circuit mapped onto a coupling graph, whose
// initial and final mappings absorb them — gets the swaps at the ends of
// a circuit (a QFT's reversal) for free.
//
// # Gate sets
//
// ParseGateSet reads "cx,u3" (the default), "cz,rz,sx", "zz,rz,sx"
// (rzz(π/2)), "rxx,rz,sx" (rxx(π/2)), "ryy,rz,sx" (ryy(π/2)),
// "sqrtiswap,rz,sx", any other pairing of these two-qubit gates with u3
// or rz,sx, or NAME,rz,sx (or NAME,u3) with the 4×4 matrix of a gate of
// one's own. ryy, √iSWAP and a gate of one's own are written as OpenQASM
// gate definitions (gate NAME a,b { … }), so the output reads back.
//
// # Errors
//
// The distance of a block is d = 1 − |Tr(U†V)|/N; its square root is a
// metric, so the whole circuit's distance is at most (Σ √dᵢ)², the error
// bound reported (Result.ErrorBound; Result.BlockDistances is Σ dᵢ).
// Request.ErrorThreshold, when set, sets each block's threshold to
// ErrorThreshold/k² for k synthesised blocks, and a bound above it fails.
//
// # Kernel
//
// Kernels returns resynth together with the synth and instantiate kernels:
//
//	resynth  payload: a JSON Request,
//	         {"qasm": "OPENQASM 2.0; …", "seed": 1, "block_qubits": 3, "threshold": 1e-10,
//	          "error_threshold": 1e-8, "gates": "cz,rz,sx", "gate_matrix": [[[re, im], …], …],
//	          "backward": false}
//	         (only qasm is required); output: a JSON Result,
//	         {"qasm": "…", "cnots_before": 40, "cnots_after": 22,
//	          "two_qubit_gates_before": 40, "two_qubit_gates_after": 22, "blocks": 9,
//	          "synthesised": 7, "replaced": 5, "error_bound": 3e-13, "block_distances": 1e-13,
//	          "unreached": 0, "gates": "cz,rz,sx", "seconds": 1.9}
//
// The per-block threshold bounds each block's Hilbert–Schmidt distance;
// instantiations converge well below it (about 1e-14), so the whole
// circuit's distance stays far inside the threshold too, which the
// qlaunch compile command checks.
package resynth
