package cli

import (
	"bytes"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

var updateCmdGolden = flag.Bool("update-cmd", false, "rewrite the golden outputs of qlaunch plan and qlaunch script under testdata/")

// runQlaunch runs qlaunch in-process with args and the given environment.
func runQlaunch(t *testing.T, vars map[string]string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	e := &env{stdin: strings.NewReader(""), stdout: &out, stderr: &errb, getenv: func(k string) string { return vars[k] }}
	code = run(t.Context(), args, e)
	return code, out.String(), errb.String()
}

func TestPlanCommand(t *testing.T) {
	nodefile := filepath.Join(t.TempDir(), "nodefile")
	if err := os.WriteFile(nodefile, []byte("h1\nh1\nh1\nh2\nh2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		vars   map[string]string
		args   []string
		code   int
		stdout string
		stderr string // substring
	}{
		{name: "json", args: []string{"plan", "../../configs/local.toml", "--nodelist", "localhost", "--cpus", "3", "--format", "json"},
			stdout: `{"ranks":[
{"rank":0,"host":"localhost","node":0,"local_rank":0,"role":"server+manager","parent":-1,"parent_host":"","parent_port":0,"children":[1],"depth":0,"port":7472,"cpus":"","workers":0,"gpus":[],"env":{}},
{"rank":1,"host":"localhost","node":0,"local_rank":1,"role":"worker","parent":0,"parent_host":"localhost","parent_port":7472,"children":[],"depth":1,"port":0,"cpus":"","workers":3,"gpus":[],"env":{"MKL_NUM_THREADS":"1","NUMEXPR_NUM_THREADS":"1","OMP_NUM_THREADS":"1","OPENBLAS_NUM_THREADS":"1","VECLIB_MAXIMUM_THREADS":"1"}}
]}
`},
		{name: "flags first, table", args: []string{"plan", "--cpus=2", "--nodelist=n[1-2]", "../../configs/hierarchy.toml"},
			stdout: `RANK  HOST  NODE  LOCAL  ROLE     PARENT  PORT  WORKERS  CPUS  GPUS  ENV
0     n1    0     0      server   -1      7472  0        -     -     -
1     n1    0     1      manager  0       7473  0        -     -     -
2     n1    0     2      worker   1       0     2        0-1   -     MKL_NUM_THREADS=1 NUMEXPR_NUM_THREADS=1 OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 VECLIB_MAXIMUM_THREADS=1
3     n2    1     0      manager  0       7473  0        -     -     -
4     n2    1     1      worker   3       0     2        0-1   -     MKL_NUM_THREADS=1 NUMEXPR_NUM_THREADS=1 OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 VECLIB_MAXIMUM_THREADS=1

SLURM: salloc or sbatch --nodes=2 --exclusive, then srun --ntasks=5 --distribution=arbitrary --cpu-bind=none --overcommit qlaunch ../../configs/hierarchy.toml, with SLURM_HOSTFILE naming each rank's node (qlaunch plan ../../configs/hierarchy.toml --format hostfile >hosts; export SLURM_HOSTFILE=hosts) (qlaunch script slurm writes the batch script)
`},
		{name: "dot", args: []string{"plan", "../../configs/slurm-cpu.toml", "--nodelist", "c[1-3]", "--format", "dot", "--cpus", "4"},
			stdout: `digraph qlaunch {
  rankdir=TB;
  node [shape=box, fontname="monospace"];
  r0 [label="0 server+manager\nc1\n1 worker ranks, 4 slots"];
  r2 [label="2 manager\nc2\n1 worker ranks, 4 slots"];
  r4 [label="4 manager\nc3\n1 worker ranks, 4 slots"];
  r0 -> r2;
  r0 -> r4;
}
`},
		{name: "hostfile from the SLURM environment", vars: map[string]string{"SLURM_JOB_NODELIST": "a[1-2]"},
			args: []string{"plan", "../../configs/hierarchy.toml", "--format", "hostfile"}, stdout: "a1\na1\na1\na2\na2\n"},
		{name: "nodefile", args: []string{"plan", "../../configs/slurm-cpu.toml", "--nodefile", nodefile, "--format", "hostfile", "--cpus", "2"},
			stdout: "h1\nh1\nh1\nh2\nh2\n"},
		{name: "ntasks-per-node", args: []string{"plan", "../../configs/slurm-cpu.toml", "--nodelist", "x", "--ntasks-per-node", "3", "--format", "hostfile", "--cpus", "2"},
			stdout: "x\nx\nx\n"},
		{name: "help", args: []string{"plan", "--help"}, stdout: ""},
		{name: "bad nodelist", args: []string{"plan", "../../configs/local.toml", "--nodelist", "n[3-1]"}, code: 2, stderr: "--nodelist"},
		{name: "no nodes", args: []string{"plan", "../../configs/local.toml"}, code: 2, stderr: "no nodes"},
		{name: "both", args: []string{"plan", "../../configs/local.toml", "--nodelist", "a", "--nodefile", nodefile}, code: 2, stderr: "exclude each other"},
		{name: "format", args: []string{"plan", "../../configs/local.toml", "--nodelist", "a", "--format", "yaml"}, code: 2, stderr: `--format "yaml"`},
		{name: "no topology", args: []string{"plan", "--nodelist", "a"}, code: 2, stderr: "want one topology file"},
		{name: "missing topology", args: []string{"plan", "nonexistent.toml", "--nodelist", "a"}, code: 2, stderr: "nonexistent.toml: open nonexistent.toml"},
		{name: "too few tasks", args: []string{"plan", "../../configs/local.toml", "--nodelist", "a", "--ntasks-per-node", "1"}, code: 2, stderr: "no worker ranks"},
		{name: "unknown flag", args: []string{"plan", "--nodes", "3"}, code: 2, stderr: "-nodes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runQlaunch(t, tt.vars, tt.args...)
			if code != tt.code {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tt.code, stdout, stderr)
			}
			if tt.name == "help" {
				if !strings.Contains(stdout, "usage: qlaunch plan TOPOLOGY.toml") {
					t.Fatalf("help: %s", stdout)
				}
				return
			}
			if stdout != tt.stdout {
				t.Fatalf("stdout:\n%s\nwant:\n%s", stdout, tt.stdout)
			}
			if !strings.Contains(stderr, tt.stderr) {
				t.Fatalf("stderr %q does not contain %q", stderr, tt.stderr)
			}
		})
	}
}

func TestPlanCommandReportsEveryProblem(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bad.toml")
	text := "[runtime]\nport = \"high\"\ncolour = \"blue\"\n\n[workers]\npin = \"tight\"\nranks_per_node = 4\ncpus_per_node = 2\n[workers.env]\nX = \"{nodename}\"\n"
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := runQlaunch(t, nil, "plan", path, "--nodelist", "n1")
	if code != 2 || stdout != "" {
		t.Fatalf("exit %d, stdout %q", code, stdout)
	}
	want := "qlaunch: " + path + ":2:1: runtime.port: must be an integer, not a string\n" +
		path + ":3:1: runtime.colour: unknown key (known keys: accept_rate, address_file, compress_threshold, compression, handshake_timeout, heartbeat, heartbeat_timeout, log_level, max_client_bytes, max_client_tasks, max_pending_handshakes, max_queued_bytes, max_queued_tasks, max_result_bytes, network, outbox_bytes, outbox_stall, port, secret_file)\n" +
		path + ":6:1: workers.pin: \"tight\" is not one of none, compact, spread, explicit\n" +
		path + ":10:1: workers.env.X: unknown placeholder {nodename} (known: {rank}, {local_rank}, {node}, {host}, {gpu})\n"
	if stderr != want {
		t.Fatalf("stderr:\n%s\nwant:\n%s", stderr, want)
	}
}

// checkShellScript runs bash -n and shellcheck on a script file. Without
// shellcheck the lint is skipped, unless CI=true, where the test fails.
func checkShellScript(t *testing.T, path string) {
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
