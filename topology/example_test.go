package topology_test

import (
	"fmt"

	"github.com/qlaunch/qlaunch/topology"
)

func ExampleTopology_RankOf() {
	top, err := topology.Parse("gpu.toml", []byte(`
[workers]
gpus_per_node = 2
ranks_per_gpu = 2
cpus_per_node = 8
pin = "compact"
`))
	if err != nil {
		fmt.Println(err)
		return
	}
	nodes := []string{"gpu01", "gpu02"}
	r, err := top.RankOf(nodes, nil, 9) // the last worker rank of gpu02
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(r.Rank, r.Host, r.Roles, "parent", r.Parent, "at", fmt.Sprintf("%s:%d", r.ParentHost, r.ParentPort))
	fmt.Println("cpus", r.CPUs, "slots", r.Workers, "CUDA_VISIBLE_DEVICES="+r.Env["CUDA_VISIBLE_DEVICES"])
	// Output:
	// 9 gpu02 worker parent 5 at gpu02:7473
	// cpus 6-7 slots 2 CUDA_VISIBLE_DEVICES=1
}

func ExampleParse_errors() {
	_, err := topology.Parse("bad.toml", []byte("[workers]\npin = \"tight\"\nslots = 4\n"))
	fmt.Println(err)
	// Output:
	// bad.toml:2:1: workers.pin: "tight" is not one of none, compact, spread, explicit
	// bad.toml:3:1: workers.slots: unknown key (known keys: blas_threads, cpus, cpus_per_node, env, gpu_env, gpus_per_node, pin, ranks_per_gpu, ranks_per_node, restarts, slots_per_rank)
}

func ExampleParseCPUList() {
	set, err := topology.ParseCPUList("0-7:2/4,16-N", 20)
	fmt.Println(set, set.Slice(), err)
	// Output: 0-1,4-5,16-19 [0 1 4 5 16 17 18 19] <nil>
}
