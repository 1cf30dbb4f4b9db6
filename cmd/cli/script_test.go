package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestScriptCommandGolden(t *testing.T) {
	tests := []struct {
		name string
		args []string
	}{
		{"slurm-gpu.sbatch", []string{"script", "slurm", "../../configs/slurm-gpu.toml", "--nodes", "4", "--time", "02:00:00",
			"--account", "qc", "--partition", "gpu", "--job-name", "synth", "--", "qlaunch", "synth", "--qubits", "3"}},
		{"slurm-cpu.sbatch", []string{"script", "slurm", "../../configs/slurm-cpu.toml", "--nodes", "2", "--timeout", "90s", "--",
			"python3", "my client.py", "--out", "results dir/"}},
		{"hierarchy.sbatch", []string{"script", "slurm", "--nodes", "100", "../../configs/hierarchy.toml", "--cpus", "128", "--", "qlaunch", "bench"}},
		{"pbs-polaris.qsub", []string{"script", "pbs", "../../configs/pbs-polaris.toml", "--nodes", "10", "--time", "00:30:00",
			"--account", "Quantum", "--partition", "debug-scaling", "--qlaunch", "/soft/qlaunch/bin/qlaunch", "--", "qlaunch", "compile", "in.qasm", "-o", "out.qasm"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runQlaunch(t, nil, tt.args...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			golden := filepath.Join("testdata", "script", tt.name)
			if *updateCmdGolden {
				if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(golden, []byte(stdout), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (go test ./cmd/cli -run Script -update-cmd)", err)
			}
			if stdout != string(want) {
				t.Fatalf("script differs from %s (review, then -update-cmd):\n%s", golden, stdout)
			}
			checkShellScript(t, golden)
		})
	}
}

func TestScriptCommandErrors(t *testing.T) {
	tests := []struct {
		name   string
		args   []string
		stderr string
	}{
		{"no client", []string{"script", "slurm", "../../configs/slurm-cpu.toml"}, "no client command"},
		{"kind", []string{"script", "lsf", "../../configs/slurm-cpu.toml", "--", "x"}, `"lsf": want slurm or pbs`},
		{"no topology", []string{"script", "slurm", "--", "x"}, "want slurm|pbs and a topology file"},
		{"nodes", []string{"script", "slurm", "../../configs/slurm-cpu.toml", "--nodes", "0", "--", "x"}, "--nodes must be at least 1"},
		{"pbs dedicated", []string{"script", "pbs", "../../configs/hierarchy.toml", "--", "x"}, "hierarchy.toml:9:1: server.placement: qlaunch script pbs lays out"},
		{"shell characters", []string{"script", "slurm", "../../configs/slurm-cpu.toml", "--account", "a;b c", "--", "x"}, `account "a;b c"`},
		{"shape", []string{"script", "slurm", "../../configs/hierarchy.toml", "--cpus", "0", "--", "x"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runQlaunch(t, nil, tt.args...)
			if tt.stderr == "" {
				if code != 0 {
					t.Fatalf("exit %d: %s", code, stderr)
				}
				return
			}
			if code != 2 || stdout != "" || !strings.Contains(stderr, tt.stderr) {
				t.Fatalf("exit %d, stdout %q, stderr %q; want 2 and %q", code, stdout, stderr, tt.stderr)
			}
		})
	}
}
