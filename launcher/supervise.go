package launcher

import (
	"errors"
	"fmt"
	"log/slog"
	"os/exec"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/qlaunch/qlaunch/launcher/relay"
	"github.com/qlaunch/qlaunch/topology"
)

// Defaults of SupervisorConfig.
const (
	// DefaultRestarts is how many times a supervised worker rank is
	// started again after it died, over the life of the job.
	DefaultRestarts = topology.DefaultRestarts
	// DefaultRestartBackoff is the wait before a rank's first restart;
	// each further restart of the rank waits twice as long, up to
	// maxRestartBackoff.
	DefaultRestartBackoff = topology.DefaultRestartBackoff
	maxRestartBackoff     = 5 * time.Second
	// exitWait bounds how long a relay waits, after a supervised child's
	// connection broke, for its process's exit status before it reports
	// the loss with the connection's error alone. The process is killed
	// first, so the status normally comes within milliseconds.
	exitWait = 2 * time.Second
)

// SupervisorConfig configures a Supervisor.
type SupervisorConfig struct {
	// Restarts is how many times one rank is started again after its
	// process died (over the life of the job); zero means
	// DefaultRestarts, negative never (a lost rank's slots are then gone
	// for good, see package sched).
	Restarts int
	// Backoff is the wait before a rank's first restart, doubled for each
	// further one (at most 5 s); zero means DefaultRestartBackoff.
	Backoff time.Duration
	Logger  *slog.Logger
	// GaveUp, if set, is called when a rank died and is not started
	// again, with how it ended.
	GaveUp func(rank int, cause string)
}

// Supervisor starts the worker-rank processes of a relay node (attached
// mode's server, a manager started with -n), reaps them when they die and
// starts them again, with backoff and a limit per rank. The relay it is
// given to (NodeConfig.Supervisor) learns of every death at once from the
// process's wait, not from heartbeats: it keeps the rank's slots reserved
// while a replacement comes (tasks wait for it, retryable ones are placed
// on it), names the signal or exit status in the errors of the rank's
// other tasks, and has the supervisor kill a child it found hung.
//
// Lock order: a relay calls the supervisor with its own lock held; the
// supervisor never calls the relay with its lock held.
type Supervisor struct {
	cfg      SupervisorConfig
	log      *slog.Logger
	restarts atomic.Uint64
	wg       sync.WaitGroup

	mu       sync.Mutex
	n        *node
	ranks    map[int]*supRank
	stopping bool
	stop     chan struct{} // closed by Close: no more restarts
}

// supRank is one supervised rank; guarded by Supervisor.mu.
type supRank struct {
	rank, slots int
	command     func() *exec.Cmd
	cmd         *exec.Cmd // the current process; nil between restarts
	done        chan struct{}
	restarts    int
	killed      string // why the supervisor killed it, if it did
	leaving     bool   // drained: its exit is its leave, not a death
}

// NewSupervisor returns a supervisor with no rank.
func NewSupervisor(cfg SupervisorConfig) *Supervisor {
	switch {
	case cfg.Restarts == 0:
		cfg.Restarts = DefaultRestarts
	case cfg.Restarts < 0:
		cfg.Restarts = 0
	}
	if cfg.Backoff <= 0 {
		cfg.Backoff = DefaultRestartBackoff
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Supervisor{cfg: cfg, log: cfg.Logger, ranks: make(map[int]*supRank), stop: make(chan struct{})}
}

// Start starts worker rank rank (slots slots) as the process command
// returns, and again whenever it dies, until Close. command is called for
// every start; the process it returns must not be started yet.
func (s *Supervisor) Start(rank, slots int, command func() *exec.Cmd) error {
	r := &supRank{rank: rank, slots: slots, command: command}
	s.mu.Lock()
	if s.stopping {
		s.mu.Unlock()
		return ErrShutdown
	}
	if _, dup := s.ranks[rank]; dup {
		s.mu.Unlock()
		return fmt.Errorf("supervisor: rank %d started twice", rank)
	}
	if err := s.spawn(r); err != nil {
		s.mu.Unlock()
		return err
	}
	s.ranks[rank] = r
	n := s.n
	s.mu.Unlock()
	if n != nil {
		// The relay kills it if it does not connect in time (attach
		// tells it of the ranks started before it ran).
		n.do(func() { n.step(relay.Event{Type: relay.RankStarted, Rank: rank}) })
	}
	return nil
}

// spawn starts r's process and its reaper; s.mu is held.
func (s *Supervisor) spawn(r *supRank) error {
	cmd := r.command()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start worker rank %d: %w", r.rank, err)
	}
	r.cmd, r.done, r.killed = cmd, make(chan struct{}), ""
	done := r.done
	s.wg.Go(func() {
		err := cmd.Wait()
		close(done)
		s.exited(r, cmd, err)
	})
	return nil
}

// exited handles the death of r's process cmd (err from its Wait): it
// tells the relay, then starts the rank again after its backoff, as long
// as the rank has restarts left and the supervisor is not closing.
func (s *Supervisor) exited(r *supRank, cmd *exec.Cmd, err error) {
	s.mu.Lock()
	if r.cmd != cmd {
		s.mu.Unlock()
		return
	}
	r.cmd = nil
	cause := ExitCause(err)
	if r.killed != "" {
		cause = r.killed + "; " + cause
	}
	if s.stopping || r.leaving {
		// Told to stop with the tree, or drained: an exit, not a death.
		s.log.Debug("worker rank exited", "rank", r.rank, "pid", cmd.Process.Pid, "cause", cause)
		s.mu.Unlock()
		return
	}
	s.log.Warn("worker rank died", "rank", r.rank, "pid", cmd.Process.Pid, "cause", cause)
	for {
		if s.stopping {
			s.mu.Unlock()
			return
		}
		restart := r.restarts < s.cfg.Restarts
		attempt := r.restarts + 1
		if restart {
			r.restarts++
			s.restarts.Add(1)
		}
		n := s.n
		s.mu.Unlock()
		var note string
		switch {
		case restart:
			note = fmt.Sprintf("restarting (%d of %d)", attempt, s.cfg.Restarts)
		case s.cfg.Restarts == 0:
			note = "not restarted: restarts are off"
		default:
			note = fmt.Sprintf("not restarted: all %d restarts used", s.cfg.Restarts)
		}
		if n != nil {
			n.do(func() { n.rankExited(r.rank, r.slots, cause+"; "+note, restart) })
		}
		if !restart {
			s.log.Error("worker rank lost for good", "rank", r.rank, "cause", cause, "why", note)
			if s.cfg.GaveUp != nil {
				s.cfg.GaveUp(r.rank, cause+"; "+note)
			}
			return
		}
		delay := min(s.cfg.Backoff<<min(attempt-1, 16), maxRestartBackoff)
		t := time.NewTimer(delay)
		select {
		case <-s.stop:
			t.Stop()
			return
		case <-t.C:
		}
		s.mu.Lock()
		if s.stopping {
			s.mu.Unlock()
			return
		}
		err := s.spawn(r)
		if err == nil {
			s.log.Info("worker rank restarted", "rank", r.rank, "pid", r.pid(), "restart", attempt)
			n := s.n
			s.mu.Unlock()
			if n != nil {
				// The relay kills it if it does not connect in time (see
				// attach for the ranks' first starts).
				n.do(func() { n.step(relay.Event{Type: relay.RankStarted, Rank: r.rank}) })
			}
			return
		}
		// A failed start counts as another death of the rank.
		cause = err.Error()
		s.log.Error("restarting worker rank", "rank", r.rank, "err", err)
	}
}

func (r *supRank) pid() int {
	if r.cmd == nil || r.cmd.Process == nil {
		return 0
	}
	return r.cmd.Process.Pid
}

// signalNames are the names of the signals a rank is commonly killed by.
var signalNames = map[syscall.Signal]string{
	syscall.SIGKILL: "SIGKILL", syscall.SIGTERM: "SIGTERM", syscall.SIGINT: "SIGINT", syscall.SIGHUP: "SIGHUP",
	syscall.SIGQUIT: "SIGQUIT", syscall.SIGSEGV: "SIGSEGV", syscall.SIGBUS: "SIGBUS", syscall.SIGABRT: "SIGABRT",
	syscall.SIGILL: "SIGILL", syscall.SIGFPE: "SIGFPE", syscall.SIGPIPE: "SIGPIPE", syscall.SIGXCPU: "SIGXCPU",
}

// ExitCause says in words how a process ended, from its Wait error:
// "killed by signal 9 (SIGKILL)", "exited with status 3".
func ExitCause(err error) string {
	var ee *exec.ExitError
	if err == nil {
		return "exited with status 0"
	}
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			name, ok := signalNames[ws.Signal()]
			if !ok {
				name = ws.Signal().String()
			}
			return fmt.Sprintf("killed by signal %d (%s)", int(ws.Signal()), name)
		}
		return fmt.Sprintf("exited with status %d", ee.ExitCode())
	}
	return err.Error()
}

// leaving notes that rank was drained: when its process exits it is not
// started again.
func (s *Supervisor) leaving(rank int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r := s.ranks[rank]; r != nil {
		r.leaving = true
	}
}

// supervises reports whether rank is a rank of this supervisor.
func (s *Supervisor) supervises(rank int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.ranks[rank]
	return ok
}

// kill kills rank's process, if it runs, noting why (a relay found it
// hung, or its connection broke while the process lives on).
func (s *Supervisor) kill(rank int, why string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.ranks[rank]
	if r == nil || r.cmd == nil || r.cmd.Process == nil {
		return
	}
	if r.killed == "" {
		r.killed = why
	}
	pid := r.cmd.Process.Pid
	if a := r.cmd.SysProcAttr; a != nil && a.Setpgid {
		_ = syscall.Kill(-pid, syscall.SIGKILL)
	}
	_ = syscall.Kill(pid, syscall.SIGKILL)
}

// Restarts returns how many times a rank was started again.
func (s *Supervisor) Restarts() uint64 { return s.restarts.Load() }

// PIDs returns the process ids of the ranks' current processes, by rank
// (a rank between restarts is absent).
func (s *Supervisor) PIDs() map[int]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[int]int, len(s.ranks))
	for rank, r := range s.ranks {
		if p := r.pid(); p != 0 {
			out[rank] = p
		}
	}
	return out
}

func (s *Supervisor) attach(n *node) {
	s.mu.Lock()
	s.n = n
	var running []int
	for rank, r := range s.ranks {
		if r.cmd != nil {
			running = append(running, rank)
		}
	}
	s.mu.Unlock()
	// The ranks started before the relay ran: it kills one that does not
	// connect in time (frozen before its hello), as it does a replacement.
	slices.Sort(running)
	for _, rank := range running {
		n.do(func() { n.step(relay.Event{Type: relay.RankStarted, Rank: rank}) })
	}
}

func (s *Supervisor) detach(n *node) {
	s.mu.Lock()
	if s.n == n {
		s.n = nil
	}
	s.mu.Unlock()
}

// Stopping ends restarts: the ranks are about to be told to stop.
func (s *Supervisor) Stopping() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.stopping {
		s.stopping = true
		close(s.stop)
	}
}

// Close ends restarts, waits up to grace for every process to exit on its
// own (they were told to stop), sends SIGTERM, then SIGKILL 2 s later to
// those that remain, and returns once every process was reaped.
func (s *Supervisor) Close(grace time.Duration) {
	s.Stopping()
	s.mu.Lock()
	var live []*supRank
	for _, r := range s.ranks {
		if r.cmd != nil {
			live = append(live, r)
		}
	}
	s.mu.Unlock()
	deadline := time.NewTimer(grace)
	defer deadline.Stop()
	expired := false
	for _, r := range live {
		s.mu.Lock()
		cmd, done := r.cmd, r.done
		s.mu.Unlock()
		if cmd == nil {
			continue
		}
		if !expired {
			select {
			case <-done:
				continue
			case <-deadline.C:
				expired = true
			}
		}
		select {
		case <-done:
			continue
		default:
		}
		s.log.Warn("worker rank did not exit, stopping it", "rank", r.rank, "pid", cmd.Process.Pid)
		s.signal(cmd, syscall.SIGTERM)
		t := time.NewTimer(2 * time.Second)
		select {
		case <-done:
		case <-t.C:
			s.log.Warn("worker rank ignored SIGTERM, killing it", "rank", r.rank, "pid", cmd.Process.Pid)
			s.signal(cmd, syscall.SIGKILL)
			<-done
		}
		t.Stop()
	}
	s.wg.Wait()
}

func (s *Supervisor) signal(cmd *exec.Cmd, sig syscall.Signal) {
	if a := cmd.SysProcAttr; a != nil && a.Setpgid {
		_ = syscall.Kill(-cmd.Process.Pid, sig)
	}
	_ = cmd.Process.Signal(sig)
}
