package cli

import (
	"context"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/qlaunch/qlaunch/kernels/circuit"
	"github.com/qlaunch/qlaunch/kernels/circuitgen"
	"github.com/qlaunch/qlaunch/kernels/mapping"
)

// TestWindowCuts cuts a circuit into windows of four ops: a cut that
// would fall inside a barrier statement moves past its end.
func TestWindowCuts(t *testing.T) {
	c, err := circuit.ParseQASM("OPENQASM 2.0;\ninclude \"qelib1.inc\";\nqreg q[4];\ncx q[0],q[1];\ncx q[1],q[2];\ncx q[2],q[3];\nbarrier q;\ncx q[0],q[1];\nh q[0];\n")
	if err != nil {
		t.Fatal(err)
	}
	// Ops: 3 cx, the barrier's 4 ops (3 to 6), cx, h.
	if got, want := windowCuts(c.Ops, 4), []int{0, 7, 9}; !slices.Equal(got, want) {
		t.Errorf("windows of 4: cuts %v, want %v", got, want)
	}
	if got, want := windowCuts(c.Ops, 100), []int{0, 9}; !slices.Equal(got, want) {
		t.Errorf("windows of 100: cuts %v, want %v", got, want)
	}
	if got, want := windowCuts(nil, 4), []int{0, 0}; !slices.Equal(got, want) {
		t.Errorf("no ops: cuts %v, want %v", got, want)
	}
}

// TestCompileWindows compiles a Heisenberg chain with measurements in
// windows of 24 ops, all-to-all and on a line: the compile checks itself
// (the unitary within the error bound, the measurements in order, every
// gate on an edge), the output is the same on one slot and on three, and
// it has fewer CNOTs than the input.
func TestCompileWindows(t *testing.T) {
	src := circuit.FormatQASM(circuitgen.Heisenberg(4, 1))
	src = strings.Replace(src, "qreg q[4];\n", "qreg q[4];\ncreg c[4];\n", 1) + "barrier q;\nmeasure q -> c;\n"
	in, err := circuit.ParseQASM(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, coupling := range []string{"", "linear:4"} {
		job := compileJob{in: in, seed: 3, level: 2, gates: "cx,u3", windowOps: 24}
		if coupling != "" {
			if job.graph, err = mapping.ParseCoupling(coupling); err != nil {
				t.Fatal(err)
			}
		}
		one, err := compileLocal(context.Background(), 1, job)
		if err != nil {
			t.Fatalf("%q, one slot: %v", coupling, err)
		}
		three, err := compileLocal(context.Background(), 3, job)
		if err != nil {
			t.Fatalf("%q, three slots: %v", coupling, err)
		}
		t.Logf("%q: %d windows, CNOTs %d → %d, %s", coupling, one.windows, one.res.CNOTsBefore, one.res.CNOTsAfter, one.check)
		if one.windows < 3 {
			t.Errorf("%q: %d windows of %d ops, want 3 or more", coupling, one.windows, len(in.Ops))
		}
		if one.res.QASM != three.res.QASM {
			t.Errorf("%q: the output on one slot differs from three slots'", coupling)
		}
		if coupling == "" && one.res.CNOTsAfter >= one.res.CNOTsBefore {
			t.Errorf("%q: CNOTs %d → %d", coupling, one.res.CNOTsBefore, one.res.CNOTsAfter)
		}
	}
}

// TestCompileFourQubitBlocks compiles a 4-qubit circuit followed by its
// inverse, entangling every qubit with every other, in one pass (level
// 2): 3-qubit blocks cancel only part of it, 4-qubit blocks, which hold
// most of it at once, cancel more. Both compiles check themselves.
func TestCompileFourQubitBlocks(t *testing.T) {
	in := circuit.New(4)
	rng := rand.New(rand.NewPCG(4, 4))
	var half []circuit.Op
	for _, pair := range [][2]int{{0, 1}, {2, 3}, {1, 2}, {3, 0}, {0, 2}, {1, 3}} {
		for _, q := range pair {
			half = append(half, circuit.U3Op(q, rng.Float64()*3, rng.Float64()*3, rng.Float64()*3))
		}
		half = append(half, circuit.CNOTOp(pair[0], pair[1]))
	}
	in.Append(half...)
	for i := len(half) - 1; i >= 0; i-- {
		op := half[i]
		if op.Gate == circuit.U3 {
			p := op.Params
			op = circuit.U3Op(op.Qubits[0], -p[0], -p[2], -p[1]) // u3(θ,φ,λ)† = u3(−θ,−λ,−φ)
		}
		in.Append(op)
	}
	counts := map[int]int{}
	for _, width := range []int{3, 4} {
		c, err := compileLocal(context.Background(), 2, compileJob{in: in, seed: 1, level: 2, blockQubits: width, gates: "cx,u3"})
		if err != nil {
			t.Fatalf("%d-qubit blocks: %v", width, err)
		}
		t.Logf("%d-qubit blocks: CNOTs %d → %d, %s", width, c.res.CNOTsBefore, c.res.CNOTsAfter, c.check)
		counts[width] = c.res.CNOTsAfter
	}
	if counts[4] >= counts[3] {
		t.Errorf("CNOTs after 3-qubit blocks: %d, after 4-qubit blocks: %d; want fewer", counts[3], counts[4])
	}
}
