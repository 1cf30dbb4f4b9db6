package cli

import (
	"context"
	"errors"
	"net"
	"os"
	"runtime"
	"strconv"

	"github.com/qlaunch/qlaunch/launcher"
	"github.com/qlaunch/qlaunch/rank"
	"github.com/qlaunch/qlaunch/topology"
)

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
	reg, err := e.registry()
	if err != nil {
		return err
	}
	host, _ := os.Hostname()
	ctx, stop := rankContext(ctx, parentGrace, never)
	defer stop()
	err = launcher.RunWorker(ctx, launcher.WorkerConfig{
		Rank: *rankNo, Host: host, Slots: slots, Parent: parent, Registry: reg,
		Link: link, Logger: newLogger(e, v.level()),
	})
	if errors.Is(err, launcher.ErrShutdown) || errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}
