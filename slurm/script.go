package slurm

import (
	"errors"
	"fmt"
	"strings"

	"github.com/qlaunch/qlaunch/jobscript"
)

// ScriptConfig is the batch job Script writes: plain data, filled in by the
// caller (qlaunch script slurm) from a topology.
type ScriptConfig struct {
	Topology  string // path of the topology file, as the job sees it
	Qlaunch   string // the qlaunch binary; "" means "qlaunch" from $PATH
	JobName   string // #SBATCH --job-name; "" means "qlaunch"
	Account   string // #SBATCH --account, when set
	Partition string // #SBATCH --partition, when set
	Time      string // #SBATCH --time, when set
	Nodes     int    // #SBATCH --nodes
	// TasksPerNode is the ranks of every node (manager plus worker ranks).
	TasksPerNode int
	// ExtraOnFirst is how many more ranks node 0 holds (1 for a dedicated
	// server). Then the ranks are laid out from a hostfile written by
	// "qlaunch plan --format hostfile" (srun --distribution=arbitrary).
	ExtraOnFirst int
	// CPUsPerTask is srun's --cpus-per-task; 0 means the node's CPUs
	// divided by TasksPerNode, computed in the job from SLURM_CPUS_ON_NODE.
	CPUsPerTask  int
	GPUsPerNode  int      // #SBATCH --gpus-per-node, when > 0
	ReadyTimeout string   // qlaunch wait --timeout; "" means "10m"
	Client       []string // the client command and its arguments
}

// Script returns a complete, commented sbatch script that starts the
// qlaunch runtime with srun in the background, waits until every rank has
// joined, runs the client command, stops the runtime with SIGINT, waits for
// it and exits with the client's status.
func Script(c ScriptConfig) (string, error) {
	var errs []error
	if c.Topology == "" {
		errs = append(errs, errors.New("no topology file"))
	}
	if c.Nodes < 1 {
		errs = append(errs, fmt.Errorf("nodes %d: need at least 1", c.Nodes))
	}
	if c.TasksPerNode < 1 || c.ExtraOnFirst < 0 || c.CPUsPerTask < 0 || c.GPUsPerNode < 0 {
		errs = append(errs, fmt.Errorf("bad shape: %d tasks per node, %d extra on node 0, %d CPUs per task, %d GPUs per node",
			c.TasksPerNode, c.ExtraOnFirst, c.CPUsPerTask, c.GPUsPerNode))
	}
	if len(c.Client) == 0 {
		errs = append(errs, errors.New("no client command"))
	}
	for _, v := range []struct{ name, value string }{{"job name", c.JobName}, {"account", c.Account}, {"partition", c.Partition}, {"time", c.Time}} {
		if err := jobscript.CheckWord(v.name, v.value); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return "", errors.Join(errs...)
	}
	name := c.JobName
	if name == "" {
		name = "qlaunch"
	}
	perNode := c.TasksPerNode + c.ExtraOnFirst // the most ranks of a node
	total := c.Nodes*c.TasksPerNode + c.ExtraOnFirst

	var b strings.Builder
	w := func(format string, a ...any) { fmt.Fprintf(&b, format+"\n", a...) }
	w("#!/bin/bash")
	w("# Batch script for a qlaunch job: start the runtime on %d node(s), wait until", c.Nodes)
	w("# every rank has joined, run the client, stop the runtime, exit with the")
	w("# client's status. Submit with: sbatch THIS_FILE")
	w("#SBATCH --job-name=%s", name)
	w("#SBATCH --nodes=%d", c.Nodes)
	w("#SBATCH --ntasks=%d", total)
	if c.GPUsPerNode > 0 {
		w("#SBATCH --gpus-per-node=%d", c.GPUsPerNode)
	}
	w("# Whole nodes: qlaunch places and pins its worker ranks itself. Server and")
	w("# manager ranks mostly wait on the network: --overcommit lets them share")
	w("# cores with the worker ranks instead of each holding one (SLURM refuses")
	w("# --ntasks-per-node above a node's CPU count even with --overcommit, so")
	w("# the per-node layout is given to srun below, not here).")
	w("#SBATCH --exclusive")
	w("#SBATCH --overcommit")
	if c.Time != "" {
		w("#SBATCH --time=%s", c.Time)
	}
	if c.Account != "" {
		w("#SBATCH --account=%s", c.Account)
	}
	if c.Partition != "" {
		w("#SBATCH --partition=%s", c.Partition)
	}
	w("")
	var extra []string
	if c.ExtraOnFirst > 0 {
		extra = []string{"\"${SLURM_HOSTFILE:-}\""}
	}
	jobscript.Body{
		Topology: c.Topology, Qlaunch: c.Qlaunch, ReadyTimeout: c.ReadyTimeout, Client: c.Client,
		Launcher: "srun",
		JobDir:   "\"${SLURM_SUBMIT_DIR:-$PWD}/.qlaunch\"",
		JobID:    "${SLURM_JOB_ID}",
		Interrupt: []string{
			"# One SIGINT to srun itself is not forwarded to the tasks; scancel",
			"# signals the tasks of the runtime's step (the job's first step, 0).",
			"scancel --signal=INT \"${SLURM_JOB_ID}.0\" 2>/dev/null || kill -INT \"$runtime_pid\" 2>/dev/null || true",
		},
		ExtraFiles: extra,
		Start:      srunLines(c, perNode, total),
	}.Write(&b)
	return b.String(), nil
}

// srunLines are the lines of the script that start the runtime's ranks
// with srun in the background.
func srunLines(c ScriptConfig, perNode, total int) []string {
	var lines []string
	w := func(format string, a ...any) { lines = append(lines, fmt.Sprintf(format, a...)) }
	if c.CPUsPerTask > 0 {
		w("cpus_per_task=%d", c.CPUsPerTask)
	} else {
		w("# Every task gets an equal share of the node's CPUs.")
		w("cpus_per_task=$(( ${SLURM_CPUS_ON_NODE:-%d} / %d ))", perNode, perNode)
		w("if [ \"$cpus_per_task\" -lt 1 ]; then cpus_per_task=1; fi")
	}
	w("")
	layout := fmt.Sprintf("--ntasks-per-node=%d", c.TasksPerNode)
	if c.ExtraOnFirst > 0 {
		w("# Node 0 holds %d more rank(s) than the others (the dedicated server), so", c.ExtraOnFirst)
		w("# the ranks are laid out host by host from the plan's hostfile.")
		w("export SLURM_HOSTFILE=\"$jobdir/job-${SLURM_JOB_ID}.hosts\"")
		w("\"$QLAUNCH\" plan \"$TOPOLOGY\" --nodelist \"$SLURM_JOB_NODELIST\" --format hostfile >\"$SLURM_HOSTFILE\"")
		w("")
		layout = "--distribution=arbitrary"
	}
	w("# Start the runtime: %d rank(s), each takes its role from the plan.", total)
	w("# --cpu-bind=none: by default SLURM binds each task to one core, which")
	w("# would starve the server and manager ranks (GOMAXPROCS=1); unbound, every")
	w("# rank sees the step's CPUs and qlaunch pins worker ranks as the topology")
	w("# says. --cpus-per-task gives the step all the node's CPUs.")
	w("# --overcommit: more ranks than CPUs on a node is fine.")
	w("srun --ntasks=%d %s --cpus-per-task=\"$cpus_per_task\" --cpu-bind=none --overcommit \\", total, layout)
	w("  --kill-on-bad-exit=1 \"$QLAUNCH\" \"$TOPOLOGY\" &")
	return lines
}
