package cli

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/qlaunch/qlaunch/rank"
	"github.com/qlaunch/qlaunch/topology"
)

// What a bootstrapped rank (qlaunch TOPOLOGY.toml, plan --check) checks
// before it computes its plan entry: that a launcher started it, that the
// node gives the job what the topology asks for, and, when the plan does
// not fit the tasks the launcher started, which launcher options it needs.

// errNoLauncher is the bootstrap started by hand, outside any launcher.
func errNoLauncher(path string) error {
	return usagef("%s: no launcher detected (no srun, mpirun, mpiexec or PBS variables): qlaunch %s is one rank of a job; "+
		"on this machine use qlaunch run %s -- CMD…", path, path, path)
}

// srunOptions are the srun options that start t's ranks on nodes nodes
// (0: as many as the allocation has) as its plan lays them out: the ranks
// per node, unbound (qlaunch pins its worker ranks itself), more ranks
// than CPUs allowed. With a dedicated server node 0 holds one rank more,
// which srun lays out only from a host file (srunHostfileNote).
func srunOptions(t *topology.Topology, nodes int) string {
	perNode := 1 + t.WorkerRanksPerNode()
	if t.Server.Placement == topology.PlaceDedicated {
		ntasks := fmt.Sprintf("$((%d * SLURM_NNODES + 1))", perNode)
		if nodes > 0 {
			ntasks = strconv.Itoa(perNode*nodes + 1)
		}
		return "--ntasks=" + ntasks + " --distribution=arbitrary --cpu-bind=none --overcommit"
	}
	return fmt.Sprintf("--ntasks-per-node=%d --cpu-bind=none --overcommit", perNode)
}

// srunHostfileNote is what srunOptions needs besides, if anything.
func srunHostfileNote(t *topology.Topology, path string) string {
	if t.Server.Placement != topology.PlaceDedicated {
		return ""
	}
	return fmt.Sprintf(", with SLURM_HOSTFILE naming each rank's node (qlaunch plan %s --format hostfile >hosts; export SLURM_HOSTFILE=hosts)", path)
}

// withLaunchHint adds to a plan error that is about the tasks per node the
// launcher options the topology needs.
func withLaunchHint(err error, path string, t *topology.Topology, info rank.Info) error {
	if !errors.Is(err, topology.ErrTasksPerNode) {
		return err
	}
	got := ""
	if len(info.TasksPerNode) > 0 {
		got = fmt.Sprintf(" (the launcher started %s task(s) per node)", joinInts(info.TasksPerNode))
	}
	return fmt.Errorf("%w: this topology needs %d tasks per node%s: start it with srun %s%s (qlaunch plan %s prints the options)",
		err, 1+t.WorkerRanksPerNode(), got, srunOptions(t, len(info.NodeList)), srunHostfileNote(t, path), path)
}

// nodeResources finds what this node gives the job: its CPUs from
// SLURM_CPUS_ON_NODE, else this process's affinity mask; its GPUs from
// CUDA_VISIBLE_DEVICES when set (an empty value reads as unset), else
// SLURM_GPUS_ON_NODE, else unknown.
func nodeResources(getenv func(string) string) topology.NodeResources {
	n := topology.NodeResources{GPUs: -1}
	if v := getenv("SLURM_CPUS_ON_NODE"); v != "" {
		if c, err := strconv.Atoi(v); err == nil && c > 0 {
			n.CPUs, n.CPUsFrom = c, "SLURM_CPUS_ON_NODE="+v
		}
	}
	if n.CPUs == 0 {
		var set unix.CPUSet
		if err := unix.SchedGetaffinity(0, &set); err == nil && set.Count() > 0 {
			var cpus []int
			for c := range len(set) * 64 {
				if set.IsSet(c) {
					cpus = append(cpus, c)
				}
			}
			n.CPUs, n.CPUsFrom = set.Count(), "the affinity mask "+topology.NewCPUSet(cpus...).String()
		}
	}
	if v := getenv("CUDA_VISIBLE_DEVICES"); v != "" {
		n.GPUs, n.GPUsFrom = 0, "CUDA_VISIBLE_DEVICES="+v
		if v != "NoDevFiles" {
			n.GPUs = len(strings.Split(v, ","))
		}
	} else if v := getenv("SLURM_GPUS_ON_NODE"); v != "" {
		if g, err := strconv.Atoi(v); err == nil && g >= 0 {
			n.GPUs, n.GPUsFrom = g, "SLURM_GPUS_ON_NODE="+v
		}
	}
	return n
}
