// Package jobscript writes the part of a qlaunch batch script that is the
// same under every batch scheduler: the per-job address and secret files,
// the runtime's life (started in the background, waited for until every
// rank has joined, stopped with SIGINT on any exit), the client command,
// and the quoting of words for bash. The schedulers' packages (slurm for
// sbatch, pbs for qsub) write the header and say how the runtime's ranks
// are started and interrupted.
package jobscript

import (
	"fmt"
	"strings"
)

// Defaults of Body's fields.
const (
	DefaultQlaunch      = "qlaunch" // the qlaunch binary, from $PATH
	DefaultReadyTimeout = "10m"     // qlaunch wait --timeout
)

// Unsafe are the characters a header value (job name, account, queue…)
// may not hold: it goes unquoted into a #SBATCH or #PBS line.
const Unsafe = " \t\n\r\"'\\$`"

// CheckWord returns an error naming what when value holds a character of
// Unsafe.
func CheckWord(what, value string) error {
	if strings.ContainsAny(value, Unsafe) {
		return fmt.Errorf("%s %q: no spaces, quotes or shell characters allowed", what, value)
	}
	return nil
}

// Body is the script after the scheduler's header lines.
type Body struct {
	Topology     string   // path of the topology file, as the job sees it
	Qlaunch      string   // the qlaunch binary; "" means DefaultQlaunch
	ReadyTimeout string   // qlaunch wait --timeout; "" means DefaultReadyTimeout
	Client       []string // the client command and its arguments

	// Setup are lines written right after "set -euo pipefail".
	Setup []string
	// Launcher names the command that starts the ranks and passes the
	// environment on to them ("srun", "mpiexec"), for a comment.
	Launcher string
	// JobDir is the shell word of the directory of the per-job files,
	// one every node sees; JobID the shell word of the job's identifier.
	JobDir, JobID string
	// Interrupt are the lines of stop_runtime that send SIGINT to every
	// rank of the runtime started in the background as $runtime_pid,
	// without indentation.
	Interrupt []string
	// ExtraFiles are shell words of more per-job files removed on exit.
	ExtraFiles []string
	// Start are the lines that start the runtime in the background (the
	// last one ends in "&"), comments included.
	Start []string
}

// Write writes the body to b.
func (j Body) Write(b *strings.Builder) {
	w := func(format string, a ...any) { fmt.Fprintf(b, format+"\n", a...) }
	qlaunch := j.Qlaunch
	if qlaunch == "" {
		qlaunch = DefaultQlaunch
	}
	timeout := j.ReadyTimeout
	if timeout == "" {
		timeout = DefaultReadyTimeout
	}
	w("set -euo pipefail")
	for _, l := range j.Setup {
		w("%s", l)
	}
	w("")
	w("QLAUNCH=%s", Quote(qlaunch))
	w("TOPOLOGY=%s", Quote(j.Topology))
	w("")
	w("# Per-job files in the submit directory (seen by every node): the server")
	w("# writes its address (first line: HOST:PORT) to the address file once the")
	w("# whole tree has joined; every rank and the client prove the secret; a")
	w("# rank that fails appends its error to the error file.")
	w("# qlaunch reads the paths from these variables, which %s passes on.", j.Launcher)
	w("jobdir=%s", j.JobDir)
	w("mkdir -p \"$jobdir\"")
	w("export QLAUNCH_ADDRESS_FILE=\"$jobdir/job-%s.addr\"", j.JobID)
	w("export QLAUNCH_SECRET_FILE=\"$jobdir/job-%s.secret\"", j.JobID)
	w("export QLAUNCH_ERROR_FILE=\"$jobdir/job-%s.errors\"", j.JobID)
	w("rm -f \"$QLAUNCH_ADDRESS_FILE\" \"$QLAUNCH_ERROR_FILE\"")
	w("(umask 077 && od -An -tx1 -N32 /dev/urandom | tr -d ' \\n' >\"$QLAUNCH_SECRET_FILE\")")
	w("")
	w("# On any exit (failure included) stop the runtime if it still runs, wait")
	w("# for it and remove the per-job files, so that nothing is left behind.")
	w("runtime_pid=\"\"")
	w("client_pid=\"\"")
	w("# shellcheck disable=SC2317 # called from the EXIT trap too")
	w("stop_runtime() {")
	w("  if [ -n \"$runtime_pid\" ]; then")
	for _, l := range j.Interrupt {
		w("    %s", l)
	}
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
	w("  if [ -n \"$client_pid\" ]; then kill -TERM \"$client_pid\" 2>/dev/null || true; fi")
	w("  stop_runtime")
	w("  rm -f %s", strings.Join(append([]string{"\"${QLAUNCH_ADDRESS_FILE:-}\"", "\"${QLAUNCH_SECRET_FILE:-}\"", "\"${QLAUNCH_ERROR_FILE:-}\""}, j.ExtraFiles...), " "))
	w("  exit \"$status\"")
	w("}")
	w("trap cleanup EXIT")
	w("trap 'exit 130' INT")
	w("trap 'exit 143' TERM")
	w("")
	for _, l := range j.Start {
		w("%s", l)
	}
	w("runtime_pid=$!")
	w("")
	w("# Wait until every rank has joined: qlaunch wait exits 0 once the tree is")
	w("# up; 1 at once, quoting the first rank's error, when the runtime exits or")
	w("# a rank fails first; 1 naming the missing ranks after the timeout.")
	w("\"$QLAUNCH\" wait --address-file \"$QLAUNCH_ADDRESS_FILE\" --timeout %s --pid \"$runtime_pid\"", Quote(timeout))
	w("read -r QLAUNCH_ADDR <\"$QLAUNCH_ADDRESS_FILE\"")
	w("export QLAUNCH_ADDR")
	w("")
	w("# The client, in the background with this script's stdin. Its words are")
	w("# quoted literally, as given to qlaunch script.")
	w("# shellcheck disable=SC2016")
	w("%s <&0 &", Join(j.Client))
	w("client_pid=$!")
	w("# Should the runtime end while the client runs, the client is stopped at")
	w("# once and the job fails with the first rank's error. (kill -0 polls: a")
	w("# script cannot wait for whichever of two processes ends first in every")
	w("# bash version.)")
	w("while kill -0 \"$client_pid\" 2>/dev/null; do")
	w("  if ! kill -0 \"$runtime_pid\" 2>/dev/null; then")
	w("    first_error=$(head -n 1 \"$QLAUNCH_ERROR_FILE\" 2>/dev/null || true)")
	w("    echo \"qlaunch: the runtime ended while the client ran${first_error:+; first rank error: $first_error}\" >&2")
	w("    kill -TERM \"$client_pid\" 2>/dev/null || true")
	w("    break")
	w("  fi")
	w("  sleep 0.2")
	w("done")
	w("client_status=0")
	w("wait \"$client_pid\" || client_status=$?")
	w("client_pid=\"\"")
	w("")
	w("# Stop the runtime with SIGINT and wait for it; exit with the client's status.")
	w("stop_runtime")
	w("exit \"$client_status\"")
}

// Join quotes each word for bash and joins them with spaces, as one
// command: a first word that bash would read as something else than a
// command name (an assignment "A=1", a reserved word such as "if" or
// "time", a job spec "%1") is single-quoted although its characters are
// safe.
func Join(words []string) string {
	q := make([]string, len(words))
	for i, s := range words {
		q[i] = Quote(s)
	}
	if len(words) > 0 && q[0] == words[0] && notCommandName(words[0]) {
		q[0] = "'" + words[0] + "'"
	}
	return strings.Join(q, " ")
}

// notCommandName reports whether bash reads the bare word w, first in a
// command, as something else than the name of the command to run.
func notCommandName(w string) bool {
	switch w {
	case "if", "then", "elif", "else", "fi", "case", "esac", "for", "select", "while", "until",
		"do", "done", "in", "function", "time", "coproc":
		return true
	}
	return strings.ContainsRune(w, '=') || strings.HasPrefix(w, "%")
}

// Quote returns s as one bash word: unchanged when it holds only safe
// characters, else in single quotes.
func Quote(s string) string {
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
