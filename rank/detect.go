package rank

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
)

// Launcher names what started this process.
type Launcher string

// The launchers Detect knows, in the order it looks for them.
const (
	OpenMPI Launcher = "ompi"  // Open MPI's mpirun (OMPI_COMM_WORLD_*)
	PMIx    Launcher = "pmix"  // a PMIx server without Open MPI's variables: srun --mpi=pmix
	Hydra   Launcher = "hydra" // MPICH's mpiexec (PMI_* with MPI_LOCALRANKID)
	PMI     Launcher = "pmi"   // PMI-1/2 without Hydra: srun --mpi=pmi2
	PALS    Launcher = "pals"  // Cray PALS (PBS Pro mpiexec; srun --mpi=cray_shasta)
	SLURM   Launcher = "slurm" // a task of a SLURM step (srun)
	PBS     Launcher = "pbs"   // a PBS job without a parallel launcher
	None    Launcher = "none"  // started by hand: rank 0 of 1
)

// Info is who this process is, as its launcher tells it.
type Info struct {
	Launcher  Launcher
	Rank      int // the launcher's rank of this process, 0..Size-1
	Size      int // tasks the launcher started
	LocalRank int // rank among the tasks on this node
	LocalSize int // tasks on this node
	Node      string
	NodeIndex int      // Node's position in NodeList
	NodeList  []string // every node of the step, in order
	// TasksPerNode holds the tasks on each node of NodeList; nil when the
	// launcher does not say (see ErrLayout).
	TasksPerNode []int
	JobID        string // the scheduler's job id ("" outside a job)
	StepID       string // the SLURM step id, when in a step
	// Daemons is true when the SLURM variables describe launcher daemons
	// (orted, hydra_pmi_proxy under salloc/sbatch), not this process.
	Daemons bool
}

// BlockRank is this rank's position when the ranks are ordered node by node
// (all of NodeList[0]'s, then NodeList[1]'s, ...), whatever order the
// launcher numbered them in. Every rank computes the same numbering alone.
func (i Info) BlockRank() (int, error) {
	if i.TasksPerNode == nil {
		return 0, ErrLayout
	}
	if i.NodeIndex < 0 || i.NodeIndex >= len(i.TasksPerNode) {
		return 0, fmt.Errorf("node index %d outside the %d nodes", i.NodeIndex, len(i.TasksPerNode))
	}
	r := i.LocalRank
	for _, n := range i.TasksPerNode[:i.NodeIndex] {
		r += n
	}
	return r, nil
}

// Detect finds the launcher and this process's identity in the environment
// that getenv reads, looking in this order: Open MPI, PMIx, PMI (Hydra or
// srun --mpi=pmi2), PALS, a SLURM step, PBS; with none of them the process
// is rank 0 of 1 ("none").
//
// The traps it handles: a batch script has SLURM_PROCID=0 but is not a task
// (no SLURM_STEP_ID); under salloc/sbatch mpirun or mpiexec the SLURM step
// variables describe the launcher's daemons, one per node, not the MPI
// ranks; the node is SLURMD_NODENAME (or the SLURM_NODEID'th entry of the
// node list), never the host name, which every lab node shares.
func Detect(getenv func(string) string) (Info, error) {
	d := detector{getenv: getenv}
	var info Info
	switch {
	case getenv("OMPI_COMM_WORLD_RANK") != "":
		info = d.ompi()
	case getenv("PMIX_RANK") != "":
		info = d.direct(PMIx, "PMIX_RANK", "")
	case getenv("PMI_RANK") != "" && getenv("PALS_RANKID") != "":
		info = d.pals()
	case getenv("PMI_RANK") != "" && getenv("MPI_LOCALRANKID") != "":
		info = d.hydra()
	case getenv("PMI_RANK") != "":
		info = d.direct(PMI, "PMI_RANK", "PMI_SIZE")
	case getenv("PALS_RANKID") != "":
		info = d.pals()
	case getenv("SLURM_STEP_ID") != "" && getenv("SLURM_PROCID") != "":
		info = d.direct(SLURM, "SLURM_PROCID", "")
	case getenv("PBS_JOBID") != "":
		info = d.pbs()
	default:
		info = d.none()
	}
	if d.err != nil {
		return Info{}, d.err
	}
	if err := info.check(); err != nil {
		return Info{}, err
	}
	return info, nil
}

// check verifies the invariants every launcher's Info must satisfy.
func (i Info) check() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%s launcher: %w: %s", i.Launcher, ErrInconsistent, fmt.Sprintf(format, a...))
	}
	switch {
	case i.Size < 1:
		return bad("size %d", i.Size)
	case i.Rank < 0 || i.Rank >= i.Size:
		return bad("rank %d outside 0..%d", i.Rank, i.Size-1)
	case i.LocalSize < 1 || i.LocalRank < 0 || i.LocalRank >= i.LocalSize:
		return bad("local rank %d of %d", i.LocalRank, i.LocalSize)
	case len(i.NodeList) == 0 || i.NodeIndex < 0 || i.NodeIndex >= len(i.NodeList):
		return bad("node index %d outside the node list %v", i.NodeIndex, i.NodeList)
	case i.NodeList[i.NodeIndex] != i.Node:
		return bad("node %q is not entry %d of the node list %v", i.Node, i.NodeIndex, i.NodeList)
	}
	if i.TasksPerNode != nil {
		if len(i.TasksPerNode) != len(i.NodeList) {
			return bad("%d task counts for %d nodes", len(i.TasksPerNode), len(i.NodeList))
		}
		sum := 0
		for _, n := range i.TasksPerNode {
			sum += n
		}
		if sum != i.Size {
			return bad("tasks per node %v add up to %d, not the size %d", i.TasksPerNode, sum, i.Size)
		}
		if i.TasksPerNode[i.NodeIndex] != i.LocalSize {
			return bad("node %s runs %d tasks, but the local size is %d", i.Node, i.TasksPerNode[i.NodeIndex], i.LocalSize)
		}
	}
	return nil
}

// detector reads variables and keeps the first error.
type detector struct {
	getenv func(string) string
	l      Launcher
	err    error
}

func (d *detector) fail(name, value string, err error) {
	if d.err == nil {
		d.err = &EnvError{Launcher: d.l, Var: name, Value: value, Err: err}
	}
}

var errMissing = errors.New("not set")

// int reads a required non-negative integer.
func (d *detector) int(name string) int {
	v := d.getenv(name)
	if v == "" {
		d.fail(name, v, errMissing)
		return 0
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		d.fail(name, v, errors.New("not a non-negative integer"))
		return 0
	}
	return n
}

// intOr reads an optional non-negative integer.
func (d *detector) intOr(name string, def int) int {
	if d.getenv(name) == "" {
		return def
	}
	return d.int(name)
}

// first returns the first of names that is set, and its value.
func (d *detector) first(names ...string) (string, string) {
	for _, n := range names {
		if v := d.getenv(n); v != "" {
			return n, v
		}
	}
	return names[0], ""
}

// slurmStep describes the SLURM step this process belongs to, when there is
// one: the node list, task counts, this node and its index.
type slurmStep struct {
	ok           bool
	nodes        []string
	tasksPerNode []int
	node         string
	nodeIndex    int
	procID       int
	ntasks       int
	localID      int
	jobID        string
	stepID       string
}

func (d *detector) slurmStep() slurmStep {
	if d.getenv("SLURM_STEP_ID") == "" || d.getenv("SLURM_PROCID") == "" {
		return slurmStep{}
	}
	s := slurmStep{ok: true, jobID: d.slurmJobID(), stepID: d.getenv("SLURM_STEP_ID")}
	name, expr := d.first("SLURM_STEP_NODELIST", "SLURM_JOB_NODELIST", "SLURM_NODELIST")
	nodes, err := expandHosts(expr)
	if err != nil {
		d.fail(name, expr, err)
		return s
	}
	s.nodes = nodes
	name, cs := d.first("SLURM_STEP_TASKS_PER_NODE", "SLURM_TASKS_PER_NODE")
	counts, err := parseCounts(cs)
	if err != nil {
		d.fail(name, cs, err)
		return s
	}
	s.tasksPerNode = counts
	s.procID = d.int("SLURM_PROCID")
	s.localID = d.int("SLURM_LOCALID")
	ntName, nt := d.first("SLURM_STEP_NUM_TASKS", "SLURM_NTASKS")
	s.ntasks = sum(counts)
	if nt != "" {
		n, err := strconv.Atoi(nt)
		if err != nil || n != s.ntasks {
			d.fail(ntName, nt, fmt.Errorf("does not match the tasks per node %q", cs))
		}
	}
	s.node = d.getenv("SLURMD_NODENAME")
	nodeID := d.intOr("SLURM_NODEID", -1)
	switch i := slices.Index(nodes, s.node); {
	case s.node != "" && i >= 0:
		s.nodeIndex = i
	case s.node != "":
		d.fail("SLURMD_NODENAME", s.node, fmt.Errorf("not in the node list %s", expr))
	case nodeID >= 0 && nodeID < len(nodes):
		s.node, s.nodeIndex = nodes[nodeID], nodeID
	default:
		d.fail("SLURMD_NODENAME", "", errMissing)
	}
	return s
}

func (d *detector) slurmJobID() string {
	_, id := d.first("SLURM_JOB_ID", "SLURM_JOBID")
	return id
}

// direct is a launcher whose tasks srun started itself (or that has no
// SLURM step at all): srun, srun --mpi=pmix, srun --mpi=pmi2. rankVar is
// the launcher's rank variable, sizeVar its size variable ("" when it has
// none and the SLURM step says).
func (d *detector) direct(l Launcher, rankVar, sizeVar string) Info {
	d.l = l
	info := Info{Launcher: l, Rank: d.int(rankVar)}
	s := d.slurmStep()
	if d.err != nil {
		return info
	}
	if !s.ok {
		// A PMI or PMIx server outside SLURM, with no node information.
		if sizeVar == "" {
			d.fail("SLURM_STEP_ID", "", fmt.Errorf("%s without a SLURM step: the task count is unknown", rankVar))
			return info
		}
		info.Size = d.int(sizeVar)
		info.LocalRank, info.LocalSize = info.Rank, info.Size
		info.Node = "localhost"
		info.NodeList, info.TasksPerNode = []string{"localhost"}, []int{info.Size}
		return info
	}
	if s.procID != info.Rank {
		d.fail(rankVar, d.getenv(rankVar), fmt.Errorf("differs from SLURM_PROCID=%d", s.procID))
		return info
	}
	info.Size = s.ntasks
	if sizeVar != "" && d.int(sizeVar) != info.Size {
		d.fail(sizeVar, d.getenv(sizeVar), fmt.Errorf("differs from the step's %d tasks", info.Size))
	}
	info.LocalRank = s.localID
	info.LocalSize = s.tasksPerNode[min(s.nodeIndex, len(s.tasksPerNode)-1)]
	info.Node, info.NodeIndex, info.NodeList, info.TasksPerNode = s.node, s.nodeIndex, s.nodes, s.tasksPerNode
	info.JobID, info.StepID = s.jobID, s.stepID
	return info
}

// launched fills a rank started by a launcher that runs its own daemons
// (mpirun, mpiexec): rank, size and local rank/size come from the
// launcher; under SLURM the step variables describe the daemons, one per
// node, so only the node name, index and list are taken from them.
func (d *detector) launched(info Info) Info {
	s := d.slurmStep()
	if d.err != nil {
		return info
	}
	switch {
	case s.ok:
		info.Daemons = true
		info.Node, info.NodeIndex, info.NodeList = s.node, s.nodeIndex, s.nodes
		info.JobID, info.StepID = s.jobID, s.stepID
	case d.getenv("SLURMD_NODENAME") != "" && d.getenv("SLURM_JOB_NODELIST") != "":
		// Started from the batch script itself, on the job's first node.
		nodes, err := expandHosts(d.getenv("SLURM_JOB_NODELIST"))
		if err != nil {
			d.fail("SLURM_JOB_NODELIST", d.getenv("SLURM_JOB_NODELIST"), err)
			return info
		}
		info.Node, info.NodeList = d.getenv("SLURMD_NODENAME"), nodes
		info.NodeIndex = slices.Index(nodes, info.Node)
		info.JobID = d.slurmJobID()
	default:
		_, host := d.first("PMIX_HOSTNAME", "MPIR_CVAR_CH3_INTERFACE_HOSTNAME")
		if host == "" {
			host = "localhost"
		}
		info.Node, info.NodeList = host, []string{host}
	}
	switch {
	case len(info.NodeList) == 1:
		info.TasksPerNode = []int{info.Size}
	case info.LocalSize*len(info.NodeList) == info.Size:
		// Every node runs the same number of ranks: the only layout with
		// this local size on every node (each rank checks its own).
		info.TasksPerNode = slices.Repeat([]int{info.LocalSize}, len(info.NodeList))
	}
	return info
}

func (d *detector) ompi() Info {
	d.l = OpenMPI
	info := Info{
		Launcher:  OpenMPI,
		Rank:      d.int("OMPI_COMM_WORLD_RANK"),
		Size:      d.int("OMPI_COMM_WORLD_SIZE"),
		LocalRank: d.int("OMPI_COMM_WORLD_LOCAL_RANK"),
		LocalSize: d.int("OMPI_COMM_WORLD_LOCAL_SIZE"),
	}
	if d.err != nil {
		return info
	}
	return d.launched(info)
}

func (d *detector) hydra() Info {
	d.l = Hydra
	info := Info{
		Launcher:  Hydra,
		Rank:      d.int("PMI_RANK"),
		Size:      d.int("PMI_SIZE"),
		LocalRank: d.int("MPI_LOCALRANKID"),
		LocalSize: d.int("MPI_LOCALNRANKS"),
	}
	if d.err != nil {
		return info
	}
	return d.launched(info)
}

func (d *detector) none() Info {
	d.l = None
	info := Info{Launcher: None, Size: 1, LocalSize: 1, Node: "localhost", NodeList: []string{"localhost"}, TasksPerNode: []int{1}}
	// A batch script (SLURM_PROCID=0 but no step) or an salloc shell: one
	// process, on the node SLURM names when it names one.
	if n := d.getenv("SLURMD_NODENAME"); n != "" {
		info.Node, info.NodeList = n, []string{n}
	}
	info.JobID = d.slurmJobID()
	if info.JobID == "" {
		info.JobID = d.getenv("PBS_JOBID")
	}
	return info
}

func sum(xs []int) int {
	s := 0
	for _, x := range xs {
		s += x
	}
	return s
}
