package cli

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/qlaunch/qlaunch/launcher"
)

// cmdManager runs a manager: it spawns or accepts worker ranks, or manages
// lower managers, and waits for its parent.
func cmdManager(ctx context.Context, e *env, args []string) error {
	tuneRoleGC(e)
	fs := newFlagSet(e, "manager", "manager [-n N] [-x] [-m ADDR…] [-p PORT] [-w WORKER_PORT] [-i IP] [--parent ADDR] [-v]")
	n := fs.Int("n", -1, "worker slots to spawn as one worker-rank process (default: one per CPU; none with -x or -m)")
	x := fs.Bool("x", false, "spawn nothing: wait for worker ranks (qlaunch worker) to connect")
	var lower listFlag
	fs.Var(&lower, "m", "manage the lower manager at ADDR[:PORT] (repeatable, or comma-separated)")
	port := fs.Int("p", launcher.DefaultManagerPort, "port the parent (server or manager) connects to")
	wport := fs.Int("w", launcher.DefaultWorkerPort, "port worker ranks connect to")
	ip := fs.String("i", "", "IP address to listen on (default: every interface for the parent's port, loopback for the worker port, which only this host's worker ranks use)")
	parent := fs.String("parent", "", "dial the parent at ADDR instead of waiting for it")
	rankNo := fs.Int("rank", 1, "this manager's rank number")
	restarts := fs.Int("restarts", launcher.DefaultRestarts, "how many times the spawned worker rank is started again after it died (0: never)")
	var rf roleFlags
	rf.add(fs, secretCreate)
	pos, err := parseInterleaved(e, fs, args)
	if err != nil {
		return err
	}
	lower = append(lower, pos...)
	for i, a := range lower {
		if !strings.Contains(a, ":") {
			lower[i] = a + ":" + strconv.Itoa(launcher.DefaultManagerPort)
		}
	}
	if *x && *n >= 0 {
		return usagef("manager: -x with -n %d: in BQSKit this waits for %d bqskit-worker processes; with qlaunch, -x spawns nothing and takes every `qlaunch worker N` that connects: start them yourself and wait for the tree with the server's --ranks and `qlaunch wait --ranks`; or drop -x to have this manager spawn -n slots", *n, *n)
	}
	spawn := *n
	if spawn < 0 {
		spawn = runtime.NumCPU()
		if *x || len(lower) > 0 {
			spawn = 0
		}
	}
	node, files, err := rf.node(e, nil)
	if err != nil {
		return err
	}
	node.Rank, node.Parent = *rankNo, *parent
	log := node.Logger
	lns, err := launcher.ManagerListeners(launcher.ManagerConfig{
		Listen:       net.JoinHostPort(*ip, strconv.Itoa(*port)),
		WorkerListen: net.JoinHostPort(cmp.Or(*ip, "127.0.0.1"), strconv.Itoa(*wport)),
	})
	if err != nil {
		return err
	}
	if *restarts < 0 {
		return usagef("manager: --restarts %d: want 0 or more", *restarts)
	}
	var sup *launcher.Supervisor
	if spawn > 0 {
		e.awaitSignals()
		sup = launcher.NewSupervisor(launcher.SupervisorConfig{Restarts: restartsOption(*restarts), Logger: log})
		exe, err := os.Executable()
		if err == nil {
			err = sup.Start(*rankNo+1, spawn, func() *exec.Cmd {
				return workerCommand(exe, spawn, *rankNo+1, lns[1].Addr(), files.secret, rf.v, rf.link.args(node.Link, files.tls))
			})
		}
		if err != nil {
			for _, l := range lns {
				l.Close()
			}
			return fmt.Errorf("manager: spawn worker rank: %w", err)
		}
	}
	parentAt, msg := *parent, "listening" // ready once it joined its parent (RunManager says so)
	if parentAt == "" {
		parentAt, msg = "none: waiting for the server to dial "+lns[0].Addr().String(), "ready"
	}
	log.Info(msg, "role", "manager", "rank", *rankNo, "host", node.Host, "address", lns[0].Addr().String(),
		"worker_address", lns[1].Addr().String(), "spawned_slots", spawn, "lower_managers", len(lower), "parent", parentAt)
	ctx, stop := rankContext(ctx, parentGrace, never)
	defer stop()
	node.Supervisor = sup
	err = launcher.RunManager(ctx, launcher.ManagerConfig{NodeConfig: node, Listeners: lns, Managers: lower})
	if sup != nil {
		// Told to stop by RunManager's shutdown; a rank still running
		// after 5 s gets SIGTERM, then SIGKILL.
		sup.Close(5 * time.Second)
	}
	if errors.Is(err, launcher.ErrShutdown) {
		return nil
	}
	return err
}

// restartsOption turns a restart count as users give it (0: never) into
// launcher.SupervisorConfig.Restarts (0: the default, negative: never).
func restartsOption(n int) int {
	if n == 0 {
		return -1
	}
	return n
}

// workerCommand returns the command of one worker-rank process with slots
// slots connected to the manager's worker port. One process with N slots
// (goroutines) rather than N processes: a kernel's children then run on
// the rank's other slots without a network hop. The manager's supervisor
// starts it, and again whenever it dies.
func workerCommand(exe string, slots, rank int, wa net.Addr, secretPath string, v verbosity, linkArgs []string) *exec.Cmd {
	port := wa.(*net.TCPAddr).Port
	args := []string{"worker", strconv.Itoa(slots), "--manager", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
		"--rank", strconv.Itoa(rank), "--secret-file", secretPath}
	if v > 0 {
		args = append(args, "-v")
	}
	args = append(args, linkArgs...)
	cmd := exec.Command(exe, args...)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	return cmd
}
