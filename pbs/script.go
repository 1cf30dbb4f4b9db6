package pbs

import (
	"errors"
	"fmt"
	"strings"

	"github.com/qlaunch/qlaunch/jobscript"
)

// ScriptConfig is the batch job Script writes: plain data, filled in by the
// caller (qlaunch script pbs) from a topology.
type ScriptConfig struct {
	Topology     string   // path of the topology file, as the job sees it
	Qlaunch      string   // the qlaunch binary; "" means "qlaunch" from $PATH
	JobName      string   // #PBS -N; "" means "qlaunch"
	Account      string   // #PBS -A, when set
	Queue        string   // #PBS -q, when set
	Time         string   // #PBS -l walltime, when set
	Nodes        int      // chunks of select=
	TasksPerNode int      // mpiprocs= and mpiexec --ppn
	CPUsPerNode  int      // ncpus= of a chunk, when > 0
	GPUsPerNode  int      // ngpus= of a chunk, when > 0
	ReadyTimeout string   // qlaunch wait --timeout; "" means "10m"
	Client       []string // the client command and its arguments
}

// Script returns a complete, commented qsub script for PBS Pro / OpenPBS
// with Cray PALS mpiexec: it starts the qlaunch runtime in the background,
// waits until every rank has joined, runs the client command, stops the
// runtime with SIGINT, waits for it and exits with the client's status.
func Script(c ScriptConfig) (string, error) {
	var errs []error
	if c.Topology == "" {
		errs = append(errs, errors.New("no topology file"))
	}
	if c.Nodes < 1 {
		errs = append(errs, fmt.Errorf("nodes %d: need at least 1", c.Nodes))
	}
	if c.TasksPerNode < 1 || c.CPUsPerNode < 0 || c.GPUsPerNode < 0 {
		errs = append(errs, fmt.Errorf("bad shape: %d tasks, %d CPUs, %d GPUs per node", c.TasksPerNode, c.CPUsPerNode, c.GPUsPerNode))
	}
	if len(c.Client) == 0 {
		errs = append(errs, errors.New("no client command"))
	}
	for _, v := range []struct{ name, value string }{{"job name", c.JobName}, {"account", c.Account}, {"queue", c.Queue}, {"time", c.Time}} {
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
	chunk := fmt.Sprintf("select=%d:mpiprocs=%d", c.Nodes, c.TasksPerNode)
	if c.CPUsPerNode > 0 {
		chunk += fmt.Sprintf(":ncpus=%d", c.CPUsPerNode)
	}
	if c.GPUsPerNode > 0 {
		chunk += fmt.Sprintf(":ngpus=%d", c.GPUsPerNode)
	}
	total := c.Nodes * c.TasksPerNode

	var b strings.Builder
	w := func(format string, a ...any) { fmt.Fprintf(&b, format+"\n", a...) }
	w("#!/bin/bash")
	w("# Batch script for a qlaunch job under PBS with Cray PALS mpiexec: start the")
	w("# runtime on %d node(s), wait until every rank has joined, run the client,", c.Nodes)
	w("# stop the runtime, exit with the client's status. Submit with: qsub THIS_FILE")
	w("#PBS -N %s", name)
	w("#PBS -l %s", chunk)
	w("# One chunk per node, each node whole: qlaunch pins its worker ranks itself.")
	w("#PBS -l place=scatter:excl")
	if c.Time != "" {
		w("#PBS -l walltime=%s", c.Time)
	}
	if c.Account != "" {
		w("#PBS -A %s", c.Account)
	}
	if c.Queue != "" {
		w("#PBS -q %s", c.Queue)
	}
	w("")
	jobscript.Body{
		Topology: c.Topology, Qlaunch: c.Qlaunch, ReadyTimeout: c.ReadyTimeout, Client: c.Client,
		Setup:    []string{"cd \"${PBS_O_WORKDIR:-$PWD}\""},
		Launcher: "mpiexec",
		JobDir:   "\"$PWD/.qlaunch\"",
		JobID:    "${PBS_JOBID}",
		Interrupt: []string{
			"# mpiexec passes SIGINT on to every rank.",
			"kill -INT \"$runtime_pid\" 2>/dev/null || true",
		},
		Start: []string{
			fmt.Sprintf("# Start the runtime: %d rank(s), %d per node; each takes its role from the", total, c.TasksPerNode),
			"# plan. --cpu-bind none leaves every rank all the node's CPUs, so server and",
			"# manager ranks are not squeezed onto one core; qlaunch pins worker ranks",
			"# as the topology says.",
			fmt.Sprintf("mpiexec -n %d --ppn %d --cpu-bind none \"$QLAUNCH\" \"$TOPOLOGY\" &", total, c.TasksPerNode),
		},
	}.Write(&b)
	return b.String(), nil
}
