package topology

import (
	"errors"
	"fmt"
)

// NodeResources is what the node a rank runs on gives the job, as the
// bootstrap finds it there; CheckNode compares it with the topology.
type NodeResources struct {
	// CPUs the job may use on the node (0: unknown), and where the figure
	// comes from ("SLURM_CPUS_ON_NODE=2", "the affinity mask 0-1").
	CPUs     int
	CPUsFrom string
	// GPUs the job may use on the node (-1: unknown), and where the
	// figure comes from ("CUDA_VISIBLE_DEVICES=0,1").
	GPUs     int
	GPUsFrom string
}

// CheckNode reports, as one *ConfigError per key, where the topology asks
// a node for more than n gives: workers.cpus_per_node above the CPUs the
// job may use there (pinning would fail), workers.gpus_per_node above its
// GPUs. An unknown figure is not checked.
func (t *Topology) CheckNode(n NodeResources) error {
	var errs []error
	w := t.Workers
	if w.CPUsPerNode > 0 && n.CPUs > 0 && w.CPUsPerNode > n.CPUs {
		errs = append(errs, t.src.errAt("workers.cpus_per_node", fmt.Sprintf(
			"%d, but this node gives the job %d CPUs (%s): set cpus_per_node = 0 to use the CPUs the job gets, or at most %d, or ask the scheduler for more CPUs",
			w.CPUsPerNode, n.CPUs, n.CPUsFrom, n.CPUs)))
	}
	if w.GPUsPerNode > 0 && n.GPUs >= 0 && w.GPUsPerNode > n.GPUs {
		errs = append(errs, t.src.errAt("workers.gpus_per_node", fmt.Sprintf(
			"%d, but this node gives the job %d GPUs (%s): set gpus_per_node to at most %d, or ask the scheduler for more GPUs (--gpus-per-node)",
			w.GPUsPerNode, n.GPUs, n.GPUsFrom, n.GPUs)))
	}
	return errors.Join(errs...)
}
