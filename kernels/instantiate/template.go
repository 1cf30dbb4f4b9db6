package instantiate

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/qlaunch/qlaunch/kernels/circuit"
)

// Block is one two-qubit gate of a template, on its first then second
// qubit (a CNOT's control then target); a U3 on each of the two qubits
// follows it.
type Block [2]int

// Template is the parameterised circuit that instantiation fits: a U3 on
// every qubit, then for each block a two-qubit gate followed by a U3 on
// both of its qubits. The two-qubit gate is a CNOT, or the constant gate
// Gate when set (a 4×4 unitary, its first qubit the block's first). Its
// parameters are the U3 angles (θ, φ, λ) in gate order: the first layer's
// qubits 0…Qubits−1, then each block's first and second qubit.
type Template struct {
	Qubits int             `json:"qubits"`
	Blocks []Block         `json:"blocks"`
	Gate   *circuit.Matrix `json:"gate,omitempty"`
}

// MaxQubits is the most qubits a template may have (the cost is O(4^n)
// per gate).
const MaxQubits = 6

// NumParams returns the number of parameters of t.
func (t Template) NumParams() int { return 3 * (t.Qubits + 2*len(t.Blocks)) }

// CNOTs returns the number of blocks.
func (t Template) CNOTs() int { return len(t.Blocks) }

// Validate checks the qubit count and every block.
func (t Template) Validate() error {
	if t.Qubits < 1 || t.Qubits > MaxQubits {
		return fmt.Errorf("instantiate: template of %d qubits (1 to %d): %w", t.Qubits, MaxQubits, ErrBadTemplate)
	}
	if t.Gate != nil {
		if t.Gate.Dim != 4 {
			return fmt.Errorf("instantiate: two-qubit gate of dimension %d: %w", t.Gate.Dim, ErrBadTemplate)
		}
		if err := t.Gate.Validate(1e-8); err != nil {
			return fmt.Errorf("instantiate: two-qubit gate: %w: %w", ErrBadTemplate, err)
		}
	}
	for i, b := range t.Blocks {
		if b[0] < 0 || b[1] < 0 || b[0] >= t.Qubits || b[1] >= t.Qubits || b[0] == b[1] {
			return fmt.Errorf("instantiate: block %d on qubits %v of %d: %w", i, b, t.Qubits, ErrBadTemplate)
		}
	}
	return nil
}

// With returns a copy of t with one more block b at the end.
func (t Template) With(b Block) Template {
	blocks := make([]Block, len(t.Blocks), len(t.Blocks)+1)
	copy(blocks, t.Blocks)
	return Template{Qubits: t.Qubits, Blocks: append(blocks, b), Gate: t.Gate}
}

// Circuit returns t with parameters params as a circuit of u3 gates and
// cx, or, for a template with a Gate, u3 gates and ops of the gate
// circuit.Defined with Arg 0, for which the caller supplies the
// definition (Circuit.Defs[0]; see CircuitWith for other ops). It panics
// when len(params) != t.NumParams().
func (t Template) Circuit(params []float64) *circuit.Circuit {
	if t.Gate == nil {
		return t.CircuitWith(params, func(a, b int) circuit.Op { return circuit.CNOTOp(a, b) })
	}
	return t.CircuitWith(params, func(a, b int) circuit.Op {
		return circuit.Op{Gate: circuit.Defined, Qubits: [3]int{a, b}}
	})
}

// CircuitWith returns t with parameters params as a circuit of u3 gates
// and, for each block, the op two(first, second). It panics when
// len(params) != t.NumParams().
func (t Template) CircuitWith(params []float64, two func(a, b int) circuit.Op) *circuit.Circuit {
	if len(params) != t.NumParams() {
		panic(fmt.Sprintf("instantiate: %d parameters for a template of %d", len(params), t.NumParams()))
	}
	c := circuit.New(t.Qubits)
	c.Ops = make([]circuit.Op, 0, t.Qubits+3*len(t.Blocks))
	p := params
	u3 := func(q int) {
		c.Append(circuit.U3Op(q, wrap(p[0]), wrap(p[1]), wrap(p[2])))
		p = p[3:]
	}
	for q := range t.Qubits {
		u3(q)
	}
	for _, b := range t.Blocks {
		c.Append(two(b[0], b[1]))
		u3(b[0])
		u3(b[1])
	}
	return c
}

// wrap maps an angle into (−2π, 2π], which leaves every U3 unchanged
// (its matrix has period 4π in θ only up to a sign that is a global
// phase of the gate, and period 2π in φ and λ).
func wrap(a float64) float64 {
	return math.Remainder(a, 4*math.Pi)
}

// StartPoint returns the start-th random starting point of n parameters for
// seed: angles uniform in [0, 2π), the same for the same (seed, start).
func StartPoint(seed uint64, start, n int) []float64 {
	rng := rand.New(rand.NewPCG(seed, uint64(start)*0x9e3779b97f4a7c15+1))
	x := make([]float64, n)
	for i := range x {
		x[i] = rng.Float64() * 2 * math.Pi
	}
	return x
}
