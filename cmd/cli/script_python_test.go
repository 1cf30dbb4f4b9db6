package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestScriptPythonClient: qlaunch script slurm with a Python client and a
// topology with a [python] table writes a script that runs the interpreter
// as given, with the runtime's address and secret in the environment the
// Python client reads (QLAUNCH_ADDR, QLAUNCH_SECRET_FILE), and the ranks
// reading the topology (so [python] reaches the worker ranks).
func TestScriptPythonClient(t *testing.T) {
	dir := t.TempDir()
	topo := filepath.Join(dir, "py.toml")
	err := os.WriteFile(topo, []byte("[workers]\nranks_per_node = 1\npin = \"none\"\n[python]\ninterpreter = \"/usr/bin/python3\"\npath = [\"/shared/lib\"]\nthreads = 1\n"), 0o644)
	if err != nil {
		t.Fatal(err)
	}
	code, script, stderr := runQlaunch(t, nil, "script", "slurm", topo, "--nodes", "3", "--", "/usr/bin/python3", "script.py", "--n", "10")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	path := filepath.Join(dir, "job.sbatch")
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	checkShellScript(t, path)
	lines := strings.Split(script, "\n")
	index := func(prefix string) int {
		for i, l := range lines {
			if strings.HasPrefix(l, prefix) {
				return i
			}
		}
		t.Fatalf("the script has no line starting %q:\n%s", prefix, script)
		return -1
	}
	secret := index(`export QLAUNCH_SECRET_FILE=`)
	topoLine := index("TOPOLOGY=")
	if lines[topoLine] != "TOPOLOGY="+topo {
		t.Errorf("topology line %q, want TOPOLOGY=%s", lines[topoLine], topo)
	}
	runtime := index(`srun `)
	if !strings.Contains(lines[runtime+1], `"$QLAUNCH" "$TOPOLOGY" &`) {
		t.Errorf("the ranks do not run the topology: %q", lines[runtime+1])
	}
	addr := index("read -r QLAUNCH_ADDR <")
	if lines[addr+1] != "export QLAUNCH_ADDR" {
		t.Errorf("QLAUNCH_ADDR is read but not exported: %q", lines[addr+1])
	}
	client := index("/usr/bin/python3 ")
	if lines[client] != "/usr/bin/python3 script.py --n 10 <&0 &" {
		t.Errorf("client line %q, want the interpreter and its arguments as given", lines[client])
	}
	if !(secret < runtime && runtime < addr && addr < client) {
		t.Errorf("want the secret file, then the runtime, then QLAUNCH_ADDR, then the client; lines %d, %d, %d, %d", secret, runtime, addr, client)
	}
	if !strings.Contains(script, `wait "$client_pid" || client_status=$?`) || !strings.HasSuffix(script, "exit \"$client_status\"\n") {
		t.Errorf("the job does not exit with the Python client's status:\n%s", script)
	}
}
