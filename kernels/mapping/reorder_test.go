package mapping

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/qlaunch/qlaunch/kernels/circuit"
	"github.com/qlaunch/qlaunch/kernels/circuitgen"
	"github.com/qlaunch/qlaunch/kernels/resynth"
)

// randomCommutingCircuit returns a circuit on 4 qubits of layers of
// commuting diagonal units (ZZ rotations as cx·rz·cx, cz, rzz, cu1, rz, t),
// each layer followed by rx or h on some qubits, with a barrier and a
// measurement between two layers.
func randomCommutingCircuit(t *testing.T, rng *rand.Rand) *circuit.Circuit {
	t.Helper()
	var b strings.Builder
	b.WriteString("qreg q[4];\ncreg c[1];\n")
	pair := func() (int, int) {
		a := rng.IntN(4)
		return a, (a + 1 + rng.IntN(3)) % 4
	}
	for layer := range 4 {
		for range 3 + rng.IntN(4) {
			a, c := pair()
			x := rng.Float64()
			switch rng.IntN(6) {
			case 0, 1:
				fmt.Fprintf(&b, "cx q[%d],q[%d];\nrz(%g) q[%d];\ncx q[%d],q[%d];\n", a, c, x, c, a, c)
			case 2:
				fmt.Fprintf(&b, "cz q[%d],q[%d];\n", a, c)
			case 3:
				fmt.Fprintf(&b, "rzz(%g) q[%d],q[%d];\n", x, a, c)
			case 4:
				fmt.Fprintf(&b, "cu1(%g) q[%d],q[%d];\n", x, a, c)
			default:
				fmt.Fprintf(&b, "rz(%g) q[%d];\nt q[%d];\n", x, a, c)
			}
		}
		for q := range 4 {
			if rng.IntN(2) == 0 {
				fmt.Fprintf(&b, "rx(%g) q[%d];\n", rng.Float64(), q)
			} else if rng.IntN(3) == 0 {
				fmt.Fprintf(&b, "h q[%d];\n", q)
			}
		}
		if layer == 1 {
			b.WriteString("barrier q[0],q[2];\nmeasure q[3] -> c[0];\n")
		}
	}
	return mustQASM(t, b.String())
}

// checkSameCircuit fails unless got has want's fences at the same
// indices and the same unitary part.
func checkSameCircuit(t *testing.T, want, got *circuit.Circuit) {
	t.Helper()
	if len(got.Ops) != len(want.Ops) {
		t.Fatalf("%d ops, want %d", len(got.Ops), len(want.Ops))
	}
	for i, op := range want.Ops {
		if routeFence(op) && got.Ops[i] != op {
			t.Fatalf("op %d: %v, want the fence %v in its place", i, got.Ops[i], op)
		}
	}
	u, err := want.UnitaryPart().Unitary()
	if err != nil {
		t.Fatal(err)
	}
	v, err := got.UnitaryPart().Unitary()
	if err != nil {
		t.Fatal(err)
	}
	if d := circuit.Distance(u, v); d > 1e-12 {
		t.Fatalf("unitary distance %.3g after the reordering:\n%s", d, circuit.FormatQASM(got))
	}
}

// TestDiagonalOrderKeepsUnitary: on random circuits of commuting diagonal
// units between other gates and fences, the reordered circuit has the
// same unitary and its fences where they were, and the same input gives
// the same order.
func TestDiagonalOrderKeepsUnitary(t *testing.T) {
	rng := rand.New(rand.NewPCG(14, 3))
	moved := 0
	for range 60 {
		c := randomCommutingCircuit(t, rng)
		for _, width := range []int{2, 3} {
			got, ok := DiagonalOrder(c, width)
			if !ok {
				if got != c {
					t.Fatal("not moved, yet a new circuit")
				}
				continue
			}
			moved++
			checkSameCircuit(t, c, got)
			again, _ := DiagonalOrder(c, width)
			if !slices.Equal(again.Ops, got.Ops) {
				t.Fatal("two orders of one circuit differ")
			}
		}
	}
	if moved < 30 {
		t.Errorf("only %d of 120 reorderings moved an op", moved)
	}
}

// TestDiagonalOrderTFIM: the transverse-field Ising chain's ZZ terms are
// arranged so that a forward partition into 3-qubit blocks needs fewer
// blocks, with the same unitary.
func TestDiagonalOrderTFIM(t *testing.T) {
	in := circuitgen.TFIM(6, 3)
	got, ok := DiagonalOrder(in, 3)
	if !ok {
		t.Fatal("TFIM's ZZ terms not reordered")
	}
	checkSameCircuit(t, in, got)
	before, after := len(resynth.Partition(in, 3)), len(resynth.Partition(got, 3))
	t.Logf("3-qubit blocks %d → %d", before, after)
	if after >= before {
		t.Errorf("%d 3-qubit blocks after the reordering, %d before", after, before)
	}
	if _, ok := DiagonalOrder(circuitgen.Heisenberg(4, 2), 3); ok {
		t.Error("Heisenberg's ZZ terms lie between non-diagonal ones, no run to reorder, yet one moved")
	}
}
