package topology

import (
	"strings"
	"testing"
)

// TestCheckNode: a GPU topology of 32 CPUs and 4 GPUs per node, on a node
// that gives the job 2 CPUs and 2 GPUs, fails on both keys, each error at
// the key's line, naming the node's figure and where it comes from; a node
// big enough, or one whose figures are unknown, passes.
func TestCheckNode(t *testing.T) {
	top, err := Load("../configs/slurm-gpu.toml")
	if err != nil {
		t.Fatal(err)
	}
	err = top.CheckNode(NodeResources{CPUs: 2, CPUsFrom: "SLURM_CPUS_ON_NODE=2", GPUs: 2, GPUsFrom: "CUDA_VISIBLE_DEVICES=0,1"})
	if err == nil {
		t.Fatal("32 CPUs and 4 GPUs fit a node of 2 and 2")
	}
	for _, want := range []string{
		"../configs/slurm-gpu.toml:14:1: workers.cpus_per_node: 32, but this node gives the job 2 CPUs (SLURM_CPUS_ON_NODE=2): set cpus_per_node = 0",
		"../configs/slurm-gpu.toml:11:1: workers.gpus_per_node: 4, but this node gives the job 2 GPUs (CUDA_VISIBLE_DEVICES=0,1): set gpus_per_node to at most 2",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	for _, n := range []NodeResources{
		{CPUs: 32, GPUs: 4},
		{CPUs: 64, GPUs: 8},
		{CPUs: 0, GPUs: -1}, // unknown
	} {
		if err := top.CheckNode(n); err != nil {
			t.Errorf("%+v: %v", n, err)
		}
	}
	def := Default()
	if err := def.CheckNode(NodeResources{CPUs: 1, GPUs: 0}); err != nil {
		t.Errorf("cpus_per_node = 0 (from the node) on a 1-CPU node: %v", err)
	}
}
