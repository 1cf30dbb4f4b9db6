package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/qlaunch/qlaunch/kernels/circuit"
	"github.com/qlaunch/qlaunch/kernels/circuitgen"
	"github.com/qlaunch/qlaunch/kernels/resynth"
	"github.com/qlaunch/qlaunch/launcher/launchertest"
)

// compileDistCircuit is the circuit the distribution tests compile: a few
// dozen blocks, quick on two CPUs.
const compileDistCircuit = "heisenberg:4:1"

// writeTopology writes an attached-mode topology of ranks worker ranks of
// slots slots each.
func writeTopology(t *testing.T, dir string, ranks, slots int) string {
	t.Helper()
	p := filepath.Join(dir, "topo.toml")
	src := "[runtime]\nlog_level = \"warn\"\n[server]\nplacement = \"shared\"\n[workers]\nranks_per_node = " +
		strconv.Itoa(ranks) + "\nslots_per_rank = " + strconv.Itoa(slots) + "\ncpus_per_node = 0\npin = \"none\"\n"
	if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// numericOnlyInOneLane skips t under the race detector: t checks what a
// compile computes (counts, gate sets, mappings, classical operations), not
// how tasks run concurrently, and runs in full in the lane without the
// detector (make test-cpu1), where it is 5-10 times cheaper. The race lane
// watches the same in-process runtime and compile path through
// TestCompileSameOnEveryTree.
func numericOnlyInOneLane(t *testing.T) {
	t.Helper()
	if raceEnabled {
		t.Skip("numeric checks, no concurrency: run in the lane without the race detector (make test-cpu1)")
	}
}

// TestCompileSameOnEveryTree compiles one circuit with one seed in this
// process (--local), on attached runtimes of one worker rank and of two
// (qlaunch run … -- qlaunch compile), and on a two-level in-process tree
// (a server over two managers): every output is the same, byte for byte.
// The blocks are tasks of their own, so they ran wherever the runtime put
// them.
func TestCompileSameOnEveryTree(t *testing.T) {
	in, err := circuitgen.Named(compileDistCircuit)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	inPath := filepath.Join(dir, "in.qasm")
	if err := os.WriteFile(inPath, []byte(circuit.FormatQASM(in)), 0o644); err != nil {
		t.Fatal(err)
	}
	// Level 2 resynthesises three-qubit blocks, numeric work that the race
	// detector slows 5-10 times and that races nothing: under it, level 1
	// (two-qubit blocks, still one task each, placed by the runtime) gives
	// the detector the same trees, clients and block tasks to watch, and
	// level 2 runs in the lane without it (make test-cpu1).
	level := 2
	if raceEnabled {
		level = 1
	}
	args := []string{"compile", inPath, "--seed", "7", "--level", strconv.Itoa(level), "--gates", "cz,rz,sx"}
	outputs := map[string][]byte{}
	local := filepath.Join(dir, "local.qasm")
	if code, _, stderr := numericRun(t, append(args, "--local", "-o", local)...); code != 0 {
		t.Fatalf("compile --local: exit %d: %s", code, stderr)
	}
	for _, tree := range []struct {
		name         string
		ranks, slots int
	}{{"1 rank", 1, 2}, {"2 ranks", 2, 1}} {
		sub := filepath.Join(dir, strings.ReplaceAll(tree.name, " ", ""))
		if err := os.Mkdir(sub, 0o755); err != nil {
			t.Fatal(err)
		}
		topo := writeTopology(t, sub, tree.ranks, tree.slots)
		out := filepath.Join(sub, "out.qasm")
		env := []string{"QLAUNCH_ADDRESS_FILE=" + filepath.Join(sub, "addr"), "QLAUNCH_SECRET_FILE=", "QLAUNCH_ADDR="}
		r := e2eRun(t, env, "", append([]string{"run", topo, "--", qlaunchBin}, append(args, "-o", out)...)...)
		if r.code != 0 {
			t.Fatalf("%s: qlaunch run … compile: exit %d: %s", tree.name, r.code, r.stderr)
		}
		b, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		outputs[tree.name] = b
	}
	// Two levels: the server, two managers, three worker ranks.
	tr := launchertest.Start(t, launchertest.Shape{Managers: []launchertest.Shape{{Workers: []int{1}}, {Workers: []int{1, 1}}}},
		launchertest.Options{Kernels: resynth.Kernels()})
	c, err := compileCircuit(context.Background(), tr.Client(), compileJob{in: in, seed: 7, level: level, gates: "cz,rz,sx"})
	if err != nil {
		t.Fatalf("2-level tree: %v", err)
	}
	outputs["2-level tree"] = []byte(c.res.QASM)
	want, err := os.ReadFile(local)
	if err != nil {
		t.Fatal(err)
	}
	if in.TwoQubitGates() <= c.res.TwoQubitGatesAfter || c.res.Replaced == 0 {
		t.Fatalf("nothing compiled: %d → %d two-qubit gates, %d blocks replaced", in.TwoQubitGates(), c.res.TwoQubitGatesAfter, c.res.Replaced)
	}
	for name, got := range outputs {
		if !bytes.Equal(got, want) {
			t.Errorf("%s: output differs from --local's:\n%s\nwant:\n%s", name, got, want)
		}
	}
}
