package mapping

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/qlaunch/qlaunch/kernels/circuit"
	"github.com/qlaunch/qlaunch/kernels/circuitgen"
)

func mustQASM(t *testing.T, src string) *circuit.Circuit {
	t.Helper()
	c, err := circuit.ParseQASM("OPENQASM 2.0;\ninclude \"qelib1.inc\";\n" + src)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestUnitsGroupDiagonalRuns: a cx pair around diagonal gates on its two
// qubits is one diagonal unit; anything else between (a non-diagonal
// gate, a gate reaching a third qubit, a fence anywhere, the cx reversed)
// leaves the ops apart.
func TestUnitsGroupDiagonalRuns(t *testing.T) {
	for _, tc := range []struct {
		src   string
		units int
		diag  []bool
	}{
		{"qreg q[3];\ncx q[0],q[1];\nrz(0.3) q[1];\nt q[0];\nh q[2];\ncz q[0],q[1];\ncx q[0],q[1];\n", 2, []bool{true, false}},
		{"qreg q[2];\ncx q[0],q[1];\nh q[1];\ncx q[0],q[1];\n", 3, []bool{false, false, false}},
		{"qreg q[2];\ncx q[0],q[1];\nrz(0.3) q[1];\ncx q[1],q[0];\n", 3, []bool{false, true, false}},
		{"qreg q[3];\ncx q[0],q[1];\ncx q[1],q[2];\ncx q[0],q[1];\n", 3, []bool{false, false, false}},
		{"qreg q[3];\ncreg c[1];\ncx q[0],q[1];\nmeasure q[2] -> c[0];\ncx q[0],q[1];\n", 3, []bool{false, false, false}},
		{"qreg q[2];\nrzz(0.2) q[0],q[1];\nu1(0.1) q[0];\nrx(0.1) q[0];\n", 3, []bool{true, true, false}},
	} {
		us, err := units(mustQASM(t, tc.src))
		if err != nil {
			t.Fatal(err)
		}
		if len(us) != tc.units {
			t.Errorf("%q: %d units, want %d", tc.src, len(us), tc.units)
			continue
		}
		for i, d := range tc.diag {
			if us[i].diag != d {
				t.Errorf("%q: unit %d (ops %v) diagonal %v, want %v", tc.src, i, us[i].ops, us[i].diag, d)
			}
		}
	}
}

// TestEstimateTwoQubit: a swap beside a gate on its pair joins its block
// (at most three), a swap elsewhere costs three, other gates their CNOTs.
func TestEstimateTwoQubit(t *testing.T) {
	for _, tc := range []struct {
		src  string
		want int
	}{
		{"qreg q[2];\ncx q[0],q[1];\nrz(0.1) q[1];\ncx q[0],q[1];\nswap q[0],q[1];\n", 3},
		{"qreg q[3];\ncx q[0],q[1];\nrz(0.1) q[1];\ncx q[0],q[1];\nswap q[1],q[2];\n", 5},
		{"qreg q[3];\ncx q[0],q[1];\ncx q[1],q[2];\ncx q[0],q[1];\n", 3},
		{"qreg q[2];\ncreg c[1];\ncx q[0],q[1];\nmeasure q[0] -> c[0];\ncx q[0],q[1];\n", 2},
		{"qreg q[2];\ncx q[0],q[1];\ncx q[1],q[0];\ncx q[0],q[1];\ncx q[1],q[0];\n", 3},
	} {
		if got := estimateTwoQubit(mustQASM(t, tc.src)); got != tc.want {
			t.Errorf("%q: estimate %d, want %d", tc.src, got, tc.want)
		}
	}
}

// TestEveryRouteTrialIsExact routes circuits of ZZ rotations (cx, rz,
// cx), cz, rzz, cx and u3 at random with every weights RouteFrom tries:
// each routing keeps to the graph and equals the input followed by its
// final mapping's permutation (diagonal units reordered, mirrors and
// swaps inserted).
func TestEveryRouteTrialIsExact(t *testing.T) {
	mirrors := 0 // swaps right after a gate on their pair, by the weights that mirror
	for _, spec := range []string{"linear:5", "grid:2x3", "0-1,0-2,0-3,3-4"} {
		g, err := ParseCoupling(spec)
		if err != nil {
			t.Fatal(err)
		}
		for seed := range uint64(3) {
			rng := rand.New(rand.NewPCG(seed, 7))
			c := circuit.New(g.Nodes)
			for range 40 {
				p := rng.Perm(g.Nodes)
				switch rng.IntN(5) {
				case 0:
					c.Append(circuit.U3Op(p[0], rng.Float64()*6, rng.Float64()*6, rng.Float64()*6))
				case 1:
					c.Append(circuit.CNOTOp(p[0], p[1]))
				case 2:
					c.Append(circuit.CNOTOp(p[0], p[1]), circuit.Op{Gate: circuit.RZ, Qubits: [3]int{p[1]}, Params: [3]float64{rng.Float64()}}, circuit.CNOTOp(p[0], p[1]))
				case 3:
					c.Append(circuit.Op{Gate: circuit.CZ, Qubits: [3]int{p[0], p[1]}})
				default:
					c.Append(circuit.Op{Gate: circuit.RZZ, Qubits: [3]int{p[0], p[1]}, Params: [3]float64{rng.Float64()}})
				}
			}
			initial := Place(c, g, seed)
			u, _ := c.Unitary()
			for _, w := range routeTrials() {
				out, final, err := routeFront(c, g, initial, w)
				if err != nil {
					t.Fatal(err)
				}
				for _, op := range out.Ops {
					if qs := op.QubitList(); len(qs) == 2 && !g.Adjacent(qs[0], qs[1]) {
						t.Fatalf("%s %+v: %s on %v, not an edge", spec, w, op.Gate, qs)
					}
				}
				for k := 1; k < len(out.Ops) && w.mirror > 0; k++ {
					prev, op := out.Ops[k-1], out.Ops[k]
					if op.Gate == circuit.Swap && prev.Gate != circuit.Swap && len(prev.QubitList()) == 2 &&
						min(prev.Qubits[0], prev.Qubits[1]) == op.Qubits[0] && max(prev.Qubits[0], prev.Qubits[1]) == op.Qubits[1] {
						mirrors++
					}
				}
				v, _ := out.Unitary()
				want := circuit.Mul(permutation(g.Nodes, final), circuit.Mul(u, permutation(g.Nodes, initial).Dagger()))
				if d := circuit.Distance(want, v); d > 1e-12 {
					t.Errorf("%s seed %d %+v: distance %g", spec, seed, w, d)
				}
			}
		}
	}
	if mirrors == 0 {
		t.Error("no routing mirrored a gate: the mirror swaps went untested")
	}
}

// TestRouteCommutesDiagonalTerms routes QAOA on a ring of 6 onto a line
// of 6: its ZZ terms commute, so the router runs them in the order the
// line favours and needs at most two swaps a layer, where routing them
// in circuit order took 9 for the two layers.
func TestRouteCommutesDiagonalTerms(t *testing.T) {
	in, err := circuitgen.Named("qaoa:6:2")
	if err != nil {
		t.Fatal(err)
	}
	g, _ := ParseCoupling(fmt.Sprintf("linear:%d", in.Qubits))
	out, _, err := RouteFrom(in, g, Place(in, g, 1))
	if err != nil {
		t.Fatal(err)
	}
	swaps := 0
	for _, op := range out.Ops {
		if op.Gate == circuit.Swap {
			swaps++
		}
	}
	if swaps > 4 {
		t.Errorf("%d swaps for two layers of QAOA on a ring of 6, want at most 4", swaps)
	}
}
