package slurm

import (
	"errors"
	"reflect"
	"testing"
)

func getenvOf(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

// srunRank4 is rank 4 of `srun -N3 -n6 env` as measured on SLURM 22.05.
var srunRank4 = map[string]string{
	"SLURMD_NODENAME": "n3", "SLURM_NODEID": "2", "SLURM_PROCID": "4", "SLURM_LOCALID": "0",
	"SLURM_NTASKS": "6", "SLURM_NPROCS": "6", "SLURM_STEP_NUM_TASKS": "6",
	"SLURM_NNODES": "3", "SLURM_JOB_NUM_NODES": "3", "SLURM_STEP_NUM_NODES": "3",
	"SLURM_JOB_NODELIST": "n[1-3]", "SLURM_NODELIST": "n[1-3]", "SLURM_STEP_NODELIST": "n[1-3]",
	"SLURM_TASKS_PER_NODE": "2(x3)", "SLURM_STEP_TASKS_PER_NODE": "2(x3)",
	"SLURM_JOB_CPUS_PER_NODE": "2(x3)", "SLURM_CPUS_ON_NODE": "2", "SLURM_GTIDS": "4,5",
	"SLURM_JOB_ID": "34", "SLURM_JOBID": "34", "SLURM_STEP_ID": "0", "SLURM_STEPID": "0",
}

func with(base map[string]string, kv ...string) map[string]string {
	m := make(map[string]string, len(base))
	for k, v := range base {
		m[k] = v
	}
	for i := 0; i < len(kv); i += 2 {
		if kv[i+1] == "" {
			delete(m, kv[i])
		} else {
			m[kv[i]] = kv[i+1]
		}
	}
	return m
}

func TestStepFromEnv(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		ok   bool
		want Step
	}{
		{"outside SLURM", map[string]string{"HOME": "/root"}, false, Step{}},
		{"srun task", srunRank4, true, Step{
			Role: RoleTask, JobID: "34", StepID: "0", Rank: 4, Size: 6, LocalRank: 0, NodeIndex: 2, NodeName: "n3",
			NodeList: "n[1-3]", Nodes: []string{"n1", "n2", "n3"}, TasksPerNode: []int{2, 2, 2},
			CPUsPerTask: -1, CPUsOnNode: 2, GTIDs: []int{4, 5}, GPUsOnNode: -1,
		}},
		{"srun task with GPUs and -c", with(srunRank4, "SLURM_STEP_GPUS", "0,1", "SLURM_GPUS_ON_NODE", "2", "SLURM_CPUS_PER_TASK", "2"), true, Step{
			Role: RoleTask, JobID: "34", StepID: "0", Rank: 4, Size: 6, LocalRank: 0, NodeIndex: 2, NodeName: "n3",
			NodeList: "n[1-3]", Nodes: []string{"n1", "n2", "n3"}, TasksPerNode: []int{2, 2, 2},
			CPUsPerTask: 2, CPUsOnNode: 2, GTIDs: []int{4, 5}, GPUs: []int{0, 1}, GPUsOnNode: 2,
		}},
		{"uneven srun -N2 -n3, rank on n2", map[string]string{
			"SLURM_JOB_ID": "40", "SLURM_STEP_ID": "1", "SLURM_PROCID": "2", "SLURM_LOCALID": "0", "SLURM_NODEID": "1",
			"SLURM_STEP_NUM_TASKS": "3", "SLURM_STEP_NODELIST": "n[1-2]", "SLURM_STEP_TASKS_PER_NODE": "2,1",
			"SLURM_JOB_NODELIST": "n[1-3]", "SLURM_TASKS_PER_NODE": "1(x3)", "SLURMD_NODENAME": "n2",
		}, true, Step{
			Role: RoleTask, JobID: "40", StepID: "1", Rank: 2, Size: 3, LocalRank: 0, NodeIndex: 1, NodeName: "n2",
			NodeList: "n[1-2]", Nodes: []string{"n1", "n2"}, TasksPerNode: []int{2, 1},
			CPUsPerTask: -1, CPUsOnNode: -1, GPUsOnNode: -1,
		}},
		{"sbatch batch script", map[string]string{
			"SLURM_JOB_ID": "35", "SLURM_JOB_NODELIST": "n[1-3]", "SLURM_NTASKS": "6", "SLURM_TASKS_PER_NODE": "2(x3)",
			"SLURM_JOB_CPUS_PER_NODE": "2(x3)", "SLURM_PROCID": "0", "SLURM_NODEID": "0", "SLURM_LOCALID": "0",
			"SLURMD_NODENAME": "n1", "SLURM_CPUS_ON_NODE": "2",
		}, true, Step{
			Role: RoleBatch, JobID: "35", Rank: 0, Size: 6, LocalRank: 0, NodeIndex: 0, NodeName: "n1",
			NodeList: "n[1-3]", Nodes: []string{"n1", "n2", "n3"}, TasksPerNode: []int{2, 2, 2},
			CPUsPerTask: -1, CPUsOnNode: 2, GPUsOnNode: -1,
		}},
		{"salloc shell", map[string]string{
			"SLURM_JOBID": "36", "SLURM_NODELIST": "n[1-2]", "SLURM_NTASKS": "4", "SLURM_TASKS_PER_NODE": "2(x2)",
		}, true, Step{
			Role: RoleAllocation, JobID: "36", Rank: -1, Size: 4, LocalRank: -1, NodeIndex: -1,
			NodeList: "n[1-2]", Nodes: []string{"n1", "n2"}, TasksPerNode: []int{2, 2},
			CPUsPerTask: -1, CPUsOnNode: -1, GPUsOnNode: -1,
		}},
		{"orted step of salloc mpirun", map[string]string{
			"SLURM_JOB_ID": "37", "SLURM_STEP_ID": "0", "SLURM_PROCID": "1", "SLURM_NODEID": "1", "SLURM_LOCALID": "0",
			"SLURM_NTASKS": "3", "SLURM_STEP_NUM_TASKS": "3", "SLURM_STEP_NODELIST": "n[1-3]", "SLURM_STEP_TASKS_PER_NODE": "1(x3)",
		}, true, Step{
			Role: RoleTask, JobID: "37", StepID: "0", Rank: 1, Size: 3, LocalRank: 0, NodeIndex: 1,
			NodeList: "n[1-3]", Nodes: []string{"n1", "n2", "n3"}, TasksPerNode: []int{1, 1, 1},
			CPUsPerTask: -1, CPUsOnNode: -1, GPUsOnNode: -1,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok, err := StepFromEnv(getenvOf(tt.env))
			if err != nil || ok != tt.ok || !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("StepFromEnv = %+v, %v, %v\nwant %+v, %v", got, ok, err, tt.want, tt.ok)
			}
		})
	}
}

func TestStepFromEnvRejects(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		bad  string
	}{
		{"procid not a number", with(srunRank4, "SLURM_PROCID", "four"), "SLURM_PROCID"},
		{"procid signed", with(srunRank4, "SLURM_PROCID", "+4"), "SLURM_PROCID"},
		{"procid spaced", with(srunRank4, "SLURM_PROCID", " 4"), "SLURM_PROCID"},
		{"procid huge", with(srunRank4, "SLURM_PROCID", "99999999999"), "SLURM_PROCID"},
		{"rank past size", with(srunRank4, "SLURM_PROCID", "6"), "SLURM_PROCID"},
		{"no procid in a step", with(srunRank4, "SLURM_PROCID", ""), "SLURM_PROCID"},
		{"node index past list", with(srunRank4, "SLURM_NODEID", "3"), "SLURM_NODEID"},
		{"bad node list", with(srunRank4, "SLURM_STEP_NODELIST", "n[3-1]"), "SLURM_STEP_NODELIST"},
		{"bad counts", with(srunRank4, "SLURM_STEP_TASKS_PER_NODE", "2(x3"), "SLURM_STEP_TASKS_PER_NODE"},
		{"counts per node mismatch", with(srunRank4, "SLURM_STEP_TASKS_PER_NODE", "3(x2)"), "SLURM_STEP_TASKS_PER_NODE"},
		{"counts sum mismatch", with(srunRank4, "SLURM_STEP_TASKS_PER_NODE", "2(x2),3"), "SLURM_STEP_TASKS_PER_NODE"},
		{"local rank past node", with(srunRank4, "SLURM_LOCALID", "2"), "SLURM_LOCALID"},
		{"bad gtids", with(srunRank4, "SLURM_GTIDS", "4,,5"), "SLURM_GTIDS"},
		{"bad gpus", with(srunRank4, "SLURM_STEP_GPUS", "GPU-1"), "SLURM_STEP_GPUS"},
		{"bad cpus per task", with(srunRank4, "SLURM_CPUS_PER_TASK", "2.5"), "SLURM_CPUS_PER_TASK"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, ok, err := StepFromEnv(getenvOf(tt.env))
			var ee *EnvError
			if !errors.As(err, &ee) || ok || ee.Var != tt.bad || !ee.BadInput() {
				t.Fatalf("StepFromEnv: ok %v, error %v; want an *EnvError for %s", ok, err, tt.bad)
			}
		})
	}
	_, _, err := StepFromEnv(getenvOf(with(srunRank4, "SLURM_STEP_NODELIST", "n[3-1]")))
	var se *SyntaxError
	if !errors.As(err, &se) || se.Part != "3-1" {
		t.Fatalf("a bad node list should wrap the *SyntaxError: %v", err)
	}
}

func TestRoleString(t *testing.T) {
	for r, want := range map[Role]string{RoleNone: "none", RoleAllocation: "allocation", RoleBatch: "batch", RoleTask: "task", Role(9): "Role(9)"} {
		if r.String() != want {
			t.Errorf("Role(%d).String() = %q; want %q", int(r), r.String(), want)
		}
	}
}
