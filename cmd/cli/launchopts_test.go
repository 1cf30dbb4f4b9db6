package cli

import (
	"strings"
	"testing"
)

// TestBootstrapChecks: the errors a rank gives before it takes its role,
// each saying what to do: no launcher; one task per node for a topology
// that needs two (the srun options it needs); a node with fewer CPUs or
// GPUs than the topology asks for (the key and the node's figure).
func TestBootstrapChecks(t *testing.T) {
	oneTaskPerNode := func(procid string) map[string]string {
		return map[string]string{
			"SLURM_JOB_ID": "7", "SLURM_STEP_ID": "0", "SLURMD_NODENAME": "n1", "SLURM_NODEID": "0",
			"SLURM_PROCID": procid, "SLURM_LOCALID": "0", "SLURM_NTASKS": "3", "SLURM_STEP_NUM_TASKS": "3",
			"SLURM_STEP_NODELIST": "n[1-3]", "SLURM_JOB_NODELIST": "n[1-3]", "SLURM_STEP_TASKS_PER_NODE": "1(x3)",
			"SLURM_TASKS_PER_NODE": "1(x3)", "SLURM_CPUS_ON_NODE": "2",
		}
	}
	gpuNode := oneTaskPerNode("0")
	gpuNode["SLURM_STEP_TASKS_PER_NODE"], gpuNode["SLURM_TASKS_PER_NODE"], gpuNode["SLURM_NTASKS"], gpuNode["SLURM_STEP_NUM_TASKS"] = "9(x3)", "9(x3)", "27", "27"
	gpuNode["CUDA_VISIBLE_DEVICES"] = "0,1"
	for _, c := range []struct {
		name string
		vars map[string]string
		args []string
		want string
	}{
		{"no launcher", nil, []string{"../../configs/slurm-cpu.toml"},
			"qlaunch: ../../configs/slurm-cpu.toml: no launcher detected (no srun, mpirun, mpiexec or PBS variables): qlaunch ../../configs/slurm-cpu.toml is one rank of a job; on this machine use qlaunch run ../../configs/slurm-cpu.toml -- CMD…\n"},
		{"plan --check, no launcher", nil, []string{"plan", "../../configs/slurm-cpu.toml", "--check"},
			"qlaunch: plan --check: no launcher detected (no srun, mpirun, mpiexec or PBS variables): run it as every rank of a job: srun --ntasks-per-node=2 --cpu-bind=none --overcommit qlaunch plan ../../configs/slurm-cpu.toml --check --listen\n"},
		{"one task per node", oneTaskPerNode("0"), []string{"../../configs/slurm-cpu.toml"},
			"qlaunch: plan rank 0 on n1: plan: no worker ranks: every node holds only its server or manager rank: this topology needs 2 tasks per node (the launcher started 1,1,1 task(s) per node): start it with srun --ntasks-per-node=2 --cpu-bind=none --overcommit (qlaunch plan ../../configs/slurm-cpu.toml prints the options)\n"},
		{"plan --check, one task per node", oneTaskPerNode("0"), []string{"plan", "../../configs/slurm-cpu.toml", "--check"},
			"this topology needs 2 tasks per node (the launcher started 1,1,1 task(s) per node): start it with srun --ntasks-per-node=2 --cpu-bind=none --overcommit"},
		{"CPUs and GPUs", gpuNode, []string{"../../configs/slurm-gpu.toml"},
			"qlaunch: ../../configs/slurm-gpu.toml:14:1: workers.cpus_per_node: 32, but this node gives the job 2 CPUs (SLURM_CPUS_ON_NODE=2): set cpus_per_node = 0 to use the CPUs the job gets, or at most 2, or ask the scheduler for more CPUs\n" +
				"../../configs/slurm-gpu.toml:11:1: workers.gpus_per_node: 4, but this node gives the job 2 GPUs (CUDA_VISIBLE_DEVICES=0,1): set gpus_per_node to at most 2, or ask the scheduler for more GPUs (--gpus-per-node)\n"},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, _, stderr := runQlaunch(t, c.vars, c.args...)
			if code == 0 || !strings.Contains(stderr, c.want) {
				t.Fatalf("exit %d, stderr:\n%s\nwant:\n%s", code, stderr, c.want)
			}
		})
	}
}
