package rank

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// envOf turns "K=V" words (as `env` prints them) into a getenv function.
func envOf(words ...string) func(string) string {
	m := map[string]string{}
	for _, w := range words {
		for _, kv := range strings.Fields(w) {
			k, v, _ := strings.Cut(kv, "=")
			m[k] = v
		}
	}
	return func(k string) string { return m[k] }
}

// srunN3n6rank4 is one task of `srun -N3 -n6 env` (rank 4), as SLURM 22.05 set it.
const srunN3n6rank4 = `SLURMD_NODENAME=n3 SLURM_NODEID=2 SLURM_PROCID=4 SLURM_LOCALID=0
SLURM_NTASKS=6 SLURM_NPROCS=6 SLURM_STEP_NUM_TASKS=6 SLURM_NNODES=3 SLURM_JOB_NUM_NODES=3 SLURM_STEP_NUM_NODES=3
SLURM_JOB_NODELIST=n[1-3] SLURM_NODELIST=n[1-3] SLURM_STEP_NODELIST=n[1-3]
SLURM_TASKS_PER_NODE=2(x3) SLURM_STEP_TASKS_PER_NODE=2(x3) SLURM_JOB_CPUS_PER_NODE=2(x3) SLURM_CPUS_ON_NODE=2
SLURM_GTIDS=4,5 SLURM_JOB_ID=34 SLURM_JOBID=34 SLURM_STEP_ID=0 SLURM_STEPID=0
SLURM_JOB_NAME=dump.sh SLURM_JOB_PARTITION=debug SLURM_CLUSTER_NAME=qlab
SLURM_CPU_BIND=quiet,mask_cpu:0x1,0x2 SLURM_CPU_BIND_LIST=0x1,0x2 SLURM_CPU_BIND_TYPE=mask_cpu:
SLURM_LAUNCH_NODE_IPADDR=127.0.0.1 SLURM_SRUN_COMM_HOST=127.0.0.1 SLURM_TOPOLOGY_ADDR=n3 SLURM_SUBMIT_HOST=vm`

// srunN2n3 is the step part of `srun -N2 -n3` for the rank on n2 (rank 2).
const srunN2n3rank2 = `SLURMD_NODENAME=n2 SLURM_NODEID=1 SLURM_PROCID=2 SLURM_LOCALID=0
SLURM_NTASKS=3 SLURM_STEP_NUM_TASKS=3 SLURM_JOB_NODELIST=n[1-2] SLURM_STEP_NODELIST=n[1-2]
SLURM_TASKS_PER_NODE=2,1 SLURM_STEP_TASKS_PER_NODE=2,1 SLURM_CPUS_ON_NODE=1 SLURM_GTIDS=2
SLURM_JOB_ID=40 SLURM_STEP_ID=0 SLURM_CPU_BIND=quiet,mask_cpu:0x1`

// mpirunN4rank1 is rank 1 of `mpirun --allow-run-as-root --oversubscribe -n 4 env` (Open MPI 4.1).
const mpirunN4rank1 = `OMPI_COMM_WORLD_RANK=1 OMPI_COMM_WORLD_SIZE=4 OMPI_COMM_WORLD_LOCAL_RANK=1
OMPI_COMM_WORLD_LOCAL_SIZE=4 OMPI_COMM_WORLD_NODE_RANK=1 OMPI_UNIVERSE_SIZE=2
OMPI_APP_CTX_NUM_PROCS=4 OMPI_NUM_APP_CTX=1 OMPI_FIRST_RANKS=0 OMPI_COMMAND=dump.sh
OMPI_MCA_ess_base_vpid=1 OMPI_MCA_ess_base_jobid=2042429441 OMPI_MCA_orte_num_nodes=1
PMIX_RANK=1 PMIX_NAMESPACE=2042429441 PMIX_ID=2042429441.1 PMIX_HOSTNAME=vm PMIX_VERSION=4.2.2rc2`

// sallocMpirunRank3 is rank 3 of `salloc -N3 -n6 mpirun`: Open MPI's
// variables for the rank, SLURM's for orted (one per node, step of 3 tasks).
const sallocMpirunRank3 = `OMPI_COMM_WORLD_RANK=3 OMPI_COMM_WORLD_SIZE=6 OMPI_COMM_WORLD_LOCAL_RANK=1
OMPI_COMM_WORLD_LOCAL_SIZE=2 PMIX_RANK=3 PMIX_HOSTNAME=vm
SLURMD_NODENAME=n2 SLURM_NODEID=1 SLURM_PROCID=1 SLURM_LOCALID=0 SLURM_NTASKS=3 SLURM_STEP_NUM_TASKS=3
SLURM_JOB_NODELIST=n[1-3] SLURM_STEP_NODELIST=n[1-3] SLURM_TASKS_PER_NODE=1(x3) SLURM_STEP_TASKS_PER_NODE=1(x3)
SLURM_JOB_ID=50 SLURM_STEP_ID=0 SLURM_CPU_BIND=quiet,none`

func TestDetect(t *testing.T) {
	dir := t.TempDir()
	nodefile := filepath.Join(dir, "1234.pbs01")
	if err := os.WriteFile(nodefile, []byte("n1\nn1\nn2\nn2\nn3\nn3\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	palsNodefile := filepath.Join(dir, "5678.pbs01")
	if err := os.WriteFile(palsNodefile, []byte("x1001\nx1002\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	n3 := []string{"n1", "n2", "n3"}
	for _, c := range []struct {
		name string
		env  func(string) string
		want Info
		// blockRank is want's BlockRank (-1: ErrLayout).
		blockRank int
	}{
		{
			name: "srun -N3 -n6 rank 4",
			env:  envOf(srunN3n6rank4),
			want: Info{Launcher: SLURM, Rank: 4, Size: 6, LocalRank: 0, LocalSize: 2, Node: "n3", NodeIndex: 2,
				NodeList: n3, TasksPerNode: []int{2, 2, 2}, JobID: "34", StepID: "0"},
			blockRank: 4,
		},
		{
			name: "srun -N3 -n6 -m cyclic rank 3",
			env: envOf(`SLURMD_NODENAME=n1 SLURM_NODEID=0 SLURM_PROCID=3 SLURM_LOCALID=1 SLURM_NTASKS=6
				SLURM_STEP_NODELIST=n[1-3] SLURM_STEP_TASKS_PER_NODE=2(x3) SLURM_GTIDS=0,3 SLURM_DISTRIBUTION=cyclic
				SLURM_JOB_ID=36 SLURM_STEP_ID=0`),
			want: Info{Launcher: SLURM, Rank: 3, Size: 6, LocalRank: 1, LocalSize: 2, Node: "n1", NodeIndex: 0,
				NodeList: n3, TasksPerNode: []int{2, 2, 2}, JobID: "36", StepID: "0"},
			blockRank: 1,
		},
		{
			name: "srun -N2 -n3 rank 2 (uneven)",
			env:  envOf(srunN2n3rank2),
			want: Info{Launcher: SLURM, Rank: 2, Size: 3, LocalRank: 0, LocalSize: 1, Node: "n2", NodeIndex: 1,
				NodeList: []string{"n1", "n2"}, TasksPerNode: []int{2, 1}, JobID: "40", StepID: "0"},
			blockRank: 2,
		},
		{
			name: "srun --mpi=pmix -N2 -n3 rank 2",
			env: envOf(srunN2n3rank2, `SLURM_MPI_TYPE=pmix PMIX_RANK=2 PMIX_NAMESPACE=slurm.pmix.40.0 PMIX_HOSTNAME=vm
				PMIX_VERSION=4.2.2rc2 SLURM_PMIX_MAPPING_SERV=(vector,(0,1,2),(1,1,1))`),
			want: Info{Launcher: PMIx, Rank: 2, Size: 3, LocalRank: 0, LocalSize: 1, Node: "n2", NodeIndex: 1,
				NodeList: []string{"n1", "n2"}, TasksPerNode: []int{2, 1}, JobID: "40", StepID: "0"},
			blockRank: 2,
		},
		{
			name: "srun --mpi=pmi2 -N2 -n3 rank 2",
			env:  envOf(srunN2n3rank2, `PMI_FD=11 PMI_JOBID=41.0 PMI_RANK=2 PMI_SIZE=3`),
			want: Info{Launcher: PMI, Rank: 2, Size: 3, LocalRank: 0, LocalSize: 1, Node: "n2", NodeIndex: 1,
				NodeList: []string{"n1", "n2"}, TasksPerNode: []int{2, 1}, JobID: "40", StepID: "0"},
			blockRank: 2,
		},
		{
			name: "srun --mpi=cray_shasta -N3 -n6 rank 4 (PALS)",
			env: envOf(srunN3n6rank4, `PALS_RANKID=4 PALS_NODEID=2 PALS_APID=49.0
				PALS_APINFO=/var/spool/slurmd/n3/mpi_cray_shasta/49.0/apinfo PALS_SPOOL_DIR=/var/spool/slurmd/n3/mpi_cray_shasta`),
			want: Info{Launcher: PALS, Rank: 4, Size: 6, LocalRank: 0, LocalSize: 2, Node: "n3", NodeIndex: 2,
				NodeList: n3, TasksPerNode: []int{2, 2, 2}, JobID: "34", StepID: "0"},
			blockRank: 4,
		},
		{
			name: "mpirun -n 4 rank 1",
			env:  envOf(mpirunN4rank1),
			want: Info{Launcher: OpenMPI, Rank: 1, Size: 4, LocalRank: 1, LocalSize: 4, Node: "vm",
				NodeList: []string{"vm"}, TasksPerNode: []int{4}},
			blockRank: 1,
		},
		{
			name: "salloc -N3 -n6 mpirun rank 3",
			env:  envOf(sallocMpirunRank3),
			want: Info{Launcher: OpenMPI, Rank: 3, Size: 6, LocalRank: 1, LocalSize: 2, Node: "n2", NodeIndex: 1,
				NodeList: n3, TasksPerNode: []int{2, 2, 2}, JobID: "50", StepID: "0", Daemons: true},
			blockRank: 3,
		},
		{
			name: "salloc -N3 mpirun -n 5 rank 4 (uneven: layout unknown)",
			env: envOf(`OMPI_COMM_WORLD_RANK=4 OMPI_COMM_WORLD_SIZE=5 OMPI_COMM_WORLD_LOCAL_RANK=0 OMPI_COMM_WORLD_LOCAL_SIZE=1
				SLURMD_NODENAME=n3 SLURM_NODEID=2 SLURM_PROCID=2 SLURM_LOCALID=0 SLURM_STEP_NUM_TASKS=3
				SLURM_STEP_NODELIST=n[1-3] SLURM_STEP_TASKS_PER_NODE=1(x3) SLURM_JOB_ID=51 SLURM_STEP_ID=0`),
			want: Info{Launcher: OpenMPI, Rank: 4, Size: 5, LocalRank: 0, LocalSize: 1, Node: "n3", NodeIndex: 2,
				NodeList: n3, JobID: "51", StepID: "0", Daemons: true},
			blockRank: -1,
		},
		{
			name: "mpiexec.mpich -n 2 rank 1 (hydra)",
			env:  envOf(`PMI_RANK=1 PMI_SIZE=2 PMI_FD=6 MPI_LOCALRANKID=1 MPI_LOCALNRANKS=2 MPIR_CVAR_CH3_INTERFACE_HOSTNAME=vm`),
			want: Info{Launcher: Hydra, Rank: 1, Size: 2, LocalRank: 1, LocalSize: 2, Node: "vm",
				NodeList: []string{"vm"}, TasksPerNode: []int{2}},
			blockRank: 1,
		},
		{
			name: "PALS under PBS Pro: mpiexec -n 8 --ppn 4, rank 5",
			env: envOf(`PALS_RANKID=5 PALS_NODEID=1 PALS_LOCAL_RANKID=1 PALS_LOCAL_SIZE=4 PALS_DEPTH=1 PALS_APID=a1b2
				PMI_RANK=5 PMI_SIZE=8 PMI_LOCAL_RANK=1 PMI_LOCAL_SIZE=4 PBS_JOBID=5678.pbs01 PBS_NODEFILE=` + palsNodefile),
			want: Info{Launcher: PALS, Rank: 5, Size: 8, LocalRank: 1, LocalSize: 4, Node: "x1002", NodeIndex: 1,
				NodeList: []string{"x1001", "x1002"}, TasksPerNode: []int{4, 4}, JobID: "5678.pbs01"},
			blockRank: 5,
		},
		{
			name: "PBS pbsdsh task 3",
			env: envOf(`PBS_JOBID=1234.pbs01 PBS_JOBNAME=job PBS_QUEUE=workq PBS_ENVIRONMENT=PBS_BATCH
				PBS_O_WORKDIR=/home/u PBS_NODENUM=1 PBS_TASKNUM=4 PBS_VNODENUM=3 PBS_NODEFILE=` + nodefile),
			want: Info{Launcher: PBS, Rank: 3, Size: 6, LocalRank: 1, LocalSize: 2, Node: "n2", NodeIndex: 1,
				NodeList: n3, TasksPerNode: []int{2, 2, 2}, JobID: "1234.pbs01"},
			blockRank: 3,
		},
		{
			name: "PBS job script",
			env:  envOf(`PBS_JOBID=1234.pbs01 PBS_ENVIRONMENT=PBS_BATCH PBS_TASKNUM=1 PBS_NODENUM=0 PBS_NODEFILE=` + nodefile),
			want: Info{Launcher: PBS, Size: 1, LocalSize: 1, Node: "n1", NodeList: []string{"n1"},
				TasksPerNode: []int{1}, JobID: "1234.pbs01"},
		},
		{
			name: "sbatch batch script: SLURM_PROCID=0 is not a task",
			env: envOf(`SLURM_JOB_ID=35 SLURM_JOBID=35 SLURM_PROCID=0 SLURM_NODEID=0 SLURM_LOCALID=0 SLURM_NTASKS=6
				SLURM_TASKS_PER_NODE=2(x3) SLURM_JOB_NODELIST=n[1-3] SLURM_NODELIST=n[1-3] SLURMD_NODENAME=n1
				SLURM_CPUS_ON_NODE=2 SLURM_NODE_ALIASES=(null)`),
			want: Info{Launcher: None, Size: 1, LocalSize: 1, Node: "n1", NodeList: []string{"n1"},
				TasksPerNode: []int{1}, JobID: "35"},
		},
		{
			name: "salloc shell",
			env: envOf(`SLURM_JOB_ID=37 SLURM_JOB_NODELIST=n[1-3] SLURM_NTASKS=6 SLURM_TASKS_PER_NODE=2(x3)
				SLURM_JOB_CPUS_PER_NODE=2(x3) SLURM_NODE_ALIASES=(null)`),
			want: Info{Launcher: None, Size: 1, LocalSize: 1, Node: "localhost", NodeList: []string{"localhost"},
				TasksPerNode: []int{1}, JobID: "37"},
		},
		{
			name: "no launcher",
			env:  envOf(`HOME=/root PATH=/usr/bin`),
			want: Info{Launcher: None, Size: 1, LocalSize: 1, Node: "localhost", NodeList: []string{"localhost"},
				TasksPerNode: []int{1}},
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := Detect(c.env)
			if err != nil {
				t.Fatalf("Detect: %v", err)
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Fatalf("Detect =\n%+v\nwant\n%+v", got, c.want)
			}
			br, err := got.BlockRank()
			switch {
			case c.blockRank < 0 && !errors.Is(err, ErrLayout):
				t.Fatalf("BlockRank = %d, %v; want ErrLayout", br, err)
			case c.blockRank >= 0 && (err != nil || br != c.blockRank):
				t.Fatalf("BlockRank = %d, %v; want %d", br, err, c.blockRank)
			}
		})
	}
}

func TestDetectErrors(t *testing.T) {
	for _, c := range []struct {
		name, env, wantVar string
	}{
		{"PMIx rank differs from SLURM_PROCID", srunN2n3rank2 + " PMIX_RANK=1", "PMIX_RANK"},
		{"PMI size differs from the step", srunN2n3rank2 + " PMI_RANK=2 PMI_SIZE=6", "PMI_SIZE"},
		{"node not in the node list", strings.Replace(srunN3n6rank4, "SLURMD_NODENAME=n3", "SLURMD_NODENAME=n9", 1), "SLURMD_NODENAME"},
		{"malformed procid", strings.Replace(srunN3n6rank4, "SLURM_PROCID=4", "SLURM_PROCID=four", 1), "SLURM_PROCID"},
		{"missing local id", strings.Replace(srunN3n6rank4, "SLURM_LOCALID=0", "", 1), "SLURM_LOCALID"},
		{"bad node list", strings.Replace(srunN3n6rank4, "SLURM_STEP_NODELIST=n[1-3]", "SLURM_STEP_NODELIST=n[1-", 1), "SLURM_STEP_NODELIST"},
		{"task count differs from tasks per node", strings.Replace(srunN3n6rank4, "SLURM_STEP_NUM_TASKS=6", "SLURM_STEP_NUM_TASKS=7", 1), "SLURM_STEP_NUM_TASKS"},
		{"job task count differs from tasks per node", strings.Replace(strings.Replace(srunN3n6rank4, "SLURM_STEP_NUM_TASKS=6", "", 1), "SLURM_NTASKS=6", "SLURM_NTASKS=7", 1), "SLURM_NTASKS"},
		{"PMIx outside SLURM", "PMIX_RANK=0 PMIX_NAMESPACE=x", "SLURM_STEP_ID"},
		{"Open MPI without local size", "OMPI_COMM_WORLD_RANK=0 OMPI_COMM_WORLD_SIZE=2 OMPI_COMM_WORLD_LOCAL_RANK=0", "OMPI_COMM_WORLD_LOCAL_SIZE"},
		{"PBS without node file", "PBS_JOBID=1.pbs PBS_VNODENUM=0", "PBS_NODEFILE"},
		{"PBS node file missing", "PBS_JOBID=1.pbs PBS_VNODENUM=0 PBS_NODEFILE=/nonexistent/nodefile", "PBS_NODEFILE"},
	} {
		t.Run(c.name, func(t *testing.T) {
			info, err := Detect(envOf(c.env))
			var ee *EnvError
			if !errors.As(err, &ee) {
				t.Fatalf("Detect = %+v, %v; want an *EnvError", info, err)
			}
			if ee.Var != c.wantVar {
				t.Fatalf("error names %s (%v), want %s", ee.Var, err, c.wantVar)
			}
		})
	}
}

func TestDetectInconsistent(t *testing.T) {
	// Rank beyond the size: caught by the invariant check, not a variable.
	_, err := Detect(envOf("OMPI_COMM_WORLD_RANK=4 OMPI_COMM_WORLD_SIZE=4 OMPI_COMM_WORLD_LOCAL_RANK=0 OMPI_COMM_WORLD_LOCAL_SIZE=4"))
	if !errors.Is(err, ErrInconsistent) {
		t.Fatalf("Detect = %v, want an error wrapping ErrInconsistent", err)
	}
	if got, want := err.Error(), "ompi launcher: inconsistent environment: rank 4 outside 0..3"; got != want {
		t.Fatalf("Detect error %q, want %q", got, want)
	}
}

func TestCheckMPISize(t *testing.T) {
	info := Info{Launcher: PMIx, Size: 6}
	if err := CheckMPISize(info, 6, "Open MPI v4.1.4"); err != nil {
		t.Fatalf("equal sizes: %v", err)
	}
	err := CheckMPISize(info, 1, "MPICH Version: 4.0.2")
	var sm *SizeMismatchError
	if !errors.As(err, &sm) || sm.MPISize != 1 || sm.LauncherSize != 6 || sm.Launcher != PMIx {
		t.Fatalf("CheckMPISize = %v, want a SizeMismatchError 1 vs 6", err)
	}
	if !strings.Contains(err.Error(), "MPI world size 1 differs from the 6 tasks the pmix launcher started") {
		t.Fatalf("message %q", err)
	}
}
