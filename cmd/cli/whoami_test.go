package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/qlaunch/qlaunch/rank"
	"github.com/qlaunch/qlaunch/topology"
)

// whoamiRun runs "qlaunch ARGS…" in-process with the environment vars.
func whoamiRun(t *testing.T, vars map[string]string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	e := &env{stdin: strings.NewReader(""), stdout: &out, stderr: &errb, getenv: func(k string) string { return vars[k] }}
	code = run(context.Background(), args, e)
	return code, out.String(), errb.String()
}

func TestWhoami(t *testing.T) {
	cpus, err := rank.Affinity()
	if err != nil {
		t.Fatal(err)
	}
	aff := topology.NewCPUSet(cpus...).String()
	for _, c := range []struct {
		name string
		vars map[string]string
		want string
	}{
		{
			name: "srun -N3 -n6 rank 4",
			vars: map[string]string{
				"SLURMD_NODENAME": "n3", "SLURM_NODEID": "2", "SLURM_PROCID": "4", "SLURM_LOCALID": "0",
				"SLURM_NTASKS": "6", "SLURM_STEP_NUM_TASKS": "6", "SLURM_STEP_NODELIST": "n[1-3]",
				"SLURM_JOB_NODELIST": "n[1-3]", "SLURM_STEP_TASKS_PER_NODE": "2(x3)", "SLURM_TASKS_PER_NODE": "2(x3)",
				"SLURM_JOB_ID": "34", "SLURM_STEP_ID": "0",
			},
			want: "launcher:       slurm\nrank:           4\nsize:           6\nlocal rank:     0\nlocal size:     2\n" +
				"node:           n3\nnode index:     2\nnode list:      n1,n2,n3\ntasks per node: 2,2,2\njob id:         34\n" +
				"cpu affinity:   " + aff + "\n",
		},
		{
			name: "mpirun -n 4 rank 1",
			vars: map[string]string{
				"OMPI_COMM_WORLD_RANK": "1", "OMPI_COMM_WORLD_SIZE": "4", "OMPI_COMM_WORLD_LOCAL_RANK": "1",
				"OMPI_COMM_WORLD_LOCAL_SIZE": "4", "PMIX_RANK": "1", "PMIX_HOSTNAME": "vm",
			},
			want: "launcher:       ompi\nrank:           1\nsize:           4\nlocal rank:     1\nlocal size:     4\n" +
				"node:           vm\nnode index:     0\nnode list:      vm\ntasks per node: 4\njob id:         -\n" +
				"cpu affinity:   " + aff + "\n",
		},
		{
			name: "no launcher",
			vars: map[string]string{},
			want: "launcher:       none\nrank:           0\nsize:           1\nlocal rank:     0\nlocal size:     1\n" +
				"node:           localhost\nnode index:     0\nnode list:      localhost\ntasks per node: 1\njob id:         -\n" +
				"cpu affinity:   " + aff + "\n",
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, out, errs := whoamiRun(t, c.vars, "whoami")
			if code != 0 || out != c.want {
				t.Fatalf("exit %d, stderr %q, stdout:\n%s\nwant:\n%s", code, errs, out, c.want)
			}
		})
	}
}

func TestWhoamiJSON(t *testing.T) {
	code, out, errs := whoamiRun(t, map[string]string{
		"PMI_RANK": "1", "PMI_SIZE": "2", "MPI_LOCALRANKID": "1", "MPI_LOCALNRANKS": "2",
		"MPIR_CVAR_CH3_INTERFACE_HOSTNAME": "vm",
	}, "whoami", "--format", "json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	var got whoami
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("%v in %q", err, out)
	}
	got.CPUs = ""
	want := whoami{Launcher: rank.Hydra, Rank: 1, Size: 2, LocalRank: 1, LocalSize: 2, Node: "vm",
		NodeList: []string{"vm"}, TasksPerNode: []int{2}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v\nwant %+v", got, want)
	}
}

func TestWhoamiErrors(t *testing.T) {
	for _, c := range []struct {
		name     string
		vars     map[string]string
		args     []string
		wantCode int
		wantErr  string
	}{
		{"bad procid", map[string]string{"SLURM_STEP_ID": "0", "SLURM_PROCID": "x", "SLURM_STEP_NODELIST": "n1", "SLURM_STEP_TASKS_PER_NODE": "1"},
			[]string{"whoami"}, 2, `SLURM_PROCID="x"`},
		{"bad format", nil, []string{"whoami", "--format", "yaml"}, 2, `--format "yaml"`},
		{"argument", nil, []string{"whoami", "extra"}, 2, "takes no arguments"},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, _, errs := whoamiRun(t, c.vars, c.args...)
			if code != c.wantCode || !strings.Contains(errs, c.wantErr) {
				t.Fatalf("exit %d, stderr %q; want %d and %q", code, errs, c.wantCode, c.wantErr)
			}
		})
	}
}
