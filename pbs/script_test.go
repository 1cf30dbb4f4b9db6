package pbs

import (
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

var updateScripts = flag.Bool("update-scripts", false, "rewrite the golden qsub scripts under testdata/script")

func TestScriptGolden(t *testing.T) {
	tests := []struct {
		name string
		cfg  ScriptConfig
	}{
		{"polaris", ScriptConfig{Topology: "configs/pbs-polaris.toml", Nodes: 10, TasksPerNode: 5, CPUsPerNode: 32, GPUsPerNode: 4,
			Time: "00:30:00", Account: "Quantum", Queue: "debug-scaling", Client: []string{"qlaunch", "compile", "in.qasm", "-o", "out.qasm"}}},
		{"plain", ScriptConfig{Topology: "t.toml", Qlaunch: "./qlaunch", Nodes: 1, TasksPerNode: 2, ReadyTimeout: "30s",
			Client: []string{"sh", "-c", "echo \"$QLAUNCH_ADDR\"; exit 3"}}},
		{"openmpi", ScriptConfig{Topology: "t.toml", Nodes: 2, TasksPerNode: 3, MPI: MPIOpenMPI, Client: []string{"qlaunch", "submit", "fanout", "10", "2"}}},
		{"mpich", ScriptConfig{Topology: "t.toml", Nodes: 2, TasksPerNode: 3, MPI: MPIMPICH, Client: []string{"qlaunch", "submit", "fanout", "10", "2"}}},
		{"pals", ScriptConfig{Topology: "t.toml", Nodes: 2, TasksPerNode: 3, MPI: MPIPALS, Client: []string{"qlaunch", "submit", "fanout", "10", "2"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Script(tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			golden := filepath.Join("testdata", "script", tt.name+".qsub")
			if *updateScripts {
				if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (go test ./pbs -update-scripts)", err)
			}
			if got != string(want) {
				t.Fatalf("script differs from %s (review, then go test ./pbs -update-scripts):\n%s", golden, got)
			}
			checkShell(t, golden)
		})
	}
}

// checkShell runs bash -n and shellcheck on a script file. Without
// shellcheck the test skips the lint, unless CI=true, where it fails.
func checkShell(t *testing.T, path string) {
	t.Helper()
	if out, err := exec.Command("bash", "-n", path).CombinedOutput(); err != nil {
		t.Fatalf("bash -n %s: %v\n%s", path, err, out)
	}
	sc, err := exec.LookPath("shellcheck")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("shellcheck is not installed (apt-get install -y shellcheck); CI=true requires it")
		}
		t.Log("shellcheck not installed: lint skipped (apt-get install -y shellcheck)")
		return
	}
	if out, err := exec.Command(sc, "--shell=bash", path).CombinedOutput(); err != nil {
		t.Fatalf("shellcheck %s: %v\n%s", path, err, out)
	}
}

func TestScriptErrors(t *testing.T) {
	_, err := Script(ScriptConfig{Nodes: 0, TasksPerNode: 0, Account: "a b"})
	want := []string{
		"no topology file",
		"nodes 0: need at least 1",
		"bad shape: 0 tasks, 0 CPUs, 0 GPUs per node",
		"no client command",
		`account "a b": no spaces, quotes or shell characters allowed`,
	}
	if err == nil || err.Error() != strings.Join(want, "\n") {
		t.Fatalf("Script error = %v\nwant %s", err, strings.Join(want, "\n"))
	}
}

func TestJoinScript(t *testing.T) {
	s, err := JoinScript(JoinScriptConfig{
		ScriptConfig: ScriptConfig{Topology: "/shared/job.toml", Qlaunch: "/opt/bin/qlaunch", JobName: "qlaunch-alloc", Account: "proj",
			Queue: "workq", Time: "00:30:00", Nodes: 2, TasksPerNode: 3, CPUsPerNode: 8, MPI: MPIMPICH},
		AddressFile: "/shared/.qlaunch/addr", DrainAfter: 1740,
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"#PBS -N qlaunch-alloc\n", "#PBS -l select=2:mpiprocs=3:ncpus=8\n", "#PBS -l place=scatter:excl\n",
		"#PBS -l walltime=00:30:00\n", "#PBS -A proj\n", "#PBS -q workq\n",
		"QLAUNCH=/opt/bin/qlaunch\n", "ADDRESS_FILE=/shared/.qlaunch/addr\n",
		`mpiexec -n 6 -ppn 3 -f "$PBS_NODEFILE" -bind-to none "$QLAUNCH" "$TOPOLOGY" --join --address-file "$ADDRESS_FILE" &` + "\n",
		"(sleep 1740 && kill -TERM \"$ranks\" 2>/dev/null) &\n",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("script lacks %q:\n%s", want, s)
		}
	}
	if strings.Contains(s, "qlaunch wait") || strings.Contains(s, "\"$QLAUNCH\" \"$TOPOLOGY\" &") {
		t.Errorf("a join script starts no runtime of its own and waits for none:\n%s", s)
	}
	if out, err := exec.Command("bash", "-n", "-c", s).CombinedOutput(); err != nil {
		t.Fatalf("bash -n: %v %s\n%s", err, out, s)
	}
	if _, err := JoinScript(JoinScriptConfig{ScriptConfig: ScriptConfig{Topology: "t", Nodes: 1, TasksPerNode: 1}}); err == nil {
		t.Fatal("no address file, yet a script")
	}
	if _, err := JoinScript(JoinScriptConfig{ScriptConfig: ScriptConfig{Topology: "t", Nodes: 1, TasksPerNode: 1, Queue: "a b"}, AddressFile: "a"}); err == nil {
		t.Fatal("a queue with a space, yet a script")
	}
}
