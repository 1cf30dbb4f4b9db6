package lab_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/qlaunch/qlaunch/lab"
)

// TestSrunTopologyTooBigForNode: configs/slurm-gpu.toml asks for 32 CPUs
// per node; on the lab's nodes every rank fails at once with one error that
// names the key, its line, and the CPUs SLURM gives the job there, and
// records it for the job (the rank error file), instead of failing to pin.
func TestSrunTopologyTooBigForNode(t *testing.T) {
	c := lab.Require(t, os.Getenv)
	if c.CPUsPerNode >= 32 {
		t.Skipf("the lab's nodes have %d CPUs: slurm-gpu.toml's 32 fit", c.CPUsPerNode)
	}
	topo := filepath.Join(bins.root, "configs", "slurm-gpu.toml")
	errFile := filepath.Join(t.TempDir(), "errors")
	env := cleanEnv("QLAUNCH_ERROR_FILE="+errFile, "QLAUNCH_SECRET_FILE="+filepath.Join(t.TempDir(), "secret"))
	// 9 tasks: the manager and the 8 worker ranks the topology puts on a node.
	_, stderr, err := output(slurm(t, 60*time.Second, env, "srun", "-N1", "-n9", "-O", "--cpu-bind=none", qlaunch(t), topo))
	if err == nil {
		t.Fatal("the ranks ran a 32-CPU topology on a smaller node")
	}
	want := regexp.MustCompile(`configs/slurm-gpu\.toml:\d+:\d+: workers\.cpus_per_node: 32, but this node gives the job (\d+) CPUs \(SLURM_CPUS_ON_NODE=(\d+)\): set cpus_per_node = 0`)
	m := want.FindStringSubmatch(stderr)
	if m == nil {
		t.Fatalf("no rank names the key and the node's CPUs (want %s):\n%s", want, stderr)
	}
	if n, _ := strconv.Atoi(m[1]); m[1] != m[2] || n < 1 || n > c.CPUsPerNode {
		t.Fatalf("the node's CPUs are misstated: %s", m[0])
	}
	if strings.Contains(stderr, "sched_setaffinity") {
		t.Errorf("a rank still tried to pin:\n%s", stderr)
	}
	b, err := os.ReadFile(errFile)
	if err != nil || !want.Match(b) {
		t.Fatalf("the rank error file (%v):\n%s", err, b)
	}
}
