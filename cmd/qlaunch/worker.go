package main

import (
	"context"
	"errors"
	"net"
	"os"
	"runtime"
	"strconv"

	"github.com/qlaunch/qlaunch/kernels"
	"github.com/qlaunch/qlaunch/kernels/python"
	"github.com/qlaunch/qlaunch/kernels/resynth"
	"github.com/qlaunch/qlaunch/launcher"
	"github.com/qlaunch/qlaunch/launcher/bench"
	"github.com/qlaunch/qlaunch/rank"
	"github.com/qlaunch/qlaunch/topology"
)

// kernelRegistry is the registry every worker rank of this binary runs:
// the built-in kernels, the quantum-compilation kernels (resynth,
// synth, instantiate) and the benchmark kernels (len). Exec commands run
// under this binary's exec guard (the hidden subcommand
// kernels.ExecGuardArg), so that a rank killed -9 leaves none of their
// processes behind.
func kernelRegistry() (*kernels.Registry, error) {
	guard := []string{"/proc/self/exe", kernels.ExecGuardArg}
	ks := append(kernels.BuiltinWith(kernels.BuiltinOptions{ExecGuard: guard}), resynth.Kernels()...)
	return kernels.NewRegistry(append(append(ks, bench.Kernels()...), python.Kernel(python.Options{Getenv: os.Getenv, Environ: os.Environ}))...)
}

// cmdWorker runs one worker rank with N slots.
func cmdWorker(ctx context.Context, e *env, args []string) error {
	tuneRoleGC(e)
	fs := newFlagSet(e, "worker", "worker N [--cpus LIST] [-p PORT] [--manager ADDR] [--rank R] [-v]")
	cpus := fs.String("cpus", "", "pin the rank to these CPUs (Linux cpulist, e.g. 0-3,8)")
	port := fs.Int("p", launcher.DefaultWorkerPort, "the manager's worker port (on this host)")
	manager := fs.String("manager", "", "the manager's address HOST:PORT (default: 127.0.0.1 and -p)")
	rankNo := fs.Int("rank", 1, "this rank's number")
	secretFile := fs.String("secret-file", "", "job secret file (default: $QLAUNCH_SECRET_FILE, else the user's default)")
	var v verbosity
	fs.Var(&v, "v", "more output")
	var lf linkFlags
	lf.add(fs)
	pos, err := parseInterleaved(e, fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("worker: want one argument N (slots), got %d", len(pos))
	}
	slots, err := strconv.Atoi(pos[0])
	if err != nil || slots < 1 {
		return usagef("worker: N must be a positive integer, got %q", pos[0])
	}
	if *cpus != "" {
		set, err := topology.ParseCPUList(*cpus, runtime.NumCPU()*4+64)
		if err != nil {
			return usagef("worker: --cpus: %w", err)
		}
		if err := rank.Pin(set.Slice()); err != nil {
			return err
		}
	}
	// Kernels that start programs (exec) must not oversubscribe the slots.
	for _, k := range topology.BLASVars() {
		if os.Getenv(k) == "" {
			os.Setenv(k, "1")
		}
	}
	parent := *manager
	if parent == "" {
		parent = net.JoinHostPort("127.0.0.1", strconv.Itoa(*port))
	}
	link, _, err := lf.config(e, nil)
	if err != nil {
		return err
	}
	if link.Secret, err = clientSecret(e, *secretFile); err != nil {
		return err
	}
	reg, err := kernelRegistry()
	if err != nil {
		return err
	}
	host, _ := os.Hostname()
	err = launcher.RunWorker(ctx, launcher.WorkerConfig{
		Rank: *rankNo, Host: host, Slots: slots, Parent: parent, Registry: reg,
		Link: link, Logger: newLogger(e, v.level()),
	})
	if errors.Is(err, launcher.ErrShutdown) || errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}
