package circuit

import (
	"errors"
	"math"
	"math/cmplx"
	"math/rand/v2"
	"testing"
)

// matrixOf builds a Matrix from real rows.
func matrixOf(rows ...[]complex128) Matrix {
	m := NewMatrix(len(rows))
	for i, r := range rows {
		copy(m.Data[i*m.Dim:], r)
	}
	return m
}

func requireClose(t *testing.T, got, want Matrix, tol float64) {
	t.Helper()
	if got.Dim != want.Dim {
		t.Fatalf("dimension %d, want %d", got.Dim, want.Dim)
	}
	for i := range got.Data {
		if cmplx.Abs(got.Data[i]-want.Data[i]) > tol {
			t.Fatalf("entry (%d, %d) = %v, want %v", i/got.Dim, i%got.Dim, got.Data[i], want.Data[i])
		}
	}
}

func TestUnitary(t *testing.T) {
	r2 := complex(1/math.Sqrt2, 0)
	tests := []struct {
		name string
		c    Circuit
		want Matrix
	}{
		{"cx01", Circuit{Qubits: 2, Ops: []Op{CNOTOp(0, 1)}}, matrixOf(
			[]complex128{1, 0, 0, 0}, []complex128{0, 1, 0, 0}, []complex128{0, 0, 0, 1}, []complex128{0, 0, 1, 0})},
		{"cx10", Circuit{Qubits: 2, Ops: []Op{CNOTOp(1, 0)}}, matrixOf(
			[]complex128{1, 0, 0, 0}, []complex128{0, 0, 0, 1}, []complex128{0, 0, 1, 0}, []complex128{0, 1, 0, 0})},
		{"x on qubit 0 is the high bit", Circuit{Qubits: 2, Ops: []Op{{Gate: X, Qubits: [3]int{0}}}}, matrixOf(
			[]complex128{0, 0, 1, 0}, []complex128{0, 0, 0, 1}, []complex128{1, 0, 0, 0}, []complex128{0, 1, 0, 0})},
		{"h then cx is a Bell map", Circuit{Qubits: 2, Ops: []Op{{Gate: H, Qubits: [3]int{0}}, CNOTOp(0, 1)}}, matrixOf(
			[]complex128{r2, 0, r2, 0}, []complex128{0, r2, 0, r2}, []complex128{0, r2, 0, -r2}, []complex128{r2, 0, -r2, 0})},
		{"swap as three cx", Circuit{Qubits: 2, Ops: []Op{CNOTOp(0, 1), CNOTOp(1, 0), CNOTOp(0, 1)}}, matrixOf(
			[]complex128{1, 0, 0, 0}, []complex128{0, 0, 1, 0}, []complex128{0, 1, 0, 0}, []complex128{0, 0, 0, 1})},
		{"swap gate", Circuit{Qubits: 2, Ops: []Op{{Gate: Swap, Qubits: [3]int{1, 0}}}}, matrixOf(
			[]complex128{1, 0, 0, 0}, []complex128{0, 0, 1, 0}, []complex128{0, 1, 0, 0}, []complex128{0, 0, 0, 1})},
		{"cz on reversed qubits", Circuit{Qubits: 2, Ops: []Op{{Gate: CZ, Qubits: [3]int{1, 0}}}}, matrixOf(
			[]complex128{1, 0, 0, 0}, []complex128{0, 1, 0, 0}, []complex128{0, 0, 1, 0}, []complex128{0, 0, 0, -1})},
		{"rz", Circuit{Qubits: 1, Ops: []Op{{Gate: RZ, Qubits: [3]int{0}, Params: [3]float64{math.Pi}}}}, matrixOf(
			[]complex128{-1i, 0}, []complex128{0, 1i})},
		{"u3 is ry when phases vanish", Circuit{Qubits: 1, Ops: []Op{U3Op(0, math.Pi/2, 0, 0)}}, matrixOf(
			[]complex128{r2, -r2}, []complex128{r2, r2})},
		{"s s is z", Circuit{Qubits: 1, Ops: []Op{{Gate: S}, {Gate: S}}}, matrixOf(
			[]complex128{1, 0}, []complex128{0, -1})},
		{"t tdg is id", Circuit{Qubits: 1, Ops: []Op{{Gate: T}, {Gate: Tdg}, {Gate: ID}}}, Identity(2)},
		{"u2(0,pi) is h", Circuit{Qubits: 1, Ops: []Op{{Gate: U2, Params: [3]float64{0, math.Pi}}}}, matrixOf(
			[]complex128{r2, r2}, []complex128{r2, -r2})},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.c.Unitary()
			if err != nil {
				t.Fatal(err)
			}
			requireClose(t, got, tc.want, 1e-15)
		})
	}
}

func TestToffoliOnThreeQubitsAndPermuted(t *testing.T) {
	// ccx(2, 0, 1): controls qubits 2 and 0, target 1. Basis |q0 q1 q2⟩:
	// flips q1 when q0 = q2 = 1, i.e. swaps indices 0b101 = 5 and 0b111 = 7.
	c := Circuit{Qubits: 3, Ops: []Op{{Gate: CCX, Qubits: [3]int{2, 0, 1}}}}
	got, err := c.Unitary()
	if err != nil {
		t.Fatal(err)
	}
	want := Identity(8)
	want.Set(5, 5, 0)
	want.Set(7, 7, 0)
	want.Set(5, 7, 1)
	want.Set(7, 5, 1)
	requireClose(t, got, want, 0)
}

func TestGateMatricesAreUnitary(t *testing.T) {
	p := [3]float64{0.3, -1.1, 2.5}
	for g := ID; g < numGates; g++ {
		if !g.Builtin() {
			continue
		}
		dim := 1 << g.Arity()
		m := Matrix{Dim: dim, Data: g.Matrix(p)}
		if err := m.Validate(1e-14); err != nil {
			t.Errorf("%s: %v", g, err)
		}
	}
}

func TestDistance(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	u := RandomUnitary(3, rng)
	if err := u.Validate(1e-12); err != nil {
		t.Fatal(err)
	}
	phased := u.Clone()
	ph := cmplx.Exp(0.7i)
	for i := range phased.Data {
		phased.Data[i] *= ph
	}
	x := Matrix{Dim: 2, Data: X.Matrix([3]float64{})}
	tests := []struct {
		name string
		u, v Matrix
		want float64
	}{
		{"self", u, u, 0},
		{"global phase", u, phased, 0},
		{"x against identity", Identity(2), x, 1},
		{"z against identity", Identity(2), Matrix{Dim: 2, Data: Z.Matrix([3]float64{})}, 1},
		{"t against identity", Identity(2), Matrix{Dim: 2, Data: T.Matrix([3]float64{})}, 1 - math.Cos(math.Pi/8)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := Distance(tc.u, tc.v); math.Abs(got-tc.want) > 1e-15 {
				t.Errorf("Distance = %.17g, want %.17g", got, tc.want)
			}
		})
	}
}

func TestSimulateMatchesUnitary(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	c := New(4)
	for range 40 {
		switch rng.IntN(4) {
		case 0:
			a, b := rng.IntN(4), rng.IntN(3)
			if b >= a {
				b++
			}
			c.Append(CNOTOp(a, b))
		case 1:
			c.Append(U3Op(rng.IntN(4), rng.Float64()*6, rng.Float64()*6, rng.Float64()*6))
		case 2:
			c.Append(Op{Gate: CCX, Qubits: [3]int{0, 2, 3}})
		default:
			c.Append(Op{Gate: RX, Qubits: [3]int{rng.IntN(4)}, Params: [3]float64{rng.Float64()}})
		}
	}
	u, err := c.Unitary()
	if err != nil {
		t.Fatal(err)
	}
	for col := range 16 {
		state := make([]complex128, 16)
		state[col] = 1
		if err := c.Simulate(state); err != nil {
			t.Fatal(err)
		}
		for row := range 16 {
			if cmplx.Abs(state[row]-u.At(row, col)) > 1e-13 {
				t.Fatalf("column %d row %d: state %v, unitary %v", col, row, state[row], u.At(row, col))
			}
		}
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		c    Circuit
		want error
	}{
		{"ok", Circuit{Qubits: 2, Ops: []Op{CNOTOp(0, 1)}}, nil},
		{"qubit out of range", Circuit{Qubits: 2, Ops: []Op{CNOTOp(0, 2)}}, ErrBadOp},
		{"repeated qubit", Circuit{Qubits: 2, Ops: []Op{CNOTOp(1, 1)}}, ErrBadOp},
		{"unused parameter set", Circuit{Qubits: 1, Ops: []Op{{Gate: H, Params: [3]float64{1}}}}, ErrBadOp},
		{"invalid gate", Circuit{Qubits: 1, Ops: []Op{{}}}, ErrBadOp},
		{"nan angle", Circuit{Qubits: 1, Ops: []Op{{Gate: RZ, Params: [3]float64{math.NaN()}}}}, ErrBadOp},
		{"too many qubits", Circuit{Qubits: MaxQubits + 1}, ErrTooLarge},
		{"measure into no bit", Circuit{Qubits: 1, Ops: []Op{{Gate: Measure}}}, ErrBadOp},
		{"condition on no register", Circuit{Qubits: 1, Ops: []Op{{Gate: X, Cond: Cond{Reg: 1}}}}, ErrBadOp},
		{"condition value too large", Circuit{Qubits: 1, Cregs: []Register{{"c", 1}}, Ops: []Op{{Gate: X, Cond: Cond{Reg: 1, Value: 2}}}}, ErrBadOp},
		{"defined gate without definition", Circuit{Qubits: 2, Ops: []Op{{Gate: Defined, Qubits: [3]int{0, 1}}}}, ErrBadOp},
		{"argument on a plain gate", Circuit{Qubits: 1, Ops: []Op{{Gate: X, Arg: 1}}}, ErrBadOp},
		{"definition with a measure", Circuit{Qubits: 1, Defs: []Def{{"m", []Op{{Gate: Measure}}}}}, ErrBadOp},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.c.Validate()
			if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Errorf("Validate = %v, want %v", err, tc.want)
			}
		})
	}
	if _, err := (&Circuit{Qubits: MaxUnitaryQubits + 1}).Unitary(); !errors.Is(err, ErrTooLarge) {
		t.Errorf("Unitary of %d qubits: %v, want ErrTooLarge", MaxUnitaryQubits+1, err)
	}
}

func TestCNOTs(t *testing.T) {
	c := Circuit{Qubits: 3, Ops: []Op{CNOTOp(0, 1), {Gate: CZ, Qubits: [3]int{1, 2}}, {Gate: Swap, Qubits: [3]int{0, 2}},
		{Gate: CCX, Qubits: [3]int{0, 1, 2}}, {Gate: H}}}
	if got := c.CNOTs(); got != 11 {
		t.Errorf("CNOTs = %d, want 11", got)
	}
}

func TestMatrixValidate(t *testing.T) {
	tests := []struct {
		name string
		m    Matrix
	}{
		{"dimension 3", Identity(3)},
		{"not unitary", matrixOf([]complex128{1, 1}, []complex128{0, 1})},
		{"nan", matrixOf([]complex128{complex(math.NaN(), 0), 0}, []complex128{0, 1})},
		{"short data", Matrix{Dim: 2, Data: []complex128{1, 0, 0}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.m.Validate(1e-9); !errors.Is(err, ErrNotUnitary) {
				t.Errorf("Validate = %v, want ErrNotUnitary", err)
			}
		})
	}
}

func TestMatrixJSON(t *testing.T) {
	m := matrixOf([]complex128{0.1 + 1i, -2e-300}, []complex128{0, complex(math.Pi, -0.5)})
	b, err := m.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	const want = `[[[0.1,1],[-2e-300,0]],[[0,0],[3.141592653589793,-0.5]]]`
	if string(b) != want {
		t.Errorf("MarshalJSON = %s, want %s", b, want)
	}
	var back Matrix
	if err := back.UnmarshalJSON(b); err != nil {
		t.Fatal(err)
	}
	requireClose(t, back, m, 0)
	for _, bad := range []string{`[[[1,0]],[[0,1]]]`, `[[1,2]]`, `{}`} {
		if err := back.UnmarshalJSON([]byte(bad)); err == nil {
			t.Errorf("UnmarshalJSON(%s) succeeded", bad)
		}
	}
}
