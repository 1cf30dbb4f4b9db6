package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"strings"
	"sync/atomic"
	"time"

	"github.com/qlaunch/qlaunch/launcher"
	"github.com/qlaunch/qlaunch/launcher/boot"
	"github.com/qlaunch/qlaunch/launcher/metrics"
	"github.com/qlaunch/qlaunch/launcher/netpick"
	"github.com/qlaunch/qlaunch/launcher/wire"
	"github.com/qlaunch/qlaunch/rank"
	"github.com/qlaunch/qlaunch/topology"
)

// cmdBoot is `qlaunch TOPOLOGY.toml`: under srun, mpirun, mpiexec or PBS,
// take this rank's role in the plan. A rank that fails records its error
// in the rank error file, when $QLAUNCH_ERROR_FILE names one, for qlaunch
// wait and the batch scripts to quote.
func cmdBoot(ctx context.Context, e *env, args []string) error {
	e.awaitSignals() // a rank may start worker ranks
	err := bootRank(ctx, e, args)
	if !errors.Is(err, flag.ErrHelp) {
		recordRankError(e, err)
	}
	return err
}

// bootRank is cmdBoot without the error file.
func bootRank(ctx context.Context, e *env, args []string) error {
	tuneRoleGC(e)
	path := args[0]
	fs := newFlagSet(e, path, "TOPOLOGY.toml [--dial-timeout D] [--network NET] [--metrics ADDR] [--join [--address-file F] [--rank-base N]] [-v]\n\n"+
		"Run under srun, mpirun, mpiexec (or pbsdsh): every rank detects who it is\n"+
		"(qlaunch whoami), computes its own entry of the plan (qlaunch plan), pins its\n"+
		"CPUs, sets its environment and takes its role; the server writes the address\n"+
		"file once the whole tree has joined. With a binary built with -tags mpi, ranks\n"+
		"started by an MPI launcher listen on port 0 and exchange addresses by MPI.\n"+
		"QLAUNCH_MPI=0 turns MPI off, QLAUNCH_MPI=1 forces it on.\n\n"+
		"--join: this job's ranks join the runtime the address file records instead of\n"+
		"starting one (a second allocation: srun qlaunch TOPOLOGY.toml --join). They\n"+
		"plan their own nodes as usual; the rank that would be the server manages\n"+
		"them under the running server, authenticated with the secret the address\n"+
		"file records. Their rank numbers start at --rank-base (default: the job id\n"+
		"times 1000) and qlaunch status labels them with their job id. On SIGTERM or\n"+
		"SIGINT (scancel, a walltime --signal) they drain: hand back their queued\n"+
		"tasks, finish their running ones, and leave; the runtime goes on.")
	dial := fs.Duration("dial-timeout", boot.DefaultDialTimeout, "how long a rank keeps trying to reach its parent")
	network := fs.String("network", "", "network every rank listens and dials on, replacing the topology's: auto, an interface (ib0), a CIDR (10.1.0.0/16) or an address")
	metricsAddr := fs.String("metrics", "", metricsHelp+", on the server rank; replaces the topology's server.metrics")
	join := fs.Bool("join", false, "join the running runtime of the address file instead of starting one")
	joinFile := fs.String("address-file", "", "with --join: the running runtime's address file (default: the topology's, or $QLAUNCH_ADDRESS_FILE)")
	rankBase := fs.Int("rank-base", -1, "with --join: the number of this job's first rank (default: job id × 1000)")
	var rf roleFlags
	rf.add(fs, secretNone)
	if err := parseFlags(e, fs, args[1:]); err != nil {
		return err
	}
	if err := checkMetrics(path, *metricsAddr); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("%s: unexpected arguments %q", path, fs.Args())
	}
	if _, err := netpick.Parse(*network); err != nil {
		return usagef("%s: --network: %w", path, err)
	}
	t, err := topology.Load(path)
	if err != nil {
		return err
	}
	info, err := rank.Detect(e.getenv)
	if err != nil {
		return err
	}
	if info.Launcher == rank.None {
		return errNoLauncher(path)
	}
	// Before the rank takes part in anything: does the node give the job
	// what the topology asks for, and does the plan fit the tasks the
	// launcher started? (Under MPI, checked once MPI runs, so that a
	// failure can end the whole job.)
	asked := t
	t = t.WithCPUsPerNode(onlineCPUs())
	preflight := func() error {
		if err := asked.CheckNode(nodeResources(e.getenv)); err != nil {
			return err
		}
		if _, err := boot.Entry(t, info); err != nil && !errors.Is(err, rank.ErrLayout) {
			return withLaunchHint(err, path, t, info)
		}
		return nil
	}
	mpi := useMPI(info, e.getenv)
	if !mpi {
		if err := preflight(); err != nil {
			return err
		}
	}
	node, _, err := rf.node(e, t)
	if err != nil {
		return err
	}
	node.Link.DialTimeout = *dial
	log := node.Logger
	cfg := boot.Config{
		Topology: t, Info: info, Getenv: e.getenv, Setenv: os.Setenv,
		Network: *network, Node: node, Ready: make(chan struct{}),
	}
	if *join {
		if cfg.Join, cfg.Node.Link.Secret, err = joinTarget(e, t, info, *joinFile, *rankBase); err != nil {
			return err
		}
	} else if *joinFile != "" || *rankBase >= 0 {
		return usagef("%s: --address-file and --rank-base go with --join", path)
	} else if cfg.Node.Link.Secret, cfg.SecretFile, err = runtimeSecret(e, t.Runtime.SecretPath(e.getenv)); err != nil {
		return err
	}
	if *metricsAddr == "" {
		*metricsAddr = t.Server.Metrics
	}
	// The server rank serves the metrics endpoint, if any.
	// It cannot be opened: the job goes on without it.
	stopMetrics := func() {}
	cfg.Node.Monitor = launcher.NewMonitor()
	// Below the server, an interrupt waits for the tree's own stop (see
	// rankContext).
	var server atomic.Bool
	grace := parentGrace
	if cfg.Join != nil {
		// A joined allocation's ranks drain on SIGTERM or SIGINT (scancel,
		// the walltime's --signal): they hand back their queued tasks,
		// finish their running ones and leave while the runtime goes on.
		// Past joinDrainGrace they stop anyway.
		cfg.Node.Drain, grace = ctx.Done(), joinDrainGrace
	}
	ctx, stopRank := rankContext(ctx, grace, server.Load)
	defer stopRank()
	allocCtx, stopAlloc := context.WithCancel(ctx)
	waitAlloc := func() error { return nil }
	cfg.Started = func(r topology.Rank) {
		server.Store(r.Roles.Has(topology.RoleServer))
		if !r.Roles.Has(topology.RoleServer) {
			return
		}
		var src metrics.Source = cfg.Node.Monitor
		if t.Alloc.Enabled() && cfg.Join == nil {
			// [alloc]: this server grows the job by itself.
			a, wait, err := startAllocator(allocCtx, t, path, t.Runtime.AddressPath(e.getenv), cfg.Ready, cfg.Node.Link.Secret, cfg.Node.Monitor, log)
			if err != nil {
				log.Error("no automatic allocation", "err", err)
			} else {
				waitAlloc = wait
				src = allocMetrics{cfg.Node.Monitor, a}
			}
		}
		stop, err := serveMetrics(ctx, *metricsAddr, src, log)
		if err != nil {
			log.Error("no metrics endpoint", "err", err)
			return
		}
		stopMetrics = stop
	}
	defer func() { stopMetrics() }()
	// Once the server stops, its allocator cancels the jobs it submitted
	// that still run, and the rank waits until the scheduler lists none.
	defer func() {
		stopAlloc()
		if err := waitAlloc(); err != nil {
			log.Error(err.Error())
		}
	}()
	if mpi {
		// MPI_THREAD_FUNNELED: StartMPI locks this goroutine to its thread;
		// every MPI call, Finalize included, is made here.
		m, err := rank.StartMPI()
		if err != nil {
			return err
		}
		cfg.MPI = m
		if err = preflight(); err == nil {
			err = boot.Run(ctx, cfg)
		} else {
			err = &boot.StartError{Err: err}
		}
		if se := (*boot.StartError)(nil); errors.As(err, &se) {
			// The other ranks may wait on this one in MPI_Allgather, and srun
			// does not end a step for one failed task: end the whole job.
			fmt.Fprintf(e.stderr, "qlaunch: %v (aborting the MPI job)\n", err)
			m.Abort(1)
		}
		finalizeMPI(m, log)
		return err
	}
	return boot.Run(ctx, cfg)
}

// useMPI reports whether to bootstrap through MPI: in a binary built with
// it, for ranks an MPI launcher started, unless QLAUNCH_MPI says otherwise.
func useMPI(info rank.Info, getenv func(string) string) bool {
	switch getenv("QLAUNCH_MPI") {
	case "0":
		return false
	case "1":
		return true
	}
	if !rank.HaveMPI {
		return false
	}
	switch info.Launcher {
	case rank.OpenMPI, rank.PMIx, rank.Hydra, rank.PMI:
		return true
	}
	return false
}

// finalizeMPI calls MPI_Finalize, which waits for the other ranks; a rank
// whose peers died would wait forever, so it gives up after 30 s.
func finalizeMPI(m *rank.MPI, log *slog.Logger) {
	t := time.AfterFunc(30*time.Second, func() {
		log.Error("MPI_Finalize did not return within 30s: exiting")
		os.Exit(1)
	})
	defer t.Stop()
	if err := m.Finalize(); err != nil {
		log.Error("MPI_Finalize", "err", err)
	}
}

// onlineCPUs is the machine's CPU count (not this process's affinity, which
// the launcher may have narrowed): every rank of a node must see the same.
func onlineCPUs() int {
	b, err := os.ReadFile("/sys/devices/system/cpu/online")
	if err != nil {
		return runtime.NumCPU()
	}
	set, err := topology.ParseCPUList(strings.TrimSpace(string(b)), 0)
	if err != nil || set.Len() == 0 {
		return runtime.NumCPU()
	}
	return set.Max() + 1
}

// joinDrainGrace bounds how long a signalled rank of a joined allocation
// drains before it stops with what it still runs (SLURM's KillWait or the
// --signal lead time usually ends it first).
const joinDrainGrace = 10 * time.Minute

// joinTarget reads what --join needs from the running runtime's address
// file: the server's address and the job secret, from the file it records
// (never a new one: this job's own secret would not be the runtime's).
func joinTarget(e *env, t *topology.Topology, info rank.Info, file string, base int) (*boot.Join, wire.Secret, error) {
	file = addressFile(e, file, t)
	if file == "" {
		return nil, wire.Secret{}, usagef("--join: no address file: pass --address-file F (the running runtime's), or set runtime.address_file or $QLAUNCH_ADDRESS_FILE")
	}
	rec, err := launcher.ReadAddressRecord(file)
	if err != nil {
		return nil, wire.Secret{}, fmt.Errorf("--join: %w (is the runtime to join running, and its address file on a file system this node shares?)", err)
	}
	if rec.SecretFile == "" {
		return nil, wire.Secret{}, fmt.Errorf("--join: the address file %s records no secret file: the runtime that wrote it is too old to be joined", file)
	}
	s, err := wire.LoadSecretFile(rec.SecretFile)
	if err != nil {
		return nil, wire.Secret{}, fmt.Errorf("--join: the secret of the runtime in %s: %w", file, err)
	}
	if base < 0 {
		base = boot.JoinRankBase(info.JobID)
	}
	return &boot.Join{Server: rec.Addr, RankBase: base}, s, nil
}
