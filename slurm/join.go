package slurm

import (
	"errors"
	"fmt"
	"strings"

	"github.com/qlaunch/qlaunch/jobscript"
)

// JoinScriptConfig is the batch job JoinScript writes: a second allocation
// whose ranks join a running runtime.
type JoinScriptConfig struct {
	ScriptConfig // Client is unused: the job runs no client
	// AddressFile is the running runtime's address file, as the job sees
	// it (on a file system both jobs share).
	AddressFile string
	// DrainLead is how many seconds before the walltime SLURM signals the
	// ranks (#SBATCH --signal=TERM@DrainLead), so that they drain: hand
	// back their queued tasks, finish their running ones and leave before
	// the kill. 0 means 60.
	DrainLead int
}

// JoinScript returns a commented sbatch script whose ranks join the
// runtime of c.AddressFile (qlaunch TOPOLOGY.toml --join) and serve it
// until the walltime's signal, a scancel or the runtime's stop; on the
// signal they drain and the job ends with status 0.
func JoinScript(c JoinScriptConfig) (string, error) {
	if c.AddressFile == "" {
		return "", errors.New("no address file of the runtime to join")
	}
	if c.DrainLead < 0 {
		return "", fmt.Errorf("drain lead %d s: want 0 (the default, 60) or more", c.DrainLead)
	}
	lead := c.DrainLead
	if lead == 0 {
		lead = 60
	}
	cfg := c.ScriptConfig
	cfg.Client = []string{"true"} // checked by Script's validation, not used
	if cfg.JobName == "" {
		cfg.JobName = "qlaunch-join"
	}
	if _, err := Script(cfg); err != nil {
		return "", err
	}
	perNode := cfg.TasksPerNode + cfg.ExtraOnFirst
	total := cfg.Nodes*cfg.TasksPerNode + cfg.ExtraOnFirst
	qlaunch := cfg.Qlaunch
	if qlaunch == "" {
		qlaunch = "qlaunch"
	}

	var b strings.Builder
	w := func(format string, a ...any) { fmt.Fprintf(&b, format+"\n", a...) }
	w("#!/bin/bash")
	w("# Batch script for more capacity: %d node(s) whose ranks join a running", cfg.Nodes)
	w("# qlaunch runtime (the one of the address file below) and serve it until")
	w("# the walltime, a scancel or the runtime's stop. Submit with: sbatch THIS_FILE")
	w("#SBATCH --job-name=%s", cfg.JobName)
	w("#SBATCH --nodes=%d", cfg.Nodes)
	w("#SBATCH --ntasks=%d", total)
	if cfg.GPUsPerNode > 0 {
		w("#SBATCH --gpus-per-node=%d", cfg.GPUsPerNode)
	}
	w("#SBATCH --exclusive")
	w("#SBATCH --overcommit")
	w("# %d s before the walltime SLURM sends SIGTERM to the ranks: they drain", lead)
	w("# (hand back their queued tasks, finish their running ones, leave), so the")
	w("# runtime loses nothing when this allocation ends. scancel drains them too.")
	w("#SBATCH --signal=TERM@%d", lead)
	if cfg.Time != "" {
		w("#SBATCH --time=%s", cfg.Time)
	}
	if cfg.Account != "" {
		w("#SBATCH --account=%s", cfg.Account)
	}
	if cfg.Partition != "" {
		w("#SBATCH --partition=%s", cfg.Partition)
	}
	w("")
	w("set -u")
	w("QLAUNCH=%s", jobscript.Quote(qlaunch))
	w("TOPOLOGY=%s", jobscript.Quote(cfg.Topology))
	w("ADDRESS_FILE=%s", jobscript.Quote(c.AddressFile))
	w("")
	if cfg.ExtraOnFirst > 0 {
		w("jobdir=\"${SLURM_SUBMIT_DIR:-$PWD}/.qlaunch\"")
		w("mkdir -p \"$jobdir\"")
	}
	w("# SIGTERM (scancel, the --signal above) reaches the ranks, which drain and")
	w("# leave; this script waits for them instead of ending the job at once.")
	w("trap 'echo \"qlaunch: signalled: the ranks drain and leave\" >&2' TERM INT")
	w("")
	for _, l := range srunLines(cfg, perNode, total) {
		if strings.HasPrefix(l, "# Start the runtime") {
			l = fmt.Sprintf("# Join the runtime: %d rank(s) plan these nodes and attach under its server.", total)
		}
		l = strings.Replace(l, `"$QLAUNCH" "$TOPOLOGY" &`, `"$QLAUNCH" "$TOPOLOGY" --join --address-file "$ADDRESS_FILE" &`, 1)
		w("%s", l)
	}
	w("ranks=$!")
	w("")
	w("# A trapped signal ends wait early: wait again until srun has ended.")
	w("while :; do")
	w("  wait \"$ranks\"")
	w("  status=$?")
	w("  kill -0 \"$ranks\" 2>/dev/null || break")
	w("done")
	w("exit \"$status\"")
	return b.String(), nil
}
