package cli

import (
	"context"
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
