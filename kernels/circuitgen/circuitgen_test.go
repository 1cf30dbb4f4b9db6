package circuitgen

import (
	"math"
	"math/cmplx"
	"testing"

	"github.com/qlaunch/qlaunch/kernels/circuit"
)

func unitary(t *testing.T, c *circuit.Circuit) circuit.Matrix {
	t.Helper()
	u, err := c.Unitary()
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func TestRotationsMatchTheirGates(t *testing.T) {
	b := newBuilder(2)
	b.zz(0, 1, 0.7)
	want := unitary(t, &circuit.Circuit{Qubits: 2, Ops: []circuit.Op{{Gate: circuit.RZZ, Qubits: [3]int{0, 1}, Params: [3]float64{0.7}}}})
	if d := circuit.Distance(unitary(t, b.c), want); d > 1e-15 {
		t.Errorf("zz at distance %g", d)
	}
	b = newBuilder(2)
	b.xx(1, 0, 0.7)
	want = unitary(t, &circuit.Circuit{Qubits: 2, Ops: []circuit.Op{{Gate: circuit.RXX, Qubits: [3]int{0, 1}, Params: [3]float64{0.7}}}})
	if d := circuit.Distance(unitary(t, b.c), want); d > 1e-15 {
		t.Errorf("xx at distance %g", d)
	}
	// yy(θ) is diagonal in the Y basis: it is xx conjugated by s⊗s.
	b = newBuilder(2)
	b.one(circuit.Sdg, 0)
	b.one(circuit.Sdg, 1)
	b.yy(0, 1, 0.7)
	b.one(circuit.S, 0)
	b.one(circuit.S, 1)
	if d := circuit.Distance(unitary(t, b.c), want); d > 1e-15 {
		t.Errorf("yy at distance %g", d)
	}
	b = newBuilder(3)
	b.ccx(2, 0, 1)
	want = unitary(t, &circuit.Circuit{Qubits: 3, Ops: []circuit.Op{{Gate: circuit.CCX, Qubits: [3]int{2, 0, 1}}}})
	if d := circuit.Distance(unitary(t, b.c), want); d > 1e-15 {
		t.Errorf("ccx at distance %g", d)
	}
}

func TestQFTIsTheFourierTransform(t *testing.T) {
	for n := 2; n <= 5; n++ {
		u := unitary(t, QFT(n))
		dim := 1 << n
		f := circuit.NewMatrix(dim)
		for j := range dim {
			for k := range dim {
				f.Set(j, k, cmplx.Rect(1/math.Sqrt(float64(dim)), 2*math.Pi*float64(j*k%dim)/float64(dim)))
			}
		}
		if d := circuit.Distance(u, f); d > 1e-14 {
			t.Errorf("qft(%d) at distance %g", n, d)
		}
	}
}

// basisOut runs c on |0…0⟩ and returns the basis state it ends in, or −1
// when the result is not a basis state.
func basisOut(t *testing.T, c *circuit.Circuit) int {
	t.Helper()
	psi := make([]complex128, 1<<c.Qubits)
	psi[0] = 1
	if err := c.Simulate(psi); err != nil {
		t.Fatal(err)
	}
	for i, v := range psi {
		if cmplx.Abs(v) > 1-1e-9 {
			return i
		}
	}
	return -1
}

func TestAdderAdds(t *testing.T) {
	for bits := 1; bits <= 4; bits++ {
		c := Adder(bits)
		out := basisOut(t, c)
		n := c.Qubits
		bit := func(q int) int { return out >> (n - 1 - q) & 1 }
		a, b, sum := 0, 0, 0
		for i := range bits {
			if i%2 == 0 {
				a |= 1 << i
			}
			b |= 1 << i
			if bit(1+2*i) != a>>i&1 {
				t.Errorf("%d bits: a changed", bits)
			}
			sum |= bit(2+2*i) << i
		}
		sum |= bit(n-1) << bits
		if out < 0 || sum != a+b || bit(0) != 0 {
			t.Errorf("%d bits: %d + %d gave %d (state %d)", bits, a, b, sum, out)
		}
	}
}

func TestGroverFindsTheMarkedState(t *testing.T) {
	for _, tc := range []struct {
		n, iters int
		want     float64
	}{{2, 1, 0.99}, {3, 2, 0.94}, {4, 3, 0.96}} {
		c := Grover(tc.n, tc.iters)
		psi := make([]complex128, 1<<c.Qubits)
		psi[0] = 1
		if err := c.Simulate(psi); err != nil {
			t.Fatal(err)
		}
		// |1…1⟩ on the search qubits, ancillas back to 0.
		idx := ((1 << tc.n) - 1) << (c.Qubits - tc.n)
		if p := cmplx.Abs(psi[idx]) * cmplx.Abs(psi[idx]); p < tc.want {
			t.Errorf("grover(%d, %d): probability %.3f of the marked state", tc.n, tc.iters, p)
		}
	}
}

func TestNamed(t *testing.T) {
	for name, qubits := range map[string]int{"heisenberg:6:2": 6, "tfim:5:3": 5, "hubbard:3:1": 6, "qaoa:4:2": 4,
		"qft:5": 5, "adder:3": 8, "grover:3:2": 5, "random:4:30:7": 4} {
		c, err := Named(name)
		if err != nil {
			t.Fatal(err)
		}
		if c.Qubits != qubits || c.Validate() != nil || len(c.Ops) == 0 {
			t.Errorf("%s: %d qubits, %d ops", name, c.Qubits, len(c.Ops))
		}
	}
	for _, bad := range []string{"", "qft", "qft:0", "qft:x", "heisenberg:4", "nope:3", "qft:100", "random:1:5:1"} {
		if _, err := Named(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
	if c := Heisenberg(6, 2); c.CNOTs() != 2*5*6 {
		t.Errorf("heisenberg(6, 2): %d CNOTs, want 60", c.CNOTs())
	}
}
