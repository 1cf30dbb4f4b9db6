package slurm

import (
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

var updateScripts = flag.Bool("update-scripts", false, "rewrite the golden sbatch scripts under testdata/script")

func TestScriptGolden(t *testing.T) {
	tests := []struct {
		name string
		cfg  ScriptConfig
	}{
		{"cpu", ScriptConfig{Topology: "configs/slurm-cpu.toml", Nodes: 4, TasksPerNode: 2, Time: "01:00:00", Account: "proj42", Partition: "cpu",
			Client: []string{"qlaunch", "bench", "--workload", "sleep0", "--tasks", "10000"}}},
		{"gpu", ScriptConfig{Topology: "/home/me/my topo.toml", Qlaunch: "/opt/qlaunch/bin/qlaunch", JobName: "synth-7", Nodes: 2, TasksPerNode: 9,
			CPUsPerTask: 3, GPUsPerNode: 4, ReadyTimeout: "2m", Client: []string{"python3", "-c", "print('it''s $HOME')"}}},
		{"dedicated", ScriptConfig{Topology: "configs/hierarchy.toml", Nodes: 64, TasksPerNode: 2, ExtraOnFirst: 1,
			Client: []string{"qlaunch", "status"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Script(tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			golden := filepath.Join("testdata", "script", tt.name+".sbatch")
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
				t.Fatalf("%v (go test ./slurm -update-scripts)", err)
			}
			if got != string(want) {
				t.Fatalf("script differs from %s (review, then go test ./slurm -update-scripts):\n%s", golden, got)
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
		"bad shape: 0 tasks per node, 0 extra on node 0, 0 CPUs per task, 0 GPUs per node",
		"no client command",
		`account "a b": no spaces, quotes or shell characters allowed`,
	}
	if err == nil || err.Error() != strings.Join(want, "\n") {
		t.Fatalf("Script error = %v\nwant %s", err, strings.Join(want, "\n"))
	}
}

func TestJoinScriptGolden(t *testing.T) {
	got, err := JoinScript(JoinScriptConfig{
		ScriptConfig: ScriptConfig{Topology: "configs/slurm-cpu.toml", Nodes: 2, TasksPerNode: 2, Time: "00:30:00", Partition: "cpu"},
		AddressFile:  "/shared/run/addr",
	})
	if err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "script", "join.sbatch")
	if *updateScripts {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (go test ./slurm -update-scripts)", err)
	}
	if got != string(want) {
		t.Fatalf("script differs from %s (review, then go test ./slurm -update-scripts):\n%s", golden, got)
	}
	for _, line := range []string{"#SBATCH --signal=TERM@60", `--join --address-file "$ADDRESS_FILE"`} {
		if !strings.Contains(got, line) {
			t.Errorf("join script lacks %q", line)
		}
	}
	checkShell(t, golden)
	if _, err := JoinScript(JoinScriptConfig{ScriptConfig: ScriptConfig{Topology: "t.toml", Nodes: 1, TasksPerNode: 2}}); err == nil {
		t.Error("a join script without an address file was written")
	}
}
