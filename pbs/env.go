package pbs

import (
	"fmt"
	"strconv"
)

// Flavor says which PBS family set the job variables.
type Flavor int

const (
	// FlavorPBS is PBS Pro or OpenPBS (or a look-alike that sets none of
	// Torque's extra variables, such as SLURM's qsub wrapper).
	FlavorPBS Flavor = iota
	// FlavorTorque is Torque: PBS_NUM_NODES, PBS_NUM_PPN, PBS_NP or
	// PBS_VNODENUM is set.
	FlavorTorque
)

func (f Flavor) String() string {
	if f == FlavorTorque {
		return "torque"
	}
	return "pbs"
}

// Job is the PBS identity of a process of a job. Integer fields whose
// variable is unset are -1; string fields are empty.
type Job struct {
	Flavor      Flavor
	ID          string // PBS_JOBID: "1234.pbs01", "1234[7].pbs01", or "23"
	Name        string // PBS_JOBNAME
	Queue       string // PBS_QUEUE
	Nodefile    string // PBS_NODEFILE: the path of the node file
	Environment string // PBS_ENVIRONMENT: "PBS_BATCH" or "PBS_INTERACTIVE"
	WorkDir     string // PBS_O_WORKDIR: where qsub ran
	NodeNum     int    // PBS_NODENUM: this node's index in the job
	TaskNum     int    // PBS_TASKNUM
	ArrayIndex  int    // PBS_ARRAY_INDEX (array jobs only)

	// Torque only.
	NumNodes int // PBS_NUM_NODES
	NumPPN   int // PBS_NUM_PPN: processors per node
	NP       int // PBS_NP: processors in all
	VNodeNum int // PBS_VNODENUM
}

// EnvError reports a PBS or PALS variable whose value cannot be used.
type EnvError struct {
	Var    string
	Value  string
	Reason string
}

func (e *EnvError) Error() string {
	v := e.Value
	if len(v) > 100 {
		v = v[:100] + "…"
	}
	return fmt.Sprintf("%s=%q: %s", e.Var, v, e.Reason)
}

// BadInput marks the error as bad input (qlaunch exits with status 2).
func (e *EnvError) BadInput() bool { return true }

// envInts reads integer variables strictly: plain non-negative decimal
// below 2^31. The first bad one is kept in err.
type envInts struct {
	getenv func(string) string
	err    error
}

// get returns the value of the first set variable of names, and its name;
// -1 when none is set.
func (e *envInts) get(names ...string) (int, string) {
	for _, n := range names {
		v := e.getenv(n)
		if v == "" {
			continue
		}
		x, ok := parseInt(v)
		if !ok && e.err == nil {
			e.err = &EnvError{Var: n, Value: v, Reason: "want a non-negative decimal integer"}
		}
		if !ok {
			return -1, n
		}
		return x, n
	}
	return -1, ""
}

func parseInt(v string) (int, bool) {
	if len(v) > 10 {
		return 0, false
	}
	for i := 0; i < len(v); i++ {
		if v[i] < '0' || v[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(v, 10, 32)
	return int(n), err == nil
}

// JobFromEnv reads the PBS job variables through getenv. ok is false when
// PBS_JOBID is unset (not a PBS job). Errors are *EnvError.
func JobFromEnv(getenv func(string) string) (Job, bool, error) {
	j := Job{ID: getenv("PBS_JOBID")}
	if j.ID == "" {
		return Job{}, false, nil
	}
	j.Name = getenv("PBS_JOBNAME")
	j.Queue = getenv("PBS_QUEUE")
	j.Nodefile = getenv("PBS_NODEFILE")
	j.Environment = getenv("PBS_ENVIRONMENT")
	j.WorkDir = getenv("PBS_O_WORKDIR")
	ints := envInts{getenv: getenv}
	j.NodeNum, _ = ints.get("PBS_NODENUM")
	j.TaskNum, _ = ints.get("PBS_TASKNUM")
	j.ArrayIndex, _ = ints.get("PBS_ARRAY_INDEX")
	j.NumNodes, _ = ints.get("PBS_NUM_NODES")
	j.NumPPN, _ = ints.get("PBS_NUM_PPN")
	j.NP, _ = ints.get("PBS_NP")
	j.VNodeNum, _ = ints.get("PBS_VNODENUM")
	if ints.err != nil {
		return Job{}, false, ints.err
	}
	if j.NumNodes >= 0 || j.NumPPN >= 0 || j.NP >= 0 || j.VNodeNum >= 0 {
		j.Flavor = FlavorTorque
	}
	switch j.Environment {
	case "", "PBS_BATCH", "PBS_INTERACTIVE":
	default:
		return Job{}, false, &EnvError{Var: "PBS_ENVIRONMENT", Value: j.Environment, Reason: "want PBS_BATCH or PBS_INTERACTIVE"}
	}
	if j.NumNodes >= 0 && j.NodeNum >= j.NumNodes {
		return Job{}, false, &EnvError{Var: "PBS_NODENUM", Value: strconv.Itoa(j.NodeNum),
			Reason: fmt.Sprintf("node index not below PBS_NUM_NODES=%d", j.NumNodes)}
	}
	return j, true, nil
}

// PALS is the identity Cray PALS gives one rank. Fields whose variables
// are unset are -1.
type PALS struct {
	Rank      int    // PALS_RANKID, else PMI_RANK
	Size      int    // PMI_SIZE (PALS has no size variable of its own)
	NodeIndex int    // PALS_NODEID
	LocalRank int    // PALS_LOCAL_RANKID, else PMI_LOCAL_RANK
	LocalSize int    // PALS_LOCAL_SIZE, else PMI_LOCAL_SIZE
	Depth     int    // PALS_DEPTH: CPUs per rank (mpiexec --depth)
	APID      string // PALS_APID: the application id
}

// PALSFromEnv reads the PALS rank identity through getenv. ok is false
// when neither PALS_RANKID nor PALS_APID is set (not launched by PALS).
// Where a PALS variable and its PMI twin are both set they must agree, and
// ranks must lie below their sizes. Errors are *EnvError.
func PALSFromEnv(getenv func(string) string) (PALS, bool, error) {
	if getenv("PALS_RANKID") == "" && getenv("PALS_APID") == "" {
		return PALS{}, false, nil
	}
	ints := envInts{getenv: getenv}
	p := PALS{APID: getenv("PALS_APID")}
	p.Size, _ = ints.get("PMI_SIZE")
	p.NodeIndex, _ = ints.get("PALS_NODEID")
	p.Depth, _ = ints.get("PALS_DEPTH")
	var err error
	twin := func(dst *int, palsName, pmiName string) {
		a, _ := ints.get(palsName)
		b, _ := ints.get(pmiName)
		*dst = a
		if a < 0 {
			*dst = b
		}
		if a >= 0 && b >= 0 && a != b && err == nil {
			err = &EnvError{Var: pmiName, Value: getenv(pmiName), Reason: fmt.Sprintf("disagrees with %s=%d", palsName, a)}
		}
	}
	twin(&p.Rank, "PALS_RANKID", "PMI_RANK")
	twin(&p.LocalRank, "PALS_LOCAL_RANKID", "PMI_LOCAL_RANK")
	twin(&p.LocalSize, "PALS_LOCAL_SIZE", "PMI_LOCAL_SIZE")
	if ints.err != nil {
		return PALS{}, false, ints.err
	}
	if err != nil {
		return PALS{}, false, err
	}
	if p.Rank >= 0 && p.Size >= 0 && p.Rank >= p.Size {
		return PALS{}, false, &EnvError{Var: "PALS_RANKID", Value: strconv.Itoa(p.Rank), Reason: fmt.Sprintf("rank not below PMI_SIZE=%d", p.Size)}
	}
	if p.LocalRank >= 0 && p.LocalSize >= 0 && p.LocalRank >= p.LocalSize {
		return PALS{}, false, &EnvError{Var: "PALS_LOCAL_RANKID", Value: strconv.Itoa(p.LocalRank),
			Reason: fmt.Sprintf("local rank not below the local size %d", p.LocalSize)}
	}
	if p.Size == 0 {
		return PALS{}, false, &EnvError{Var: "PMI_SIZE", Value: "0", Reason: "size 0"}
	}
	if p.LocalSize == 0 {
		return PALS{}, false, &EnvError{Var: "PALS_LOCAL_SIZE", Value: "0", Reason: "local size 0"}
	}
	return p, true, nil
}
