package circuit

import (
	"fmt"
	"math"
)

// MaxUnitaryQubits is the most qubits whose unitary Unitary computes
// (2^12 × 2^12 complex entries is 256 MiB).
const MaxUnitaryQubits = 12

// MaxQubits is the most qubits a circuit may have.
const MaxQubits = 1024

// Op is one gate applied to qubits. Only the first Gate.Arity() qubits and
// the first Gate.NumParams() parameters are used; the rest are zero, so
// that Ops compare with ==.
type Op struct {
	Gate   Gate
	Qubits [3]int
	Params [3]float64
}

// NewOp returns the operation g on qubits with angles params, checking
// their counts and that the qubits are distinct and non-negative.
func NewOp(g Gate, qubits []int, params ...float64) (Op, error) {
	if !g.Valid() {
		return Op{}, fmt.Errorf("circuit: gate %d: %w", g, ErrBadOp)
	}
	if len(qubits) != g.Arity() || len(params) != g.NumParams() {
		return Op{}, fmt.Errorf("circuit: %s takes %d qubits and %d parameters, got %d and %d: %w",
			g, g.Arity(), g.NumParams(), len(qubits), len(params), ErrBadOp)
	}
	var op Op
	op.Gate = g
	for i, q := range qubits {
		if q < 0 {
			return Op{}, fmt.Errorf("circuit: %s on qubit %d: %w", g, q, ErrBadOp)
		}
		for _, p := range qubits[:i] {
			if p == q {
				return Op{}, fmt.Errorf("circuit: %s on qubit %d twice: %w", g, q, ErrBadOp)
			}
		}
		op.Qubits[i] = q
	}
	for i, p := range params {
		if math.IsNaN(p) || math.IsInf(p, 0) {
			return Op{}, fmt.Errorf("circuit: %s with angle %v: %w", g, p, ErrBadOp)
		}
		op.Params[i] = p
	}
	return op, nil
}

// CNOTOp returns cx(control, target).
func CNOTOp(control, target int) Op {
	return Op{Gate: CX, Qubits: [3]int{control, target}}
}

// U3Op returns u3(θ, φ, λ) on q.
func U3Op(q int, theta, phi, lambda float64) Op {
	return Op{Gate: U3, Qubits: [3]int{q}, Params: [3]float64{theta, phi, lambda}}
}

// QubitList returns the qubits op acts on.
func (op Op) QubitList() []int { return op.Qubits[:op.Gate.Arity()] }

// Circuit is a sequence of operations on Qubits qubits, applied in order.
type Circuit struct {
	Qubits int
	Ops    []Op
}

// New returns an empty circuit on qubits qubits.
func New(qubits int) *Circuit { return &Circuit{Qubits: qubits} }

// Append adds ops at the end of c.
func (c *Circuit) Append(ops ...Op) { c.Ops = append(c.Ops, ops...) }

// CNOTs returns the circuit's CNOT count (see Gate.CNOTs).
func (c *Circuit) CNOTs() int {
	n := 0
	for _, op := range c.Ops {
		n += op.Gate.CNOTs()
	}
	return n
}

// Validate checks every operation against its gate and the circuit's
// qubit count.
func (c *Circuit) Validate() error {
	if c.Qubits < 0 || c.Qubits > MaxQubits {
		return fmt.Errorf("circuit: %d qubits: %w", c.Qubits, ErrTooLarge)
	}
	for i, op := range c.Ops {
		checked, err := NewOp(op.Gate, op.QubitList(), op.Params[:op.Gate.NumParams()]...)
		if err != nil {
			return fmt.Errorf("circuit: operation %d: %w", i, err)
		}
		if checked != op {
			return fmt.Errorf("circuit: operation %d has unused qubits or parameters set: %w", i, ErrBadOp)
		}
		for _, q := range op.QubitList() {
			if q >= c.Qubits {
				return fmt.Errorf("circuit: operation %d (%s) on qubit %d of %d: %w", i, op.Gate, q, c.Qubits, ErrBadOp)
			}
		}
	}
	return nil
}

// Unitary returns the unitary of c. It fails for an invalid circuit or one
// on more than MaxUnitaryQubits qubits.
func (c *Circuit) Unitary() (Matrix, error) {
	if err := c.Validate(); err != nil {
		return Matrix{}, err
	}
	if c.Qubits > MaxUnitaryQubits {
		return Matrix{}, fmt.Errorf("circuit: unitary of %d qubits: %w", c.Qubits, ErrTooLarge)
	}
	m := Identity(1 << c.Qubits)
	for _, op := range c.Ops {
		ApplyOp(m.Data, m.Dim, c.Qubits, op)
	}
	return m, nil
}

// Simulate applies c to the state vector state (length 2^Qubits) in place.
func (c *Circuit) Simulate(state []complex128) error {
	if err := c.Validate(); err != nil {
		return err
	}
	if len(state) != 1<<c.Qubits {
		return fmt.Errorf("circuit: state of length %d for %d qubits: %w", len(state), c.Qubits, ErrBadOp)
	}
	for _, op := range c.Ops {
		ApplyOp(state, 1, c.Qubits, op)
	}
	return nil
}

// ApplyOp multiplies the 2^qubits × cols row-major matrix m on the left by
// the unitary of op on a qubits-qubit system (cols is 1 for a state
// vector, 2^qubits for a unitary). op must be valid for qubits.
func ApplyOp(m []complex128, cols, qubits int, op Op) {
	qs := op.QubitList()
	switch op.Gate {
	case ID:
		return
	case CX:
		applyCX(m, cols, qubits, qs[0], qs[1])
		return
	}
	g := op.Gate.Matrix(op.Params)
	if len(qs) == 1 {
		Apply1(m, cols, qubits, qs[0], [4]complex128(g))
		return
	}
	applyK(m, cols, qubits, qs, g)
}

// Apply1 multiplies m (2^qubits rows of cols entries) on the left by the
// single-qubit gate g acting on qubit q.
func Apply1(m []complex128, cols, qubits, q int, g [4]complex128) {
	stride := 1 << (qubits - 1 - q)
	rows := 1 << qubits
	for r0 := 0; r0 < rows; r0++ {
		if r0&stride != 0 {
			continue
		}
		a := m[r0*cols : (r0+1)*cols]
		b := m[(r0+stride)*cols : (r0+stride+1)*cols]
		for j := range a {
			x, y := a[j], b[j]
			a[j] = g[0]*x + g[1]*y
			b[j] = g[2]*x + g[3]*y
		}
	}
}

func applyCX(m []complex128, cols, qubits, control, target int) {
	cbit := 1 << (qubits - 1 - control)
	tbit := 1 << (qubits - 1 - target)
	rows := 1 << qubits
	for r := 0; r < rows; r++ {
		if r&cbit == 0 || r&tbit != 0 {
			continue
		}
		a := m[r*cols : (r+1)*cols]
		b := m[(r|tbit)*cols : ((r|tbit)+1)*cols]
		for j := range a {
			a[j], b[j] = b[j], a[j]
		}
	}
}

// applyK applies a gate on len(qs) ≤ 3 qubits with matrix g.
func applyK(m []complex128, cols, qubits int, qs []int, g []complex128) {
	k := len(qs)
	size := 1 << k
	var off [8]int
	mask := 0
	for a := range size {
		for i, q := range qs {
			if a&(1<<(k-1-i)) != 0 {
				off[a] |= 1 << (qubits - 1 - q)
			}
		}
	}
	for _, q := range qs {
		mask |= 1 << (qubits - 1 - q)
	}
	var in, out [8]complex128
	rows := 1 << qubits
	for base := 0; base < rows; base++ {
		if base&mask != 0 {
			continue
		}
		for j := range cols {
			for a := range size {
				in[a] = m[(base+off[a])*cols+j]
			}
			for a := range size {
				var s complex128
				row := g[a*size : (a+1)*size]
				for b, v := range row {
					s += v * in[b]
				}
				out[a] = s
			}
			for a := range size {
				m[(base+off[a])*cols+j] = out[a]
			}
		}
	}
}
