package cli

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/qlaunch/qlaunch/kernels/circuit"
	"github.com/qlaunch/qlaunch/kernels/circuitgen"
	"github.com/qlaunch/qlaunch/kernels/mapping"
	"github.com/qlaunch/qlaunch/kernels/resynth"
)

// TestCompilePermutedEnds compiles a QFT (which ends by reversing its
// qubits) onto a line: the last blocks implement their unitary up to a
// permutation of their outputs, reported as permuted_outputs and taken
// into the final mapping, so the line costs fewer CNOTs than all-to-all
// (where no mapping absorbs them). The output equals the input with the
// reported mappings (redone here on the unitaries), and the report's
// permutation fields read back as permutations.
func TestCompilePermutedEnds(t *testing.T) {
	numericOnlyInOneLane(t)
	dir := t.TempDir()
	in := filepath.Join(dir, "qft.qasm")
	src := circuit.FormatQASM(circuitgen.QFT(4))
	if err := os.WriteFile(in, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	type report struct {
		Initial []int `json:"initial_mapping"`
		Final   []int `json:"final_mapping"`
		Inputs  []int `json:"permuted_inputs"`
		Outputs []int `json:"permuted_outputs"`
		After   int   `json:"cnots_after"`
	}
	compile := func(args ...string) (report, *circuit.Circuit) {
		out := filepath.Join(dir, "out.qasm")
		code, stdout, stderr := numericRun(t, append([]string{"compile", "--local", in, "-o", out, "--level", "1", "--format", "json"}, args...)...)
		if code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, stderr)
		}
		var rep report
		if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
			t.Fatal(err)
		}
		b, _ := os.ReadFile(out)
		c, err := circuit.ParseQASM(string(b))
		if err != nil {
			t.Fatal(err)
		}
		return rep, c
	}
	all, _ := compile()
	line, c := compile("--coupling", "linear:4")
	t.Logf("CNOTs all-to-all %d, line %d; permuted inputs %v, outputs %v; mappings %v → %v", all.After, line.After, line.Inputs, line.Outputs, line.Initial, line.Final)
	if all.Inputs != nil || all.Outputs != nil {
		t.Errorf("all-to-all reports permutations %v, %v", all.Inputs, all.Outputs)
	}
	if line.Outputs == nil || line.After >= all.After {
		t.Errorf("line: %d CNOTs (all-to-all %d), permuted outputs %v: want the reversal absorbed", line.After, all.After, line.Outputs)
	}
	identity := resynth.Identity(4)
	for _, p := range [][]int{line.Initial, line.Final, line.Inputs, line.Outputs} {
		if p != nil && !slices.Equal(slices.Sorted(slices.Values(p)), identity) {
			t.Fatalf("%v is not a permutation of 4 qubits", p)
		}
	}
	ref := &circuit.Circuit{Qubits: 4}
	ref.Append(resynth.PermutationSwaps(resynth.Inverse(line.Initial))...)
	a, _ := circuit.ParseQASM(src)
	ref.Append(a.Ops...)
	ref.Append(resynth.PermutationSwaps(line.Final)...)
	u, _ := ref.Unitary()
	v, _ := c.Unitary()
	if d := circuit.Distance(u, v); d > 1e-9 {
		t.Errorf("output at distance %g from the input with the reported mappings", d)
	}
}

// TestCompileLineTriesLayouts compiles a random 4-qubit circuit onto a
// line at level 4 with 3-qubit blocks (level 3's passes, and the
// several routings of level 4): routed from one layout it came to 17 CNOTs (12 in the
// input); from several layouts, and from the all-to-all passes' output
// as well, the fewest after the narrow passes win, at most 14. The
// routings compile at once, yet the output is the same on one slot and
// on two, and each passes the compile's check against the input and the
// reported mappings (with -short: two slots only).
func TestCompileLineTriesLayouts(t *testing.T) {
	numericOnlyInOneLane(t)
	in, err := circuitgen.Named("random:4:30:1")
	if err != nil {
		t.Fatal(err)
	}
	g, err := mapping.ParseCoupling("linear:4")
	if err != nil {
		t.Fatal(err)
	}
	slotCounts := []int{2, 1}
	if testing.Short() {
		slotCounts = slotCounts[:1] // the bound; the comparison in the long run
	}
	var outputs []string
	for _, slots := range slotCounts {
		c, err := compileLocal(context.Background(), slots, compileJob{in: in, seed: 1, level: 4, blockQubits: 3, gates: resynth.DefaultGates, graph: g})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%d slots: CNOTs %d → %d, mappings %v → %v, %s", slots, c.res.CNOTsBefore, c.res.CNOTsAfter, c.report["initial_mapping"], c.final, c.check)
		if c.res.CNOTsAfter > 14 {
			t.Errorf("%d slots: %d CNOTs on the line, want at most 14", slots, c.res.CNOTsAfter)
		}
		outputs = append(outputs, c.res.QASM)
	}
	if len(outputs) == 2 && outputs[0] != outputs[1] {
		t.Error("the outputs on one slot and on two differ")
	}
}

// TestParallel: compileLayouts' helper runs every call, each writing its
// own slot (the race lane checks that they share nothing else), and the
// first error cancels the others' context and is the one returned.
func TestParallel(t *testing.T) {
	got := make([]int, 8)
	if err := parallel(context.Background(), len(got), func(_ context.Context, i int) error {
		got[i] = i + 1
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for i, v := range got {
		if v != i+1 {
			t.Fatalf("call %d wrote %d", i, v)
		}
	}
	boom := errors.New("boom")
	err := parallel(context.Background(), 4, func(ctx context.Context, i int) error {
		if i == 0 {
			return boom
		}
		<-ctx.Done() // the others end only when the first error cancels them
		return ctx.Err()
	})
	if err != boom {
		t.Errorf("error %v, want boom alone (the others were cancelled by it)", err)
	}
}
