package lab_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/qlaunch/qlaunch/lab"
)

// TestSbatchScriptPython: the script qlaunch script slurm prints for a
// topology with [python] and the client /usr/bin/python3 SCRIPT runs on
// three nodes: the Python client maps tasks and a nested in-task map over
// the job's worker ranks, the executors run the topology's interpreter,
// and the job exits 0.
func TestSbatchScriptPython(t *testing.T) {
	c := lab.Require(t, os.Getenv)
	needNodes(t, c, 3)
	dir := t.TempDir()
	topo := filepath.Join(dir, "py.toml")
	err := os.WriteFile(topo, []byte("[workers]\nranks_per_node = 1\npin = \"none\"\n[python]\ninterpreter = \"/usr/bin/python3\"\nthreads = 1\n"), 0o644)
	if err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(dir, "client.py")
	err = os.WriteFile(script, []byte(fmt.Sprintf(`import os, socket, sys
sys.path.insert(0, %q)
import qlaunch

def where(_):
    return socket.gethostname(), sys.executable, os.environ.get("OMP_NUM_THREADS")

async def leaves(width, depth):
    if depth == 0:
        return 1
    return sum(await qlaunch.get_runtime().map(leaves, [width] * width, [depth - 1] * width))

with qlaunch.Client() as c:
    ranks = [r for r in c.status() if "worker" in r["role"]]
    print("worker ranks:", len(ranks))
    seen = set(c.map(where, range(200)).result(120))
    print("executors:", sorted(set((s[1], s[2]) for s in seen)))
    print("nested:", c.submit(leaves, 10, 2).result(120))
`, filepath.Join(bins.root, "python"))), 0o644)
	if err != nil {
		t.Fatal(err)
	}
	_, out, _, err := sbatchScript(t, topo, "/usr/bin/python3", script)
	if err != nil {
		t.Fatalf("the job failed: %v\n%s", err, out)
	}
	for _, want := range []string{"worker ranks: 3", "executors: [('/usr/bin/python3', '1')]", "nested: 100"} {
		if !strings.Contains(out, want) {
			t.Errorf("the job's output lacks %q:\n%s", want, out)
		}
	}
}
