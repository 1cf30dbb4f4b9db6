package circuit

import (
	"math"
	"math/cmplx"
)

// Gate is one of the supported gates.
type Gate uint8

// The supported gates, named as in qelib1.inc.
const (
	ID Gate = iota + 1
	X
	Y
	Z
	H
	S
	Sdg
	T
	Tdg
	RX
	RY
	RZ
	U1
	U2
	U3
	CX
	CZ
	Swap
	CCX
	SX   // √X
	SXdg // √X†
	RZZ  // exp(−iθ/2 Z⊗Z)
	RXX  // exp(−iθ/2 X⊗X)
	CU1  // controlled u1(λ)
	Measure
	Reset
	// Barrier is one qubit of an OpenQASM barrier statement; a barrier on
	// several qubits is a run of Barrier ops, each after the first with
	// Op.Arg 1.
	Barrier
	// Defined is a constant two-qubit gate defined in the circuit: Op.Arg
	// indexes Circuit.Defs.
	Defined
	numGates
)

type gateInfo struct {
	name   string
	arity  int
	params int
	cnots  int
	kind   gateKind
}

// gateKind tells unitary gates from the operations that are not.
type gateKind uint8

const (
	unitary    gateKind = iota
	nonUnitary          // measure, reset
	directive           // barrier
)

var gateTable = [numGates]gateInfo{
	ID:      {"id", 1, 0, 0, unitary},
	X:       {"x", 1, 0, 0, unitary},
	Y:       {"y", 1, 0, 0, unitary},
	Z:       {"z", 1, 0, 0, unitary},
	H:       {"h", 1, 0, 0, unitary},
	S:       {"s", 1, 0, 0, unitary},
	Sdg:     {"sdg", 1, 0, 0, unitary},
	T:       {"t", 1, 0, 0, unitary},
	Tdg:     {"tdg", 1, 0, 0, unitary},
	RX:      {"rx", 1, 1, 0, unitary},
	RY:      {"ry", 1, 1, 0, unitary},
	RZ:      {"rz", 1, 1, 0, unitary},
	U1:      {"u1", 1, 1, 0, unitary},
	U2:      {"u2", 1, 2, 0, unitary},
	U3:      {"u3", 1, 3, 0, unitary},
	CX:      {"cx", 2, 0, 1, unitary},
	CZ:      {"cz", 2, 0, 1, unitary},
	Swap:    {"swap", 2, 0, 3, unitary},
	CCX:     {"ccx", 3, 0, 6, unitary},
	SX:      {"sx", 1, 0, 0, unitary},
	SXdg:    {"sxdg", 1, 0, 0, unitary},
	RZZ:     {"rzz", 2, 1, 2, unitary},
	RXX:     {"rxx", 2, 1, 2, unitary},
	CU1:     {"cu1", 2, 1, 2, unitary},
	Measure: {"measure", 1, 0, 0, nonUnitary},
	Reset:   {"reset", 1, 0, 0, nonUnitary},
	Barrier: {"barrier", 1, 0, 0, directive},
	Defined: {"defined", 2, 0, 3, unitary},
}

// Valid reports whether g is one of the supported gates.
func (g Gate) Valid() bool { return g >= ID && g < numGates }

// String returns the gate's OpenQASM name.
func (g Gate) String() string {
	if !g.Valid() {
		return "gate?"
	}
	return gateTable[g].name
}

// Arity returns the number of qubits g acts on (1 to 3).
func (g Gate) Arity() int { return gateTable[g].arity }

// NumParams returns the number of angles g takes (0 to 3).
func (g Gate) NumParams() int { return gateTable[g].params }

// CNOTs returns the CNOTs in g's usual decomposition (3 for a defined
// gate, enough for any two-qubit unitary).
func (g Gate) CNOTs() int { return gateTable[g].cnots }

// Unitary reports whether g is a unitary gate (not measure, reset or
// barrier).
func (g Gate) Unitary() bool { return gateTable[g].kind == unitary }

// Builtin reports whether g is a unitary gate of qelib1.inc (not a
// defined gate).
func (g Gate) Builtin() bool { return g.Unitary() && g != Defined }

// GateByName returns the gate named name in qelib1.inc (U and CX, the
// OpenQASM built-ins, are u3 and cx).
func GateByName(name string) (Gate, bool) {
	switch name {
	case "U":
		return U3, true
	case "CX":
		return CX, true
	}
	for g := ID; g < numGates; g++ {
		if gateTable[g].name == name && g.Builtin() {
			return g, true
		}
	}
	return 0, false
}

// Matrix returns the 2^Arity × 2^Arity matrix of g with angles p (the
// first NumParams are used), row-major; the gate's first qubit is the most
// significant bit of the local index.
func (g Gate) Matrix(p [3]float64) []complex128 {
	r2 := complex(1/math.Sqrt2, 0)
	switch g {
	case ID:
		return []complex128{1, 0, 0, 1}
	case X:
		return []complex128{0, 1, 1, 0}
	case Y:
		return []complex128{0, -1i, 1i, 0}
	case Z:
		return []complex128{1, 0, 0, -1}
	case H:
		return []complex128{r2, r2, r2, -r2}
	case S:
		return []complex128{1, 0, 0, 1i}
	case Sdg:
		return []complex128{1, 0, 0, -1i}
	case T:
		return []complex128{1, 0, 0, cmplx.Exp(complex(0, math.Pi/4))}
	case Tdg:
		return []complex128{1, 0, 0, cmplx.Exp(complex(0, -math.Pi/4))}
	case RX:
		c, s := math.Cos(p[0]/2), math.Sin(p[0]/2)
		return []complex128{complex(c, 0), complex(0, -s), complex(0, -s), complex(c, 0)}
	case RY:
		c, s := math.Cos(p[0]/2), math.Sin(p[0]/2)
		return []complex128{complex(c, 0), complex(-s, 0), complex(s, 0), complex(c, 0)}
	case RZ:
		return []complex128{cmplx.Exp(complex(0, -p[0]/2)), 0, 0, cmplx.Exp(complex(0, p[0]/2))}
	case U1:
		return []complex128{1, 0, 0, cmplx.Exp(complex(0, p[0]))}
	case U2:
		m := U3Matrix(math.Pi/2, p[0], p[1])
		return m[:]
	case U3:
		m := U3Matrix(p[0], p[1], p[2])
		return m[:]
	case CX:
		return []complex128{
			1, 0, 0, 0,
			0, 1, 0, 0,
			0, 0, 0, 1,
			0, 0, 1, 0,
		}
	case CZ:
		return []complex128{
			1, 0, 0, 0,
			0, 1, 0, 0,
			0, 0, 1, 0,
			0, 0, 0, -1,
		}
	case Swap:
		return []complex128{
			1, 0, 0, 0,
			0, 0, 1, 0,
			0, 1, 0, 0,
			0, 0, 0, 1,
		}
	case SX:
		return []complex128{complex(0.5, 0.5), complex(0.5, -0.5), complex(0.5, -0.5), complex(0.5, 0.5)}
	case SXdg:
		return []complex128{complex(0.5, -0.5), complex(0.5, 0.5), complex(0.5, 0.5), complex(0.5, -0.5)}
	case RZZ:
		a, b := ExpI(-p[0]/2), ExpI(p[0]/2)
		return []complex128{
			a, 0, 0, 0,
			0, b, 0, 0,
			0, 0, b, 0,
			0, 0, 0, a,
		}
	case RXX:
		c, s := complex(math.Cos(p[0]/2), 0), complex(0, -math.Sin(p[0]/2))
		return []complex128{
			c, 0, 0, s,
			0, c, s, 0,
			0, s, c, 0,
			s, 0, 0, c,
		}
	case CU1:
		return []complex128{
			1, 0, 0, 0,
			0, 1, 0, 0,
			0, 0, 1, 0,
			0, 0, 0, ExpI(p[0]),
		}
	case CCX:
		m := make([]complex128, 64)
		for i := range 6 {
			m[i*8+i] = 1
		}
		m[6*8+7], m[7*8+6] = 1, 1
		return m
	}
	panic("circuit: matrix of invalid gate")
}

// U3Matrix returns the matrix of u3(θ, φ, λ):
//
//	[ cos(θ/2)          −e^{iλ} sin(θ/2)     ]
//	[ e^{iφ} sin(θ/2)   e^{i(φ+λ)} cos(θ/2)  ]
func U3Matrix(theta, phi, lambda float64) [4]complex128 {
	s, c := math.Sincos(theta / 2)
	ep, el := ExpI(phi), ExpI(lambda)
	return [4]complex128{
		complex(c, 0), -el * complex(s, 0),
		ep * complex(s, 0), ep * el * complex(c, 0),
	}
}

// ExpI returns e^{ix}, without the real exponential of cmplx.Exp.
func ExpI(x float64) complex128 {
	s, c := math.Sincos(x)
	return complex(c, s)
}
