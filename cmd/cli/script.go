package cli

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/qlaunch/qlaunch/pbs"
	"github.com/qlaunch/qlaunch/slurm"
	"github.com/qlaunch/qlaunch/topology"
)

// scriptOptions are the flags of qlaunch script.
type scriptOptions struct {
	nodes     int
	time      string
	account   string
	jobName   string
	partition string
	qlaunch   string
	timeout   time.Duration
	cpus      int
	mpi       string
	join      string
	drainLead time.Duration
}

// cmdScript prints a ready sbatch or qsub script for a topology.
func cmdScript(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet(e, "script", "script slurm|pbs TOPOLOGY.toml [--nodes N] [--time T] [--account A] [--job-name NAME] [--partition P] [--mpi FLAVOUR] -- CLIENT CMD…\n"+
		"script slurm TOPOLOGY.toml --join ADDRESS_FILE [--drain-lead D] [--nodes N] [--time T] …\n\n"+
		"Prints a batch script that starts the runtime, waits until every rank has joined,\n"+
		"runs the client and stops the runtime; it ends at once, quoting the first rank's\n"+
		"error, should the runtime die first. slurm: sbatch, the ranks started by srun.\n"+
		"pbs: qsub (PBS Pro, OpenPBS), the ranks started by mpiexec, which is Cray PALS's,\n"+
		"Open MPI's or MPICH's (Hydra): --mpi auto (the default) tells them apart in the\n"+
		"job from mpiexec --version; --mpi pals|openmpi|mpich writes that one's options only.\n"+
		"--join (slurm): a job of more capacity instead, whose ranks join the running\n"+
		"runtime of ADDRESS_FILE and drain when SLURM signals them --drain-lead before\n"+
		"the walltime (#SBATCH --signal=TERM@…); no client command.")
	var o scriptOptions
	fs.IntVar(&o.nodes, "nodes", 1, "nodes to request")
	fs.StringVar(&o.time, "time", "", "wall-clock limit (SLURM --time, PBS walltime), e.g. 01:00:00")
	fs.StringVar(&o.account, "account", "", "account or project to charge")
	fs.StringVar(&o.jobName, "job-name", "qlaunch", "job name")
	fs.StringVar(&o.partition, "partition", "", "SLURM partition, or PBS queue")
	fs.StringVar(&o.qlaunch, "qlaunch", "qlaunch", "the qlaunch binary as the job's nodes see it")
	fs.DurationVar(&o.timeout, "timeout", 10*time.Minute, "how long the job waits for every rank to join")
	fs.StringVar(&o.mpi, "mpi", pbs.MPIAuto, "pbs: the mpiexec flavour, "+strings.Join(pbs.MPIFlavours, ", "))
	fs.IntVar(&o.cpus, "cpus", 0, "CPUs per node to request where the topology leaves cpus_per_node = 0 (0: the scheduler's)")
	fs.StringVar(&o.join, "join", "", "slurm: a job whose ranks join the running runtime of this address file")
	fs.DurationVar(&o.drainLead, "drain-lead", time.Minute, "with --join: how long before the walltime the ranks are told to drain")
	pos, client, err := parseInterspersed(e, fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 2 {
		return usagef("script: want slurm|pbs and a topology file, got %q", pos)
	}
	switch {
	case o.join != "" && pos[0] != "slurm":
		return usagef("script: --join writes slurm scripts only")
	case o.join != "" && len(client) > 0:
		return usagef("script: a --join job runs no client command: drop %q", client)
	case o.join != "" && o.drainLead < time.Second:
		return usagef("script: --drain-lead %v: want at least 1s", o.drainLead)
	case o.join == "" && len(client) == 0:
		return usagef("script: no client command: give it after \"--\"")
	}
	if o.nodes < 1 || o.cpus < 0 || o.timeout <= 0 {
		return usagef("script: --nodes must be at least 1, --cpus not negative, --timeout positive")
	}
	kind, path := pos[0], pos[1]
	if kind != "slurm" && kind != "pbs" {
		return usagef("script: %q: want slurm or pbs", kind)
	}
	if !slices.Contains(pbs.MPIFlavours, o.mpi) {
		return usagef("script: --mpi %q: want one of %s", o.mpi, strings.Join(pbs.MPIFlavours, ", "))
	}
	if kind == "slurm" && o.mpi != pbs.MPIAuto {
		return usagef("script: --mpi is for pbs scripts: slurm scripts start the ranks with srun")
	}
	t, err := topology.Load(path)
	if err != nil {
		return err
	}
	if o.cpus > 0 {
		t = t.WithCPUsPerNode(o.cpus)
	}
	if t.Workers.CPUsPerNode > 0 {
		// The shape must plan for this many nodes (names do not matter).
		nodes := make([]string, o.nodes)
		for i := range nodes {
			nodes[i] = fmt.Sprintf("node%d", i)
		}
		if _, err := t.Plan(nodes, nil); err != nil {
			return err
		}
	}
	perNode := 1 + t.WorkerRanksPerNode()
	dedicated := t.Server.Placement == topology.PlaceDedicated
	var text string
	switch kind {
	case "slurm":
		c := slurm.ScriptConfig{
			Topology: path, Qlaunch: o.qlaunch, JobName: o.jobName, Account: o.account, Partition: o.partition, Time: o.time,
			Nodes: o.nodes, TasksPerNode: perNode, GPUsPerNode: t.Workers.GPUsPerNode,
			ReadyTimeout: o.timeout.String(), Client: client,
		}
		if dedicated {
			c.ExtraOnFirst = 1
		}
		if cpus := t.Workers.CPUsPerNode; cpus > 0 {
			c.CPUsPerTask = max(1, cpus/(perNode+c.ExtraOnFirst))
		}
		if o.join != "" {
			text, err = slurm.JoinScript(slurm.JoinScriptConfig{ScriptConfig: c, AddressFile: o.join, DrainLead: int(o.drainLead.Seconds())})
		} else {
			text, err = slurm.Script(c)
		}
	case "pbs":
		if dedicated {
			return t.ConfigError("server.placement", "qlaunch script pbs lays out the same ranks on every node; use placement = \"shared\"")
		}
		text, err = pbs.Script(pbs.ScriptConfig{
			Topology: path, Qlaunch: o.qlaunch, JobName: o.jobName, Account: o.account, Queue: o.partition, Time: o.time,
			Nodes: o.nodes, TasksPerNode: perNode, CPUsPerNode: t.Workers.CPUsPerNode, GPUsPerNode: t.Workers.GPUsPerNode,
			ReadyTimeout: o.timeout.String(), Client: client, MPI: o.mpi,
		})
	}
	if err != nil {
		return usageError{fmt.Errorf("script: %w", err)}
	}
	_, err = io.WriteString(e.stdout, text)
	return err
}
