package pbs

import (
	"errors"
	"fmt"
	"strings"
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
		if strings.ContainsAny(v.value, " \t\n\r\"'\\$`") {
			errs = append(errs, fmt.Errorf("%s %q: no spaces, quotes or shell characters allowed", v.name, v.value))
		}
	}
	if len(errs) > 0 {
		return "", errors.Join(errs...)
	}
	qlaunch := c.Qlaunch
	if qlaunch == "" {
		qlaunch = "qlaunch"
	}
	name := c.JobName
	if name == "" {
		name = "qlaunch"
	}
	timeout := c.ReadyTimeout
	if timeout == "" {
		timeout = "10m"
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
	w("set -euo pipefail")
	w("cd \"${PBS_O_WORKDIR:-$PWD}\"")
	w("")
	w("QLAUNCH=%s", shellQuote(qlaunch))
	w("TOPOLOGY=%s", shellQuote(c.Topology))
	w("")
	w("# Per-job files in the submit directory (seen by every node): the server")
	w("# writes its address (first line: HOST:PORT) to the address file once the")
	w("# whole tree has joined; every rank and the client prove the secret.")
	w("# qlaunch reads both paths from these variables, which mpiexec passes on.")
	w("jobdir=\"$PWD/.qlaunch\"")
	w("mkdir -p \"$jobdir\"")
	w("export QLAUNCH_ADDRESS_FILE=\"$jobdir/job-${PBS_JOBID}.addr\"")
	w("export QLAUNCH_SECRET_FILE=\"$jobdir/job-${PBS_JOBID}.secret\"")
	w("rm -f \"$QLAUNCH_ADDRESS_FILE\"")
	w("(umask 077 && od -An -tx1 -N32 /dev/urandom | tr -d ' \\n' >\"$QLAUNCH_SECRET_FILE\")")
	w("")
	w("# On any exit (failure included) stop the runtime if it still runs, wait")
	w("# for it and remove the per-job files, so that nothing is left behind.")
	w("runtime_pid=\"\"")
	w("# shellcheck disable=SC2317 # called from the EXIT trap too")
	w("stop_runtime() {")
	w("  if [ -n \"$runtime_pid\" ]; then")
	w("    # mpiexec passes SIGINT on to every rank.")
	w("    kill -INT \"$runtime_pid\" 2>/dev/null || true")
	w("    runtime_status=0")
	w("    wait \"$runtime_pid\" || runtime_status=$?")
	w("    runtime_pid=\"\"")
	w("    if [ \"$runtime_status\" -ne 0 ]; then")
	w("      echo \"qlaunch: the runtime exited with status $runtime_status\" >&2")
	w("    fi")
	w("  fi")
	w("}")
	w("# shellcheck disable=SC2317 # called from the EXIT trap")
	w("cleanup() {")
	w("  status=$?")
	w("  trap - EXIT")
	w("  stop_runtime")
	w("  rm -f \"${QLAUNCH_ADDRESS_FILE:-}\" \"${QLAUNCH_SECRET_FILE:-}\"")
	w("  exit \"$status\"")
	w("}")
	w("trap cleanup EXIT")
	w("trap 'exit 130' INT")
	w("trap 'exit 143' TERM")
	w("")
	w("# Start the runtime: %d rank(s), %d per node; each takes its role from the", total, c.TasksPerNode)
	w("# plan. --cpu-bind none leaves every rank all the node's CPUs, so server and")
	w("# manager ranks are not squeezed onto one core; qlaunch pins worker ranks")
	w("# as the topology says.")
	w("mpiexec -n %d --ppn %d --cpu-bind none \"$QLAUNCH\" \"$TOPOLOGY\" &", total, c.TasksPerNode)
	w("runtime_pid=$!")
	w("")
	w("# Wait until every rank has joined: qlaunch wait exits 0 once the tree is")
	w("# up, 1 naming the missing ranks after the timeout.")
	w("\"$QLAUNCH\" wait --address-file \"$QLAUNCH_ADDRESS_FILE\" --timeout %s", shellQuote(timeout))
	w("read -r QLAUNCH_ADDR <\"$QLAUNCH_ADDRESS_FILE\"")
	w("export QLAUNCH_ADDR")
	w("")
	w("# The client. Its words are quoted literally, as given to qlaunch script.")
	w("client_status=0")
	w("# shellcheck disable=SC2016")
	w("%s || client_status=$?", shellJoin(c.Client))
	w("")
	w("# Stop the runtime with SIGINT and wait for it; exit with the client's status.")
	w("stop_runtime")
	w("exit \"$client_status\"")
	return b.String(), nil
}

// shellJoin quotes each word for bash.
func shellJoin(words []string) string {
	q := make([]string, len(words))
	for i, s := range words {
		q[i] = shellQuote(s)
	}
	return strings.Join(q, " ")
}

// shellQuote returns s as one bash word: unchanged when it holds only safe
// characters, else in single quotes.
func shellQuote(s string) string {
	if s == "" {
		return "''"
	}
	safe := true
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("-_./=:,+@%", c)) {
			safe = false
			break
		}
	}
	if safe {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
