package launcher

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"syscall"
	"time"

	"github.com/qlaunch/qlaunch/launcher/starttrace"
	"github.com/qlaunch/qlaunch/launcher/wire"
)

// WorkerSpec describes one worker rank that attached mode starts.
type WorkerSpec struct {
	Rank  int
	Slots int
	CPUs  string   // Linux cpulist to pin to; "" for none
	Env   []string // KEY=VALUE added to the rank's environment
}

// AttachedConfig configures a runtime started by, and owned by, this
// process: the server (which is also this node's manager: worker ranks
// connect to it directly) and its worker ranks.
type AttachedConfig struct {
	// NodeConfig is the server's (rank 0); its Host, Registry, Link and
	// Logger are the worker ranks' too.
	NodeConfig
	// Workers are the worker ranks to start; nil means one rank with one
	// slot per CPU.
	Workers []WorkerSpec
	// InProcess runs the worker ranks as goroutines of this process with
	// Registry (tests, benchmarks, embedding); otherwise each is a process
	// made by Command. The server also reads Registry, when set, for which
	// kernels are retryable.
	InProcess bool
	// Command returns the command that runs worker rank spec as a process
	// connecting to parent, proving the secret in secretFile. The runtime
	// starts it in its own process group, kills it if this process dies,
	// and waits for it on Close.
	Command func(spec WorkerSpec, parent, secretFile string) *exec.Cmd
	// Listen is the server's address; default "127.0.0.1:0".
	Listen string
	// SecretFile, if set, holds the secret to use; otherwise a fresh
	// secret goes to a per-run file (mode 0600) removed by Close.
	SecretFile  string
	AddressFile string
	// Job is the scheduler's job id recorded in the address file, if any.
	Job string
	// StartTimeout bounds the wait for every rank to join; zero means 30 s.
	StartTimeout time.Duration
	// Restarts is how many times a worker-rank process that died is
	// started again (per rank; zero means DefaultRestarts, negative
	// never), waiting RestartBackoff (zero: DefaultRestartBackoff),
	// doubled at each restart of the rank. See Supervisor.
	Restarts       int
	RestartBackoff time.Duration
}

// Supervisor returns the supervisor of the worker-rank processes (nil
// with InProcess): their pids and restart count.
func (a *Attached) Supervisor() *Supervisor { return a.sup }

// Attached is a running attached runtime.
type Attached struct {
	// Addr is the server's address for clients; SecretFile the file
	// holding the secret they must prove.
	Addr       string
	SecretFile string
	Secret     wire.Secret

	cancel    context.CancelFunc
	serverErr chan error
	ready     chan struct{} // closed by the server once every rank joined
	exited    chan error    // a worker rank that ended before (or gave up)
	timeout   time.Duration // StartTimeout
	sup       *Supervisor
	wg        sync.WaitGroup
	tmpDir    string
	once      sync.Once
	closeErr  error
	log       *slog.Logger
}

// StartAttached starts a runtime on this machine and returns once every
// rank has joined: LaunchAttached, then WaitReady.
func StartAttached(ctx context.Context, cfg AttachedConfig) (*Attached, error) {
	a, err := LaunchAttached(cfg)
	if err != nil {
		return nil, err
	}
	if err := a.WaitReady(ctx); err != nil {
		a.Close()
		return nil, err
	}
	return a, nil
}

// LaunchAttached starts a runtime on this machine and returns as soon as
// its server listens and its worker ranks were started, before they
// joined: Addr and SecretFile are good to hand to a client, whose
// connection the server holds until every rank joined
// (ServerConfig.HoldClients). WaitReady waits for that. Close stops it,
// ready or not.
//
// Starting the client while the ranks start is what brings the first
// result of "qlaunch run" near one process start: the trace of its
// start-up (starttrace) showed the worker rank's process start and the
// client's, about the same time each, one after the other.
func LaunchAttached(cfg AttachedConfig) (*Attached, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Workers == nil {
		cfg.Workers = []WorkerSpec{{Rank: 1, Slots: runtime.NumCPU()}}
	}
	if cfg.InProcess && cfg.Registry == nil {
		return nil, errors.New("attached: in-process worker ranks need a registry")
	}
	if !cfg.InProcess && cfg.Command == nil {
		return nil, errors.New("attached: no command to start worker ranks")
	}
	if cfg.StartTimeout <= 0 {
		cfg.StartTimeout = 30 * time.Second
	}
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:0"
	}
	a := &Attached{log: cfg.Logger, serverErr: make(chan error, 1), timeout: cfg.StartTimeout}
	if err := a.secret(cfg); err != nil {
		return nil, err
	}
	starttrace.Mark("run", "secret ready")
	cfg.Link.Secret = a.Secret
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		a.removeSecret()
		return nil, fmt.Errorf("attached: %w", err)
	}
	a.Addr = ln.Addr().String()
	starttrace.Mark("run", "listening")
	owner := AddressOwner{Job: cfg.Job, SecretFile: a.SecretFile}
	if cfg.AddressFile != "" {
		// The server (HoldClients) writes it too as it starts; here it is
		// there before this returns, for a command started then that reads
		// it (or runs a client that finds the runtime through it).
		if err := WriteAddressRecord(cfg.AddressFile, ownRecord(a.Addr, owner)); err != nil {
			ln.Close()
			a.removeSecret()
			return nil, fmt.Errorf("attached: %w", err)
		}
	}
	runCtx, cancel := context.WithCancel(context.Background())
	a.cancel = cancel
	ready := make(chan struct{})
	exited := make(chan error, len(cfg.Workers))
	a.ready, a.exited = ready, exited
	if !cfg.InProcess {
		a.sup = NewSupervisor(SupervisorConfig{
			Restarts: cfg.Restarts, Backoff: cfg.RestartBackoff, Logger: cfg.Logger,
			GaveUp: func(rank int, cause string) {
				select {
				case exited <- fmt.Errorf("worker rank %d %s", rank, cause):
				default:
				}
			},
		})
	}
	a.wg.Go(func() {
		server := cfg.NodeConfig
		server.Supervisor = a.sup
		a.serverErr <- RunServer(runCtx, ServerConfig{
			NodeConfig: server, Listener: ln, ExpectRanks: 1 + len(cfg.Workers),
			AddressFile: cfg.AddressFile, Address: a.Addr, Ready: ready, HoldClients: true,
			Owner: owner,
		})
	})
	for _, spec := range cfg.Workers {
		if cfg.InProcess {
			a.wg.Go(func() {
				err := RunWorker(runCtx, WorkerConfig{Slots: spec.Slots, NodeConfig: NodeConfig{
					Rank: spec.Rank, Host: cfg.Host, Parent: a.Addr, Alloc: cfg.Alloc,
					Registry: cfg.Registry, Link: cfg.Link, Logger: cfg.Logger,
				}})
				exited <- fmt.Errorf("worker rank %d: %w", spec.Rank, err)
			})
			continue
		}
		starttrace.Mark("run", fmt.Sprintf("rank %d exec", spec.Rank))
		err := a.sup.Start(spec.Rank, spec.Slots, func() *exec.Cmd {
			cmd := cfg.Command(spec, a.Addr, a.SecretFile)
			cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
			return cmd
		})
		if err != nil {
			a.Close()
			return nil, fmt.Errorf("attached: %w", err)
		}
	}
	return a, nil
}

// WaitReady waits until every rank of a launched runtime joined; it
// returns an error if a worker rank ended first, the server stopped, the
// start timeout (AttachedConfig.StartTimeout) passed or ctx ended. The
// runtime is left running either way: Close stops it. Call it once.
func (a *Attached) WaitReady(ctx context.Context) error {
	timer := time.NewTimer(a.timeout)
	defer timer.Stop()
	select {
	case <-a.ready:
		return nil
	case err := <-a.exited:
		return fmt.Errorf("attached: %w before the runtime was ready", err)
	case err := <-a.serverErr:
		a.serverErr <- err
		return fmt.Errorf("attached: server stopped: %w", err)
	case <-timer.C:
		return fmt.Errorf("attached: not ready after %v", a.timeout)
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (a *Attached) secret(cfg AttachedConfig) error {
	if cfg.SecretFile != "" {
		s, err := wire.EnsureSecretFile(cfg.SecretFile)
		if err != nil {
			return fmt.Errorf("attached: %w", err)
		}
		a.Secret, a.SecretFile = s, cfg.SecretFile
		return nil
	}
	dir, err := os.MkdirTemp("", "qlaunch-run-")
	if err != nil {
		return fmt.Errorf("attached: %w", err)
	}
	a.tmpDir = dir
	a.SecretFile = filepath.Join(dir, "secret")
	s, err := wire.EnsureSecretFile(a.SecretFile)
	if err != nil {
		os.RemoveAll(dir)
		return fmt.Errorf("attached: %w", err)
	}
	a.Secret = s
	return nil
}

func (a *Attached) removeSecret() {
	if a.tmpDir != "" {
		os.RemoveAll(a.tmpDir)
	}
}

// Close stops the runtime: the server tells every worker rank to stop and
// waits for them; a worker process still running after 5 s is stopped
// (SIGTERM, then SIGKILL).
// Close waits for every process and goroutine it started and removes the
// per-run secret file. Calling it again returns the first result.
func (a *Attached) Close() error {
	a.once.Do(func() {
		if a.sup != nil {
			a.sup.Stopping()
		}
		a.cancel()
		if a.sup != nil {
			a.sup.Close(5 * time.Second)
		}
		a.wg.Wait()
		select {
		case err := <-a.serverErr:
			if !errors.Is(err, ErrShutdown) {
				a.closeErr = err
			}
		default:
		}
		a.removeSecret()
	})
	return a.closeErr
}
