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
	"github.com/qlaunch/qlaunch/topology"
)

// cmdRun is attached mode: start the runtime on this machine as the
// topology says, run CMD with QLAUNCH_ADDR and QLAUNCH_SECRET_FILE set,
// stop the runtime when CMD exits, and exit with CMD's status.
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
	a, err := launcher.StartAttached(ctx, launcher.AttachedConfig{
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
	log.Debug("runtime started", "addr", a.Addr, "ranks", len(plan.Ranks), "took", time.Since(start))
	code, runErr := runChild(ctx, e, a, argv, tlsEnv(files.tls))
	if err := a.Close(); err != nil {
		log.Warn("runtime stopped with an error", "err", err)
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

// runChild runs the user's command with the runtime's address and secret
// in its environment. SIGINT or SIGTERM to qlaunch is passed on to it.
func runChild(ctx context.Context, e *env, a *launcher.Attached, argv, extraEnv []string) (int, error) {
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = append(append(os.Environ(), "QLAUNCH_ADDR="+a.Addr, "QLAUNCH_SECRET_FILE="+a.SecretFile), extraEnv...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = e.stdin, e.stdout, e.stderr
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGINT) }
	cmd.WaitDelay = 10 * time.Second
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, nil
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
