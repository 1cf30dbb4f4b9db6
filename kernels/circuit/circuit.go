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
	// Arg is the classical bit a measure writes (counted over all
	// classical registers in declaration order), the index in
	// Circuit.Defs of a defined gate, 1 on a barrier op that continues
	// the barrier statement of the op before, and 0 otherwise.
	Arg int
	// Cond, when set, applies the op only when a classical register
	// holds a value (OpenQASM's if).
	Cond Cond
}

// Cond is a classical condition: the op runs when classical register
// Reg−1 (in Circuit.Cregs) holds Value. Reg 0 means no condition.
type Cond struct {
	Reg   int
	Value uint64
}

// Set reports whether there is a condition.
func (c Cond) Set() bool { return c.Reg != 0 }

// Register is a classical register.
type Register struct {
	Name string
	Size int
}

// Def is a constant two-qubit gate defined by a body of built-in gates
// (OpenQASM's gate NAME a,b { … } without parameters). Body acts on
// qubits 0 and 1.
type Def struct {
	Name string
	Body []Op
}

// MaxDefBody bounds the operations in a definition's body.
const MaxDefBody = 1024

// Matrix returns the 4×4 unitary of the definition.
func (d Def) Matrix() (Matrix, error) {
	c := &Circuit{Qubits: 2, Ops: d.Body}
	for _, op := range d.Body {
		if !op.Gate.Builtin() || op.Cond.Set() {
			return Matrix{}, fmt.Errorf("circuit: gate %s: body holds %s: %w", d.Name, op.Gate, ErrBadOp)
		}
	}
	return c.Unitary()
}

// MaxCregSize bounds classical register sizes (a condition's value
// must fit in 64 bits).
const MaxCregSize = 64

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

// Circuit is a sequence of operations on Qubits qubits, applied in order,
// with the classical registers its measurements and conditions use and
// the definitions of its defined gates.
type Circuit struct {
	Qubits int
	Ops    []Op
	Cregs  []Register
	Defs   []Def
}

// Clbits returns the number of classical bits (over all registers).
func (c *Circuit) Clbits() int {
	n := 0
	for _, r := range c.Cregs {
		n += r.Size
	}
	return n
}

// IsUnitary reports whether every op is a unitary gate or a barrier and
// none is conditioned: whether the circuit has a unitary.
func (c *Circuit) IsUnitary() bool {
	for _, op := range c.Ops {
		if op.Cond.Set() || op.Gate.Valid() && !op.Gate.Unitary() && op.Gate != Barrier {
			return false
		}
	}
	return true
}

// UnitaryPart returns c without its measurements, resets and barriers and
// with every condition dropped: the unitary a compilation that keeps the
// classical operations in place must preserve.
func (c *Circuit) UnitaryPart() *Circuit {
	out := &Circuit{Qubits: c.Qubits, Defs: c.Defs}
	for _, op := range c.Ops {
		if !op.Gate.Unitary() {
			continue
		}
		op.Cond = Cond{}
		out.Ops = append(out.Ops, op)
	}
	return out
}

// Classical returns c's measurements, resets, barriers and conditioned
// ops, in order.
func (c *Circuit) Classical() []Op {
	var out []Op
	for _, op := range c.Ops {
		if !op.Gate.Unitary() || op.Cond.Set() {
			out = append(out, op)
		}
	}
	return out
}

// New returns an empty circuit on qubits qubits.
func New(qubits int) *Circuit { return &Circuit{Qubits: qubits} }

// Append adds ops at the end of c.
func (c *Circuit) Append(ops ...Op) { c.Ops = append(c.Ops, ops...) }

// TwoQubitGates returns the circuit's two-qubit gates, a swap counted as
// three and a ccx as six (their usual decompositions).
func (c *Circuit) TwoQubitGates() int {
	n := 0
	for _, op := range c.Ops {
		switch {
		case op.Gate == Swap:
			n += 3
		case op.Gate == CCX:
			n += 6
		case op.Gate.Unitary() && op.Gate.Arity() == 2:
			n++
		}
	}
	return n
}

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
	if len(c.Cregs) > MaxQubits {
		return fmt.Errorf("circuit: %d classical registers: %w", len(c.Cregs), ErrTooLarge)
	}
	for _, r := range c.Cregs {
		if r.Size < 1 || r.Size > MaxCregSize {
			return fmt.Errorf("circuit: classical register %s of %d bits (1 to %d): %w", r.Name, r.Size, MaxCregSize, ErrBadOp)
		}
	}
	for _, d := range c.Defs {
		if len(d.Body) > MaxDefBody {
			return fmt.Errorf("circuit: gate %s of %d operations: %w", d.Name, len(d.Body), ErrTooLarge)
		}
		if _, err := d.Matrix(); err != nil {
			return err
		}
	}
	clbits := c.Clbits()
	for i, op := range c.Ops {
		checked, err := NewOp(op.Gate, op.QubitList(), op.Params[:op.Gate.NumParams()]...)
		if err != nil {
			return fmt.Errorf("circuit: operation %d: %w", i, err)
		}
		switch op.Gate {
		case Measure:
			if op.Arg < 0 || op.Arg >= clbits {
				return fmt.Errorf("circuit: operation %d measures into bit %d of %d: %w", i, op.Arg, clbits, ErrBadOp)
			}
		case Barrier:
			if op.Arg != 0 && op.Arg != 1 {
				return fmt.Errorf("circuit: operation %d: barrier with argument %d: %w", i, op.Arg, ErrBadOp)
			}
		case Defined:
			if op.Arg < 0 || op.Arg >= len(c.Defs) {
				return fmt.Errorf("circuit: operation %d: defined gate %d of %d: %w", i, op.Arg, len(c.Defs), ErrBadOp)
			}
		}
		if op.Gate == Measure || op.Gate == Barrier || op.Gate == Defined {
			checked.Arg = op.Arg
		}
		if op.Cond.Set() {
			if op.Cond.Reg < 0 || op.Cond.Reg > len(c.Cregs) || op.Gate == Barrier {
				return fmt.Errorf("circuit: operation %d: bad condition: %w", i, ErrBadOp)
			}
			if sz := c.Cregs[op.Cond.Reg-1].Size; sz < 64 && op.Cond.Value >= 1<<sz {
				return fmt.Errorf("circuit: operation %d: condition value %d on %d bits: %w", i, op.Cond.Value, sz, ErrBadOp)
			}
			checked.Cond = op.Cond
		} else if op.Cond.Value != 0 || op.Cond.Reg < 0 {
			return fmt.Errorf("circuit: operation %d: bad condition: %w", i, ErrBadOp)
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

// Unitary returns the unitary of c. It fails for an invalid circuit, one
// with measurements, resets or conditions (see UnitaryPart), or one on
// more than MaxUnitaryQubits qubits.
func (c *Circuit) Unitary() (Matrix, error) {
	if err := c.Validate(); err != nil {
		return Matrix{}, err
	}
	if c.Qubits > MaxUnitaryQubits {
		return Matrix{}, fmt.Errorf("circuit: unitary of %d qubits: %w", c.Qubits, ErrTooLarge)
	}
	defs, err := c.defMatrices()
	if err != nil {
		return Matrix{}, err
	}
	m := Identity(1 << c.Qubits)
	for _, op := range c.Ops {
		if err := applyTo(m.Data, m.Dim, c.Qubits, op, defs); err != nil {
			return Matrix{}, err
		}
	}
	return m, nil
}

// Simulate applies c to the state vector state (length 2^Qubits) in
// place. Like Unitary, it fails for a circuit that is not unitary.
func (c *Circuit) Simulate(state []complex128) error {
	if err := c.Validate(); err != nil {
		return err
	}
	if len(state) != 1<<c.Qubits {
		return fmt.Errorf("circuit: state of length %d for %d qubits: %w", len(state), c.Qubits, ErrBadOp)
	}
	defs, err := c.defMatrices()
	if err != nil {
		return err
	}
	for _, op := range c.Ops {
		if err := applyTo(state, 1, c.Qubits, op, defs); err != nil {
			return err
		}
	}
	return nil
}

func (c *Circuit) defMatrices() ([]Matrix, error) {
	defs := make([]Matrix, len(c.Defs))
	for i, d := range c.Defs {
		m, err := d.Matrix()
		if err != nil {
			return nil, err
		}
		defs[i] = m
	}
	return defs, nil
}

func applyTo(m []complex128, cols, qubits int, op Op, defs []Matrix) error {
	switch {
	case op.Cond.Set() || !op.Gate.Unitary() && op.Gate != Barrier:
		return fmt.Errorf("circuit: %s is not unitary (see UnitaryPart): %w", op.Gate, ErrNotUnitary)
	case op.Gate == Barrier:
		return nil
	case op.Gate == Defined:
		ApplyMatrix(m, cols, qubits, op.QubitList(), defs[op.Arg].Data)
		return nil
	}
	ApplyOp(m, cols, qubits, op)
	return nil
}

// ApplyOp multiplies the 2^qubits × cols row-major matrix m on the left by
// the unitary of op on a qubits-qubit system (cols is 1 for a state
// vector, 2^qubits for a unitary). op must be a valid built-in gate for
// qubits (not a defined gate, measure or reset); a barrier changes
// nothing.
func ApplyOp(m []complex128, cols, qubits int, op Op) {
	qs := op.QubitList()
	switch op.Gate {
	case ID, Barrier:
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

// ApplyMatrix multiplies m (2^qubits rows of cols entries) on the left by
// the gate with 2^len(qs) × 2^len(qs) matrix g on qubits qs (one to
// three, the first the most significant bit of g's index).
func ApplyMatrix(m []complex128, cols, qubits int, qs []int, g []complex128) {
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
