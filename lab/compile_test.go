package lab_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/qlaunch/qlaunch/kernels/circuit"
	"github.com/qlaunch/qlaunch/kernels/circuitgen"
	"github.com/qlaunch/qlaunch/lab"
)

// compileOnTree starts a tree on nodes lab nodes with srun, compiles the
// QASM file in with qlaunch compile (args added) on it, stops the tree, and
// returns the compiled circuit and the compile's wall time.
func compileOnTree(t *testing.T, c lab.Cluster, nodes int, in string, args ...string) ([]byte, time.Duration) {
	t.Helper()
	j := newJob(t, c, "[workers]\nranks_per_node = 1\n", c.Nodes[:nodes], nil)
	j.start(slurm(t, 20*time.Minute, j.env, "srun", "-N"+strconv.Itoa(nodes), "-n"+strconv.Itoa(len(j.plan.Ranks)), "-O", "--cpu-bind=none", qlaunch(t), j.topo))
	j.wait()
	out := filepath.Join(j.dir, "out.qasm")
	start := time.Now()
	cm := cmd(t, 20*time.Minute, j.env, qlaunch(t), append([]string{"compile", "--address-file", filepath.Join(j.dir, "addr"), in, "-o", out}, args...)...)
	if _, _, err := output(cm); err != nil {
		t.Fatalf("compile on %d nodes: %v\nlauncher stderr:\n%s", nodes, err, j.err.String())
	}
	took := time.Since(start)
	stopServer(t, j)
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return b, took
}

// compileAttached compiles in under qlaunch run on this machine (attached
// mode) and returns the compiled circuit.
func compileAttached(t *testing.T, in string, args ...string) []byte {
	t.Helper()
	dir := t.TempDir()
	out := filepath.Join(dir, "out.qasm")
	env := cleanEnv("QLAUNCH_ADDRESS_FILE="+filepath.Join(dir, "addr"), "QLAUNCH_SECRET_FILE="+filepath.Join(dir, "secret"))
	q := qlaunch(t)
	cm := cmd(t, 20*time.Minute, env, q, append([]string{"run", filepath.Join(bins.root, "configs", "local.toml"), "--", q, "compile", in, "-o", out}, args...)...)
	if _, _, err := output(cm); err != nil {
		t.Fatalf("compile attached: %v", err)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// writeCircuit writes the named circuitgen circuit as QASM into dir.
func writeCircuit(t testing.TB, dir, name string) string {
	t.Helper()
	c, err := circuitgen.Named(name)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "in.qasm")
	if err := os.WriteFile(p, []byte(circuit.FormatQASM(c)), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestSrunCompile: qlaunch compile against a tree srun started on three
// nodes writes the same circuit, byte for byte, as the same compile in
// attached mode on this machine: its blocks ran on every node, and where
// a block ran does not change the output.
func TestSrunCompile(t *testing.T) {
	c := lab.Require(t, os.Getenv)
	needNodes(t, c, 3)
	// One Trotter step (4 blocks of 3 qubits, 18 → 11 CZs): a third of the
	// CPU time of two steps, the same distributed passes.
	in := writeCircuit(t, t.TempDir(), "heisenberg:4:1")
	args := []string{"--seed", "3", "--level", "2", "--gates", "cz,rz,sx"}
	want := compileAttached(t, in, args...)
	got, took := compileOnTree(t, c, 3, in, args...)
	t.Logf("compiled on 3 nodes in %.2f s", took.Seconds())
	if !bytes.Equal(got, want) {
		t.Fatalf("the compile on 3 nodes differs from the attached one:\n%s\nwant:\n%s", got, want)
	}
	if !bytes.Contains(got, []byte("cz ")) {
		t.Fatalf("no cz in the output:\n%s", got)
	}
}

// TestSrunCompileSpeedup is a measurement, run when
// QLAB_COMPILE_SPEEDUP names a circuitgen circuit (heisenberg:64:60: 64
// qubits, 22,680 CNOTs): it compiles it at level 1 on a tree on one lab
// node and on one on three, checks that the outputs are the same, and
// logs both wall times and the speed-up (not gated: the lab's nodes share
// one machine's CPUs, so it measures the runtime's overhead more than
// the added nodes' cores).
func TestSrunCompileSpeedup(t *testing.T) {
	name := os.Getenv("QLAB_COMPILE_SPEEDUP")
	if name == "" {
		t.Skip("a measurement: set QLAB_COMPILE_SPEEDUP to a circuitgen circuit, e.g. heisenberg:64:60")
	}
	c := lab.Require(t, os.Getenv)
	needNodes(t, c, 3)
	in := writeCircuit(t, t.TempDir(), name)
	one, tookOne := compileOnTree(t, c, 1, in, "--level", "1")
	three, tookThree := compileOnTree(t, c, 3, in, "--level", "1")
	t.Logf("%s at level 1: 1 node %.1f s, 3 nodes %.1f s: speed-up %.2f×", name, tookOne.Seconds(), tookThree.Seconds(), tookOne.Seconds()/tookThree.Seconds())
	if !bytes.Equal(one, three) {
		t.Fatalf("the compile on 3 nodes differs from the one on 1 node")
	}
}
