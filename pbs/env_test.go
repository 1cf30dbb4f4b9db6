package pbs

import (
	"errors"
	"testing"
)

func getenvOf(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestJobFromEnv(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		ok   bool
		want Job
	}{
		{"not PBS", map[string]string{"SLURM_JOB_ID": "3"}, false, Job{}},
		{"OpenPBS batch job", map[string]string{
			"PBS_JOBID": "1234.pbs01", "PBS_JOBNAME": "synth", "PBS_QUEUE": "workq",
			"PBS_NODEFILE": "/var/spool/pbs/aux/1234.pbs01", "PBS_ENVIRONMENT": "PBS_BATCH",
			"PBS_O_WORKDIR": "/home/u/run", "PBS_NODENUM": "0", "PBS_TASKNUM": "1",
		}, true, Job{
			Flavor: FlavorPBS, ID: "1234.pbs01", Name: "synth", Queue: "workq", Nodefile: "/var/spool/pbs/aux/1234.pbs01",
			Environment: "PBS_BATCH", WorkDir: "/home/u/run", NodeNum: 0, TaskNum: 1, ArrayIndex: -1,
			NumNodes: -1, NumPPN: -1, NP: -1, VNodeNum: -1,
		}},
		{"array subjob", map[string]string{"PBS_JOBID": "1234[7].pbs01", "PBS_ARRAY_INDEX": "7", "PBS_ENVIRONMENT": "PBS_INTERACTIVE"}, true, Job{
			ID: "1234[7].pbs01", Environment: "PBS_INTERACTIVE", NodeNum: -1, TaskNum: -1, ArrayIndex: 7,
			NumNodes: -1, NumPPN: -1, NP: -1, VNodeNum: -1,
		}},
		{"Torque", map[string]string{
			"PBS_JOBID": "77.torque", "PBS_NODEFILE": "/var/spool/torque/aux/77.torque", "PBS_NUM_NODES": "2",
			"PBS_NUM_PPN": "8", "PBS_NP": "16", "PBS_VNODENUM": "3", "PBS_NODENUM": "1",
		}, true, Job{
			Flavor: FlavorTorque, ID: "77.torque", Nodefile: "/var/spool/torque/aux/77.torque", NodeNum: 1, TaskNum: -1,
			ArrayIndex: -1, NumNodes: 2, NumPPN: 8, NP: 16, VNodeNum: 3,
		}},
		{"SLURM's qsub wrapper", map[string]string{
			"PBS_JOBID": "23", "PBS_JOBNAME": "job.sh", "PBS_O_WORKDIR": "/tmp/w", "PBS_NODENUM": "1", "PBS_TASKNUM": "3",
		}, true, Job{
			ID: "23", Name: "job.sh", WorkDir: "/tmp/w", NodeNum: 1, TaskNum: 3, ArrayIndex: -1,
			NumNodes: -1, NumPPN: -1, NP: -1, VNodeNum: -1,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok, err := JobFromEnv(getenvOf(tt.env))
			if err != nil || ok != tt.ok || got != tt.want {
				t.Fatalf("JobFromEnv = %+v, %v, %v\nwant %+v, %v", got, ok, err, tt.want, tt.ok)
			}
		})
	}
}

func TestJobFromEnvRejects(t *testing.T) {
	tests := []struct {
		env map[string]string
		bad string
	}{
		{map[string]string{"PBS_JOBID": "1", "PBS_NODENUM": "x"}, "PBS_NODENUM"},
		{map[string]string{"PBS_JOBID": "1", "PBS_TASKNUM": "-1"}, "PBS_TASKNUM"},
		{map[string]string{"PBS_JOBID": "1", "PBS_NUM_PPN": "8 "}, "PBS_NUM_PPN"},
		{map[string]string{"PBS_JOBID": "1", "PBS_NP": "1e3"}, "PBS_NP"},
		{map[string]string{"PBS_JOBID": "1", "PBS_ARRAY_INDEX": "99999999999"}, "PBS_ARRAY_INDEX"},
		{map[string]string{"PBS_JOBID": "1", "PBS_ENVIRONMENT": "BATCH"}, "PBS_ENVIRONMENT"},
		{map[string]string{"PBS_JOBID": "1", "PBS_NUM_NODES": "2", "PBS_NODENUM": "2"}, "PBS_NODENUM"},
	}
	for _, tt := range tests {
		_, ok, err := JobFromEnv(getenvOf(tt.env))
		var ee *EnvError
		if !errors.As(err, &ee) || ok || ee.Var != tt.bad || !ee.BadInput() {
			t.Errorf("JobFromEnv(%v): ok %v, %v; want an *EnvError for %s", tt.env, ok, err, tt.bad)
		}
	}
}

func TestPALSFromEnv(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		ok   bool
		want PALS
	}{
		{"not PALS", map[string]string{"PMI_RANK": "1", "PMI_SIZE": "4"}, false, PALS{}},
		{"PALS mpiexec", map[string]string{
			"PALS_RANKID": "5", "PALS_NODEID": "1", "PALS_LOCAL_RANKID": "1", "PALS_LOCAL_SIZE": "4", "PALS_DEPTH": "8",
			"PALS_APID": "a1b2", "PMI_RANK": "5", "PMI_SIZE": "8", "PMI_LOCAL_RANK": "1", "PMI_LOCAL_SIZE": "4",
		}, true, PALS{Rank: 5, Size: 8, NodeIndex: 1, LocalRank: 1, LocalSize: 4, Depth: 8, APID: "a1b2"}},
		{"PMI twins only", map[string]string{"PALS_APID": "x", "PMI_RANK": "2", "PMI_SIZE": "3", "PMI_LOCAL_RANK": "0", "PMI_LOCAL_SIZE": "1"},
			true, PALS{Rank: 2, Size: 3, NodeIndex: -1, LocalRank: 0, LocalSize: 1, Depth: -1, APID: "x"}},
		{"srun --mpi=cray_shasta", map[string]string{"PALS_RANKID": "1", "PALS_NODEID": "0", "PALS_APID": "49.0",
			"PALS_APINFO": "/var/spool/slurmd/n1/mpi_cray_shasta/49.0/apinfo"},
			true, PALS{Rank: 1, Size: -1, NodeIndex: 0, LocalRank: -1, LocalSize: -1, Depth: -1, APID: "49.0"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok, err := PALSFromEnv(getenvOf(tt.env))
			if err != nil || ok != tt.ok || got != tt.want {
				t.Fatalf("PALSFromEnv = %+v, %v, %v\nwant %+v, %v", got, ok, err, tt.want, tt.ok)
			}
		})
	}
}

func TestPALSFromEnvRejects(t *testing.T) {
	tests := []struct {
		env map[string]string
		bad string
	}{
		{map[string]string{"PALS_RANKID": "one"}, "PALS_RANKID"},
		{map[string]string{"PALS_RANKID": "1", "PALS_DEPTH": "-2"}, "PALS_DEPTH"},
		{map[string]string{"PALS_RANKID": "1", "PMI_RANK": "2"}, "PMI_RANK"},
		{map[string]string{"PALS_RANKID": "1", "PALS_LOCAL_SIZE": "2", "PMI_LOCAL_SIZE": "3"}, "PMI_LOCAL_SIZE"},
		{map[string]string{"PALS_RANKID": "4", "PMI_SIZE": "4"}, "PALS_RANKID"},
		{map[string]string{"PALS_RANKID": "0", "PALS_LOCAL_RANKID": "2", "PALS_LOCAL_SIZE": "2"}, "PALS_LOCAL_RANKID"},
		{map[string]string{"PALS_APID": "x", "PMI_SIZE": "0"}, "PMI_SIZE"},
		{map[string]string{"PALS_APID": "x", "PALS_LOCAL_SIZE": "0"}, "PALS_LOCAL_SIZE"},
	}
	for _, tt := range tests {
		_, ok, err := PALSFromEnv(getenvOf(tt.env))
		var ee *EnvError
		if !errors.As(err, &ee) || ok || ee.Var != tt.bad {
			t.Errorf("PALSFromEnv(%v): ok %v, %v; want an *EnvError for %s", tt.env, ok, err, tt.bad)
		}
	}
}

func TestFlavorString(t *testing.T) {
	if FlavorPBS.String() != "pbs" || FlavorTorque.String() != "torque" {
		t.Fatal(FlavorPBS.String(), FlavorTorque.String())
	}
}
