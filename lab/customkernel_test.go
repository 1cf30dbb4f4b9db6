package lab_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/qlaunch/qlaunch/lab"
)

// TestSrunCustomKernel: the program of examples/customkernel (qlaunch with
// a kernel of its own, built on cmd/cli) started by srun on three nodes as
// qlaunch is, forms the tree and runs its kernel, a stock qlaunch client
// submitting it; scancel -s INT ends the step with no warning logged.
func TestSrunCustomKernel(t *testing.T) {
	c := lab.Require(t, os.Getenv)
	needNodes(t, c, 3)
	wc := need(t, "customkernel", "", "./examples/customkernel")
	j := newJob(t, c, "[workers]\nranks_per_node = 1\n", c.Nodes[:3], nil)
	j.start(slurm(t, 120*time.Second, j.env, "srun", "-N3", "-n"+strconv.Itoa(len(j.plan.Ranks)), "-O", "--cpu-bind=none", wc, j.topo))
	j.wait()
	input := filepath.Join(j.dir, "input.txt")
	if err := os.WriteFile(input, []byte("one two three\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := j.qlaunch("submit", "--address-file", filepath.Join(j.dir, "addr"), "--input", input, "wordcount", "9")
	if err != nil || out != "27\n" {
		t.Fatalf("submit wordcount 9: %q, %v\nlauncher stderr:\n%s", out, err, j.err.String())
	}
	if out, err := exec.Command("scancel", "-s", "INT", "--name="+jobName(t)).CombinedOutput(); err != nil {
		t.Fatalf("scancel: %v %s", err, out)
	}
	if err := j.finish(); err != nil {
		t.Fatalf("srun after scancel -s INT: %v\n%s", err, j.err.String())
	}
	if strings.Contains(j.err.String(), "level=WARN") || strings.Contains(j.err.String(), "level=ERROR") {
		t.Errorf("a clean stop logged a warning:\n%s", j.err.String())
	}
}
