package pbs

import (
	"errors"
	"fmt"
	"strings"

	"github.com/qlaunch/qlaunch/jobscript"
)

// JoinScriptConfig is the batch job JoinScript writes: a second allocation
// whose ranks join a running runtime.
type JoinScriptConfig struct {
	ScriptConfig // Client and ReadyTimeout are unused: the job runs no client
	// AddressFile is the running runtime's address file, as the job sees
	// it (on a file system both jobs share).
	AddressFile string
	// DrainAfter is how many seconds after its start the job tells its
	// ranks to drain (SIGTERM), so that they leave before the walltime's
	// kill: PBS has no signal ahead of the walltime of its own. 0: only
	// on qdel (whose SIGTERM comes kill_delay before its SIGKILL).
	DrainAfter int
}

// JoinScript returns a commented qsub script whose ranks join the runtime
// of c.AddressFile (qlaunch TOPOLOGY.toml --join) and serve it until
// DrainAfter, a qdel or the runtime's stop; on SIGTERM they drain and the
// job ends with status 0.
func JoinScript(c JoinScriptConfig) (string, error) {
	if c.AddressFile == "" {
		return "", errors.New("no address file of the runtime to join")
	}
	if c.DrainAfter < 0 {
		return "", fmt.Errorf("drain after %d s: want 0 (never) or more", c.DrainAfter)
	}
	cfg := c.ScriptConfig
	cfg.Client = []string{"true"} // checked by Script's validation, not used
	if cfg.JobName == "" {
		cfg.JobName = "qlaunch-join"
	}
	head, err := Script(cfg)
	if err != nil {
		return "", err
	}
	qlaunch := cfg.Qlaunch
	if qlaunch == "" {
		qlaunch = jobscript.DefaultQlaunch
	}
	var b strings.Builder
	w := func(format string, a ...any) { fmt.Fprintf(&b, format+"\n", a...) }
	w("#!/bin/bash")
	w("# Batch script for more capacity under PBS: %d node(s) whose ranks join a", cfg.Nodes)
	w("# running qlaunch runtime (the one of the address file below) and serve it")
	w("# until a qdel, the drain timer below or the runtime's stop. Submit with:")
	w("# qsub THIS_FILE")
	// The directives are Script's own.
	for _, l := range strings.Split(head, "\n") {
		if strings.HasPrefix(l, "#PBS ") || strings.HasPrefix(l, "# One chunk per node") {
			w("%s", l)
		}
	}
	w("")
	w("set -u")
	w("cd \"${PBS_O_WORKDIR:-$PWD}\"")
	w("QLAUNCH=%s", jobscript.Quote(qlaunch))
	w("TOPOLOGY=%s", jobscript.Quote(cfg.Topology))
	w("ADDRESS_FILE=%s", jobscript.Quote(c.AddressFile))
	w("")
	w("# SIGTERM (qdel, the timer below) makes the ranks drain: they hand back")
	w("# their queued tasks, finish their running ones and leave, so the runtime")
	w("# loses nothing when this allocation ends. The script passes it on and")
	w("# waits for them.")
	w("ranks=\"\"")
	w("trap 'echo \"qlaunch: signalled: the ranks drain and leave\" >&2; [ -z \"$ranks\" ] || kill -TERM \"$ranks\" 2>/dev/null' TERM INT")
	w("")
	total := cfg.Nodes * cfg.TasksPerNode
	for _, l := range startLines(cfg.MPI, total, cfg.TasksPerNode) {
		if strings.HasPrefix(l, "# Start the runtime") {
			l = fmt.Sprintf("# Join the runtime: %d rank(s), %d per node, plan these nodes and attach", total, cfg.TasksPerNode)
			w("%s", l)
			w("# under its server, proving the secret its address file records.")
			continue
		}
		w("%s", strings.Replace(l, `"$QLAUNCH" "$TOPOLOGY" &`, `"$QLAUNCH" "$TOPOLOGY" --join --address-file "$ADDRESS_FILE" &`, 1))
	}
	w("ranks=$!")
	timer := "\"\""
	if c.DrainAfter > 0 {
		w("")
		w("# Drain %d s after the start, ahead of the walltime's kill.", c.DrainAfter)
		w("(sleep %d && kill -TERM \"$ranks\" 2>/dev/null) &", c.DrainAfter)
		w("timer=$!")
		timer = "\"$timer\""
	}
	w("")
	w("# A trapped signal ends wait early: wait again until mpiexec has ended.")
	w("while :; do")
	w("  wait \"$ranks\"")
	w("  status=$?")
	w("  kill -0 \"$ranks\" 2>/dev/null || break")
	w("done")
	if c.DrainAfter > 0 {
		w("kill %s 2>/dev/null", timer)
	}
	w("exit \"$status\"")
	return b.String(), nil
}
