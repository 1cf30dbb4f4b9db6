package rank

import (
	"errors"
	"fmt"
	"os"
	"slices"

	"github.com/qlaunch/qlaunch/pbs"
)

// nodefile reads $PBS_NODEFILE: the unique hosts in order and how many
// lines (slots) each has.
func (d *detector) nodefile() (pbs.Nodefile, bool) {
	path := d.getenv("PBS_NODEFILE")
	if path == "" {
		d.fail("PBS_NODEFILE", "", errMissing)
		return pbs.Nodefile{}, false
	}
	f, err := os.Open(path)
	if err != nil {
		d.fail("PBS_NODEFILE", path, err)
		return pbs.Nodefile{}, false
	}
	defer f.Close()
	nf, err := pbs.ParseNodefile(f)
	if err != nil {
		d.fail("PBS_NODEFILE", path, err)
		return pbs.Nodefile{}, false
	}
	if len(nf.Hosts) == 0 {
		d.fail("PBS_NODEFILE", path, errors.New("lists no host"))
		return pbs.Nodefile{}, false
	}
	return nf, true
}

// pbs is a PBS job without a parallel launcher: a task started by pbsdsh
// (PBS_VNODENUM, the task's line in $PBS_NODEFILE, is its rank) or the job
// script itself (rank 0 of 1, on the first host).
func (d *detector) pbs() Info {
	d.l = PBS
	info := Info{Launcher: PBS, JobID: d.getenv("PBS_JOBID")}
	nf, ok := d.nodefile()
	if !ok {
		return info
	}
	if d.getenv("PBS_VNODENUM") == "" {
		info.Size, info.LocalSize = 1, 1
		info.Node, info.NodeList, info.TasksPerNode = nf.Hosts[0], nf.Hosts[:1], []int{1}
		return info
	}
	info.Rank = d.int("PBS_VNODENUM")
	info.NodeList, info.TasksPerNode = nf.Hosts, nf.RanksPerHost
	info.Size = sum(nf.RanksPerHost)
	if info.Rank >= info.Size {
		d.fail("PBS_VNODENUM", d.getenv("PBS_VNODENUM"), fmt.Errorf("beyond the %d lines of PBS_NODEFILE", info.Size))
		return info
	}
	// The node file lists each host's slots together, in host order.
	first := 0
	for i, n := range nf.RanksPerHost {
		if info.Rank < first+n {
			info.NodeIndex, info.Node = i, nf.Hosts[i]
			info.LocalRank, info.LocalSize = info.Rank-first, n
			break
		}
		first += n
	}
	return info
}

// pals is Cray PALS: PBS Pro's mpiexec (PALS_* with PMI_SIZE, nodes in
// $PBS_NODEFILE), or srun --mpi=cray_shasta (PALS_RANKID and PALS_NODEID in
// a SLURM step, no local rank and no size).
func (d *detector) pals() Info {
	d.l = PALS
	if s := d.getenv("SLURM_STEP_ID"); s != "" {
		info := d.direct(PALS, "PALS_RANKID", "")
		if d.err == nil && d.int("PALS_NODEID") != info.NodeIndex {
			d.fail("PALS_NODEID", d.getenv("PALS_NODEID"), fmt.Errorf("differs from the node index %d of %s", info.NodeIndex, info.Node))
		}
		return info
	}
	info := Info{Launcher: PALS, Rank: d.int("PALS_RANKID"), JobID: d.getenv("PBS_JOBID")}
	_, size := d.first("PMI_SIZE", "PALS_SIZE")
	if size == "" {
		d.fail("PMI_SIZE", "", errMissing)
		return info
	}
	info.Size = d.int("PMI_SIZE")
	name, _ := d.first("PALS_LOCAL_RANKID", "PMI_LOCAL_RANK")
	info.LocalRank = d.int(name)
	name, _ = d.first("PALS_LOCAL_SIZE", "PMI_LOCAL_SIZE")
	info.LocalSize = d.int(name)
	info.NodeIndex = d.int("PALS_NODEID")
	if d.err != nil {
		return info
	}
	nf, ok := d.nodefile()
	if !ok {
		return info
	}
	info.NodeList = nf.Hosts
	if info.NodeIndex >= len(nf.Hosts) {
		d.fail("PALS_NODEID", d.getenv("PALS_NODEID"), fmt.Errorf("beyond the %d hosts of PBS_NODEFILE", len(nf.Hosts)))
		return info
	}
	info.Node = nf.Hosts[info.NodeIndex]
	if info.LocalSize*len(nf.Hosts) == info.Size { // mpiexec --ppn P: P on every node
		info.TasksPerNode = slices.Repeat([]int{info.LocalSize}, len(nf.Hosts))
	}
	return info
}
