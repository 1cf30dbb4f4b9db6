package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/qlaunch/qlaunch/kernels/python"
	"github.com/qlaunch/qlaunch/launcher"
	"github.com/qlaunch/qlaunch/launcher/starttrace"
	"github.com/qlaunch/qlaunch/topology"
)

// cmdRun is attached mode: start the runtime on this machine as the
// topology says, run CMD with QLAUNCH_ADDR and QLAUNCH_SECRET_FILE set,
// stop the runtime when CMD exits, and exit with CMD's status.
//
// CMD starts as soon as the server listens, while the worker ranks start:
// the server holds CMD's connections until every rank joined, so that its
// first task and status see the whole tree. If the runtime fails to
// become ready, CMD is interrupted (SIGINT) and qlaunch run exits with the
// runtime's error.
func cmdRun(ctx context.Context, e *env, args []string) error {
	tuneRoleGC(e)
	fs := newFlagSet(e, "run", "run [--metrics ADDR] TOPOLOGY.toml [--] CMD [ARG…]")
	metricsAddr := fs.String("metrics", "", metricsHelp+"; replaces the topology's server.metrics")
	var rf roleFlags
	rf.add(fs, secretNone)
	if err := parseFlags(e, fs, args); err != nil {
		return err
	}
	rest := fs.Args()
	if len(rest) < 2 {
		return usagef("run: want a topology file and a command")
	}
	if err := checkMetrics("run", *metricsAddr); err != nil {
		return err
	}
	topoPath, argv := rest[0], rest[1:]
	if argv[0] == "--" {
		argv = argv[1:]
	}
	if len(argv) == 0 {
		return usagef("run: no command given after the topology")
	}
	topo, err := topology.Load(topoPath)
	if err != nil {
		return err
	}
	topo = topo.WithCPUsPerNode(runtime.NumCPU())
	node, files, err := rf.node(e, topo)
	if err != nil {
		return err
	}
	plan, err := topo.Plan([]string{node.Host}, nil)
	if err != nil {
		return err
	}
	log := node.Logger
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	var specs []launcher.WorkerSpec
	for _, r := range plan.Ranks {
		if !r.Roles.Has(topology.RoleWorker) {
			continue
		}
		spec := launcher.WorkerSpec{Rank: r.Rank, Slots: max(1, r.Workers), CPUs: r.CPUs}
		keys := make([]string, 0, len(r.Env))
		for k := range r.Env {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			spec.Env = append(spec.Env, k+"="+r.Env[k])
		}
		specs = append(specs, spec)
	}
	if len(specs) == 0 {
		return usagef("run: the plan of %s has no worker rank", topoPath)
	}
	if pythonCommand(argv) {
		// A Python client: its worker ranks start an interpreter
		// before its first task (python.Pool.Warm).
		for i := range specs {
			specs[i].Env = append(specs[i].Env, python.WarmEnv+"=1")
		}
	}
	if *metricsAddr == "" {
		*metricsAddr = topo.Server.Metrics
	}
	node.Monitor = launcher.NewMonitor()
	stopMetrics, err := serveMetrics(ctx, *metricsAddr, node.Monitor, log)
	if err != nil {
		return err
	}
	defer stopMetrics()
	start := time.Now()
	starttrace.Mark("run", "planned")
	e.awaitSignals()
	a, err := launcher.LaunchAttached(launcher.AttachedConfig{
		NodeConfig:  node,
		Workers:     specs,
		SecretFile:  topo.Runtime.SecretPath(e.getenv),
		AddressFile: addressFile(e, "", topo),
		Job:         jobID(e),
		Restarts:    restartsOption(topo.Workers.Restarts),
		Command: func(spec launcher.WorkerSpec, parent, secretFile string) *exec.Cmd {
			args := []string{"worker", strconv.Itoa(spec.Slots), "--manager", parent,
				"--rank", strconv.Itoa(spec.Rank), "--secret-file", secretFile}
			if spec.CPUs != "" {
				args = append(args, "--cpus", spec.CPUs)
			}
			if rf.v > 0 {
				args = append(args, "-v")
			}
			args = append(args, rf.link.args(node.Link, files.tls)...)
			cmd := exec.Command(exe, args...)
			cmd.Env = append(os.Environ(), spec.Env...)
			cmd.Stdout, cmd.Stderr = e.stderr, e.stderr
			return cmd
		},
	})
	if err != nil {
		return err
	}
	code, runErr, err := runWhileReady(ctx, e, a, argv, tlsEnv(files.tls), func() {
		log.Debug("runtime started", "addr", a.Addr, "ranks", len(plan.Ranks), "took", time.Since(start))
	})
	starttrace.Mark("run", "command exited")
	if cerr := a.Close(); cerr != nil {
		log.Warn("runtime stopped with an error", "err", cerr)
	}
	starttrace.Mark("run", "runtime stopped")
	if err != nil {
		return err
	}
	if runErr != nil {
		return runErr
	}
	if code != 0 {
		return exitStatus(code)
	}
	return nil
}

// pythonCommand reports whether argv runs a Python interpreter, directly
// or through env (env [NAME=VALUE…] python3 …).
func pythonCommand(argv []string) bool {
	if len(argv) > 0 && filepath.Base(argv[0]) == "env" {
		argv = argv[1:]
		for len(argv) > 0 && strings.Contains(argv[0], "=") {
			argv = argv[1:]
		}
	}
	return len(argv) > 0 && strings.HasPrefix(filepath.Base(argv[0]), "python")
}

// runWhileReady runs the user's command (runChild) while the launched
// runtime a gets ready, calling ready once it is. If the runtime fails to
// become ready first, the command is interrupted (SIGINT, as when the run
// is) and err is why; otherwise code and runErr are runChild's (also when
// ctx ended: the command got the SIGINT and its status is the run's). A
// command that ends before the runtime is ready ends the run: the runtime
// is not waited for.
//
// The trace of the start-up (QLAUNCH_TRACE_STARTUP) showed the worker
// rank's process start and then the command's, each about a third of the
// time to the first result, one after the other: they now overlap.
func runWhileReady(ctx context.Context, e *env, a *launcher.Attached, argv, extraEnv []string, ready func()) (code int, runErr, err error) {
	childCtx, interrupt := context.WithCancel(ctx)
	defer interrupt()
	type outcome struct {
		code int
		err  error
	}
	done := make(chan outcome, 1)
	go func() {
		code, err := runChild(childCtx, e, a, argv, extraEnv)
		done <- outcome{code, err}
	}()
	waitCtx, stopWaiting := context.WithCancel(ctx)
	readyErr := make(chan error, 1)
	go func() { readyErr <- a.WaitReady(waitCtx) }()
	select {
	case err = <-readyErr:
		switch {
		case err == nil:
			starttrace.Mark("run", "runtime ready")
			ready()
		case ctx.Err() != nil:
			err = nil // the command was interrupted with the run
		default:
			interrupt()
		}
		o := <-done
		stopWaiting()
		return o.code, o.err, err
	case o := <-done:
		// WaitReady returns once waitCtx ends; it must have returned
		// before the runtime is closed (it may hold the server's error
		// for a moment).
		stopWaiting()
		<-readyErr
		return o.code, o.err, nil
	}
}

// runChild runs the user's command with the runtime's address and secret
// in its environment. SIGINT or SIGTERM to qlaunch is passed on to it.
func runChild(ctx context.Context, e *env, a *launcher.Attached, argv, extraEnv []string) (int, error) {
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = append(append(os.Environ(), "QLAUNCH_ADDR="+a.Addr, "QLAUNCH_SECRET_FILE="+a.SecretFile), extraEnv...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = e.stdin, e.stdout, e.stderr
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGINT) }
	cmd.WaitDelay = 10 * time.Second
	starttrace.Mark("run", "command exec")
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, nil
	case cmd.Process == nil && ctx.Err() != nil:
		// Interrupted before it started (the runtime failed, or qlaunch
		// got a signal, while the goroutine was on its way here): never
		// run, it ends as an interrupted command would.
		return 128 + int(syscall.SIGINT), nil
	case errors.As(err, &ee):
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 128 + int(ws.Signal()), nil
		}
		return ee.ExitCode(), nil
	case errors.Is(err, exec.ErrNotFound):
		return 0, usagef("run: %w", err)
	}
	return 0, fmt.Errorf("run: %w", err)
}
