package slurm

import (
	"fmt"
	"strconv"
	"strings"
)

// Role says what kind of process of a SLURM job this is.
type Role int

const (
	// RoleNone: not inside a SLURM job (no SLURM_JOB_ID).
	RoleNone Role = iota
	// RoleAllocation: a process with the job's variables only, such as
	// the shell salloc starts on the submit host.
	RoleAllocation
	// RoleBatch: the batch script of sbatch. SLURM sets SLURM_PROCID=0,
	// SLURM_NODEID=0 and SLURM_LOCALID=0 there although it is not a task
	// of any step.
	RoleBatch
	// RoleTask: a task of an srun step (SLURM_STEP_ID is set).
	RoleTask
)

func (r Role) String() string {
	switch r {
	case RoleNone:
		return "none"
	case RoleAllocation:
		return "allocation"
	case RoleBatch:
		return "batch"
	case RoleTask:
		return "task"
	}
	return "Role(" + strconv.Itoa(int(r)) + ")"
}

// Step is the SLURM identity of one process. Fields whose variable is
// unset are -1 (indices and sizes) or empty.
type Step struct {
	Role   Role
	JobID  string // SLURM_JOB_ID, else SLURM_JOBID
	StepID string // SLURM_STEP_ID, else SLURM_STEPID; "" outside a step

	Rank      int // SLURM_PROCID
	Size      int // SLURM_STEP_NUM_TASKS in a step, else SLURM_NTASKS, else SLURM_NPROCS
	LocalRank int // SLURM_LOCALID
	NodeIndex int // SLURM_NODEID: this node's index in Nodes
	NodeName  string

	// NodeList is the step's node list expression (SLURM_STEP_NODELIST in
	// a step, else SLURM_JOB_NODELIST, else SLURM_NODELIST), Nodes its
	// expansion, and TasksPerNode the matching SLURM_STEP_TASKS_PER_NODE
	// (else SLURM_TASKS_PER_NODE), one count per node.
	NodeList     string
	Nodes        []string
	TasksPerNode []int

	CPUsPerTask int   // SLURM_CPUS_PER_TASK (set only with -c)
	CPUsOnNode  int   // SLURM_CPUS_ON_NODE
	GTIDs       []int // SLURM_GTIDS: the global ranks on this node
	GPUs        []int // SLURM_STEP_GPUS, else SLURM_JOB_GPUS: global GPU ids
	GPUsOnNode  int   // SLURM_GPUS_ON_NODE
}

// EnvError reports a SLURM variable whose value cannot be used.
type EnvError struct {
	Var    string
	Value  string
	Reason string
	Err    error // the parse error underneath, if any
}

func (e *EnvError) Error() string {
	return fmt.Sprintf("%s=%q: %s", e.Var, clip(e.Value), e.Reason)
}

// Unwrap returns the parse error underneath, if any.
func (e *EnvError) Unwrap() error { return e.Err }

// BadInput marks the error as bad input (qlaunch exits with status 2).
func (e *EnvError) BadInput() bool { return true }

// StepFromEnv reads the SLURM identity of this process through getenv
// (os.Getenv, or a map in tests; nothing else is read). ok is false outside
// a SLURM job. "I am an srun task" is SLURM_STEP_ID being set, not
// SLURM_PROCID, which the batch script has too. Integers must be plain
// decimal; lists must parse; in a task the rank, node index, local rank
// and counts must agree with each other. Errors are *EnvError.
func StepFromEnv(getenv func(string) string) (Step, bool, error) {
	s := Step{Rank: -1, Size: -1, LocalRank: -1, NodeIndex: -1, CPUsPerTask: -1, CPUsOnNode: -1, GPUsOnNode: -1}
	first := func(names ...string) (string, string) {
		for _, n := range names {
			if v := getenv(n); v != "" {
				return n, v
			}
		}
		return names[0], ""
	}
	_, s.JobID = first("SLURM_JOB_ID", "SLURM_JOBID")
	if s.JobID == "" {
		return Step{}, false, nil
	}
	_, s.StepID = first("SLURM_STEP_ID", "SLURM_STEPID")
	_, procID := first("SLURM_PROCID")
	switch {
	case s.StepID != "":
		s.Role = RoleTask
	case procID != "":
		s.Role = RoleBatch
	default:
		s.Role = RoleAllocation
	}
	inStep := s.Role == RoleTask

	var err error
	intVar := func(dst *int, names ...string) {
		name, v := first(names...)
		if err != nil || v == "" {
			return
		}
		n, ok := parseEnvInt(v)
		if !ok {
			err = &EnvError{Var: name, Value: v, Reason: "want a non-negative decimal integer"}
			return
		}
		*dst = n
	}
	intVar(&s.Rank, "SLURM_PROCID")
	if inStep {
		intVar(&s.Size, "SLURM_STEP_NUM_TASKS", "SLURM_NTASKS", "SLURM_NPROCS")
	} else {
		intVar(&s.Size, "SLURM_NTASKS", "SLURM_NPROCS")
	}
	intVar(&s.LocalRank, "SLURM_LOCALID")
	intVar(&s.NodeIndex, "SLURM_NODEID")
	intVar(&s.CPUsPerTask, "SLURM_CPUS_PER_TASK")
	intVar(&s.CPUsOnNode, "SLURM_CPUS_ON_NODE")
	intVar(&s.GPUsOnNode, "SLURM_GPUS_ON_NODE")
	if err != nil {
		return Step{}, false, err
	}
	s.NodeName = getenv("SLURMD_NODENAME")

	listNames := []string{"SLURM_JOB_NODELIST", "SLURM_NODELIST"}
	countNames := []string{"SLURM_TASKS_PER_NODE"}
	if inStep {
		listNames = append([]string{"SLURM_STEP_NODELIST"}, listNames...)
		countNames = append([]string{"SLURM_STEP_TASKS_PER_NODE"}, countNames...)
	}
	if name, v := first(listNames...); v != "" {
		hosts, perr := Expand(v)
		if perr != nil {
			return Step{}, false, &EnvError{Var: name, Value: v, Reason: "not a hostlist", Err: perr}
		}
		s.NodeList, s.Nodes = v, hosts
	}
	if name, v := first(countNames...); v != "" {
		counts, perr := ParseCounts(v)
		if perr != nil {
			return Step{}, false, &EnvError{Var: name, Value: v, Reason: "not a count list", Err: perr}
		}
		s.TasksPerNode = counts
	}
	for _, l := range []struct {
		dst   *[]int
		names []string
	}{
		{&s.GTIDs, []string{"SLURM_GTIDS"}},
		{&s.GPUs, []string{"SLURM_STEP_GPUS", "SLURM_JOB_GPUS"}},
	} {
		name, v := first(l.names...)
		if v == "" {
			continue
		}
		for _, f := range strings.Split(v, ",") {
			n, ok := parseEnvInt(f)
			if !ok {
				return Step{}, false, &EnvError{Var: name, Value: v, Reason: "want comma-separated non-negative decimal integers"}
			}
			*l.dst = append(*l.dst, n)
		}
	}
	if inStep {
		if err := s.check(); err != nil {
			return Step{}, false, err
		}
	}
	return s, true, nil
}

// check verifies that a task's numbers agree with each other.
func (s *Step) check() error {
	if s.Rank < 0 {
		return &EnvError{Var: "SLURM_PROCID", Reason: "unset in a step task"}
	}
	if s.Size >= 0 && s.Rank >= s.Size {
		return &EnvError{Var: "SLURM_PROCID", Value: strconv.Itoa(s.Rank),
			Reason: fmt.Sprintf("rank not below the step's %d tasks", s.Size)}
	}
	if s.Nodes != nil && s.NodeIndex >= len(s.Nodes) {
		return &EnvError{Var: "SLURM_NODEID", Value: strconv.Itoa(s.NodeIndex),
			Reason: fmt.Sprintf("node index not below the %d nodes of %s", len(s.Nodes), s.NodeList)}
	}
	if s.Nodes != nil && s.TasksPerNode != nil && len(s.Nodes) != len(s.TasksPerNode) {
		return &EnvError{Var: "SLURM_STEP_TASKS_PER_NODE", Value: FormatCounts(s.TasksPerNode),
			Reason: fmt.Sprintf("%d counts for %d nodes", len(s.TasksPerNode), len(s.Nodes))}
	}
	if s.TasksPerNode != nil {
		sum := 0
		for _, c := range s.TasksPerNode {
			sum += c
		}
		if s.Size >= 0 && sum != s.Size {
			return &EnvError{Var: "SLURM_STEP_TASKS_PER_NODE", Value: FormatCounts(s.TasksPerNode),
				Reason: fmt.Sprintf("counts add up to %d, not the step's %d tasks", sum, s.Size)}
		}
		if s.NodeIndex >= 0 && s.NodeIndex < len(s.TasksPerNode) && s.LocalRank >= s.TasksPerNode[s.NodeIndex] {
			return &EnvError{Var: "SLURM_LOCALID", Value: strconv.Itoa(s.LocalRank),
				Reason: fmt.Sprintf("local rank not below the %d tasks of node %d", s.TasksPerNode[s.NodeIndex], s.NodeIndex)}
		}
	}
	return nil
}

// parseEnvInt parses a plain non-negative decimal integer below 2^31.
func parseEnvInt(v string) (int, bool) {
	if v == "" || len(v) > 10 {
		return 0, false
	}
	for i := 0; i < len(v); i++ {
		if v[i] < '0' || v[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(v, 10, 32)
	if err != nil {
		return 0, false
	}
	return int(n), true
}
