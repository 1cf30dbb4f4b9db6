package cli

import (
	"context"
	"errors"
	"fmt"
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
	fs := newFlagSet(e, "worker", "worker N [--cpus START|LIST] [-t BLAS_THREADS] [-p PORT] [--manager ADDR] [--rank R] [-v]")
	cpus := fs.String("cpus", "", "pin the rank's N slots to CPUs: one number is the first of N (BQSKit's start CPU: 0 means 0…N-1), a list is the set itself (Linux cpulist, e.g. 0-3,8)")
	fs.StringVar(cpus, "c", "", "the same as --cpus (BQSKit's -c)")
	blas := fs.Int("t", 1, "threads of the BLAS and OpenMP libraries per slot (OMP/MKL/OPENBLAS_NUM_THREADS, when not set already; BQSKit's -t)")
	logClient := fs.Bool("l", false, "BQSKit's -l: refused, task logs always reach the client (see --help)")
	port := fs.Int("p", launcher.DefaultWorkerPort, "the manager's worker port (on this host)")
	manager := fs.String("manager", "", "the manager's address HOST:PORT (default: 127.0.0.1 and -p)")
	rankNo := fs.Int("rank", 1, "this rank's number")
	var rf roleFlags
	rf.add(fs, secretLoad)
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
	if *logClient {
		return usagef("worker: -l: a qlaunch worker rank always sends its tasks' log records to the client that submitted them, at the level the client asked for (qlaunch submit -v); leave -l out")
	}
	if *blas < 1 {
		return usagef("worker: -t %d: want 1 or more BLAS threads per slot", *blas)
	}
	if *cpus != "" {
		set, err := workerCPUs(*cpus, slots, runtime.NumCPU()*4+64)
		if err != nil {
			return usagef("worker: --cpus: %w", err)
		}
		if err := rank.Pin(set); err != nil {
			return err
		}
	}
	// Kernels that start programs (exec) must not oversubscribe the slots.
	for _, k := range topology.BLASVars() {
		if os.Getenv(k) == "" {
			os.Setenv(k, strconv.Itoa(*blas))
		}
	}
	parent := *manager
	if parent == "" {
		parent = net.JoinHostPort("127.0.0.1", strconv.Itoa(*port))
	}
	node, _, err := rf.node(e, nil)
	if err != nil {
		return err
	}
	node.Rank, node.Parent = *rankNo, parent
	ctx, stop := rankContext(ctx, parentGrace, never)
	defer stop()
	err = launcher.RunWorker(ctx, launcher.WorkerConfig{NodeConfig: node, Slots: slots})
	if errors.Is(err, launcher.ErrShutdown) || errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// workerCPUs is the CPU set of a manual worker rank of slots slots:
// arg is one number, the first CPU of slots consecutive ones (as BQSKit's
// bqskit-worker --cpus START pins its N workers to START…START+N-1), or a
// Linux cpulist naming the set itself.
func workerCPUs(arg string, slots, limit int) ([]int, error) {
	if start, err := strconv.Atoi(arg); err == nil {
		if start < 0 || start+slots > limit {
			return nil, fmt.Errorf("start CPU %d for %d slots is out of range (CPUs 0…%d)", start, slots, limit-1)
		}
		set := make([]int, slots)
		for i := range set {
			set[i] = start + i
		}
		return set, nil
	}
	set, err := topology.ParseCPUList(arg, limit)
	if err != nil {
		return nil, err
	}
	return set.Slice(), nil
}
