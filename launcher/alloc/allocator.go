// Package alloc grows and shrinks a running qlaunch job through the batch
// scheduler: the I/O shell around package decide. Running in the server's
// process, an Allocator watches the tree (its backlog of queued tasks and
// the ranks of each allocation, through a launcher.Monitor) and the jobs
// it submitted (squeue or qstat), and does what the core decides: it
// submits a job script whose ranks join the server (sbatch or qsub of
// qlaunch TOPOLOGY.toml --join), drains an idle allocation's ranks, and
// cancels (scancel, qdel) what must go. When the server stops it cancels
// every job it submitted that still runs and waits until the scheduler
// lists none. A control link (Serve, Request) lets qlaunch alloc list,
// add and remove allocations by hand.
package alloc

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync/atomic"
	"time"

	"github.com/qlaunch/qlaunch/launcher"
	"github.com/qlaunch/qlaunch/launcher/alloc/decide"
	"github.com/qlaunch/qlaunch/launcher/wire"
)

// Tree is the running server the allocator watches and drains: a
// *launcher.Monitor.
type Tree interface {
	Stats() (launcher.Stats, error)
	Status(ctx context.Context) ([]wire.RankStatus, error)
	Drain(ranks []int) error
}

// Config is what an Allocator needs.
type Config struct {
	Policy    decide.Policy
	Scheduler Scheduler
	// Script is the path of the job script to submit; Options are the
	// submit command's extra options.
	Script  string
	Options []string
	Tree    Tree
	Logger  *slog.Logger
	// Poll is how often the tree is looked at (default 200 ms);
	// SchedulerPoll how often the scheduler is asked (default 1 s, and
	// at once after every action).
	Poll, SchedulerPoll time.Duration
	// StopTimeout bounds the wait, on stop, for the scheduler to list
	// none of the cancelled jobs (default 60 s).
	StopTimeout time.Duration
	// Now reads the clock; default time.Now.
	Now func() time.Time
}

func (c Config) withDefaults() Config {
	if c.Poll <= 0 {
		c.Poll = 200 * time.Millisecond
	}
	if c.SchedulerPoll <= 0 {
		c.SchedulerPoll = time.Second
	}
	if c.StopTimeout <= 0 {
		c.StopTimeout = 60 * time.Second
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Snapshot is the allocator's state for qlaunch alloc list, the metrics
// and qlaunch status.
type Snapshot struct {
	Scheduler   string              `json:"scheduler"`
	Backlog     int                 `json:"backlog"`
	Allocations []decide.Allocation `json:"allocations"`
	// Error is why automatic submission stopped ("" while it goes on);
	// LastFailure the last failed submission's message.
	Error       string `json:"error,omitempty"`
	LastFailure string `json:"last_failure,omitempty"`
}

// Allocator runs the loop; one goroutine (Run) owns the core.
type Allocator struct {
	cfg  Config
	reqs chan request
	snap atomic.Pointer[Snapshot]
}

type request struct {
	add    bool
	remove string
	reply  chan string // the outcome, "" or an error's text prefixed "error: "
}

// New returns an allocator; call Run.
func New(cfg Config) *Allocator {
	a := &Allocator{cfg: cfg.withDefaults(), reqs: make(chan request)}
	a.snap.Store(&Snapshot{Scheduler: cfg.Scheduler.Name()})
	return a
}

// Snapshot returns the latest state.
func (a *Allocator) Snapshot() Snapshot { return *a.snap.Load() }

// AllocationPhases counts the allocations in each phase (for the metrics).
func (a *Allocator) AllocationPhases() map[string]int {
	m := make(map[string]int)
	for _, al := range a.Snapshot().Allocations {
		m[al.Phase.String()]++
	}
	return m
}

// Run watches and acts until ctx ends, then cancels every job it
// submitted that has not ended and waits until the scheduler lists none
// (at most StopTimeout); it returns an error naming the jobs left.
func (a *Allocator) Run(ctx context.Context) error {
	core := decide.New(a.cfg.Policy)
	log := a.cfg.Logger
	tick := time.NewTicker(a.cfg.Poll)
	defer tick.Stop()
	var askedScheduler time.Time
	var gaveUp bool
	for {
		var req *request
		select {
		case <-ctx.Done():
			return a.stop(core)
		case r := <-a.reqs:
			req = &r
		case <-tick.C:
		}
		now := a.cfg.Now()
		if req != nil {
			req.reply <- a.manual(ctx, core, *req, now)
			askedScheduler = time.Time{}
			continue
		}
		o := decide.Observation{Now: now}
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		rows, err := a.cfg.Tree.Status(sctx)
		cancel()
		if err != nil {
			continue // not running yet, or stopping
		}
		stats, err := a.cfg.Tree.Stats()
		if err != nil {
			continue
		}
		o.Backlog, o.Tree = observeTree(rows, stats)
		if live := core.Live(); len(live) > 0 && now.Sub(askedScheduler) >= a.cfg.SchedulerPoll {
			jobs, err := a.cfg.Scheduler.Jobs(ctx, live)
			switch {
			case ctx.Err() != nil:
				// Stopping: a command cut short says nothing of the jobs.
			case err != nil:
				log.Warn("alloc: asking the scheduler for its jobs", "err", err)
			default:
				o.Jobs = jobs
				askedScheduler = now
			}
		}
		before := core.List()
		for _, act := range core.Step(o) {
			a.act(ctx, core, act, rows)
			askedScheduler = time.Time{}
		}
		logChanges(log, before, core.List())
		if err := core.Err(); err != nil && !gaveUp {
			log.Error("alloc: "+err.Error(), "scheduler", a.cfg.Scheduler.Name())
		}
		gaveUp = core.Err() != nil
		a.publish(core, o.Backlog)
	}
}

// observeTree sums the backlog (tasks the server holds and tasks queued on
// worker ranks) and each allocation's joined ranks, busy slots and queue.
func observeTree(rows []wire.RankStatus, stats launcher.Stats) (int, map[string]decide.Ranks) {
	backlog := stats.Held
	tree := make(map[string]decide.Ranks)
	for _, r := range rows {
		if r.State != wire.RankJoined {
			continue
		}
		if r.Role == "worker" {
			// A relay's own count holds what its ranks hold: only the
			// worker ranks' queues are waiting tasks.
			backlog += r.Queued
		}
		if r.Alloc == "" {
			continue
		}
		t := tree[r.Alloc]
		t.Ranks++
		t.Busy += r.Busy
		t.Queued += r.Queued
		tree[r.Alloc] = t
	}
	return backlog, tree
}

func (a *Allocator) act(ctx context.Context, core *decide.Core, act decide.Action, rows []wire.RankStatus) {
	log := a.cfg.Logger
	switch act.Kind {
	case decide.Submit:
		a.submit(ctx, core, act.Reason, false)
	case decide.Drain:
		var ranks []int
		for _, r := range rows {
			if r.Alloc == act.ID && r.State == wire.RankJoined && r.Parent >= 0 {
				ranks = append(ranks, r.Rank)
			}
		}
		log.Info("alloc: draining allocation", "job", act.ID, "why", act.Reason, "ranks", len(ranks))
		if err := a.cfg.Tree.Drain(ranks); err != nil {
			log.Warn("alloc: drain", "job", act.ID, "err", err)
		}
	case decide.Cancel:
		log.Info("alloc: cancelling allocation", "job", act.ID, "why", act.Reason)
		if err := a.cfg.Scheduler.Cancel(ctx, []string{act.ID}); err != nil {
			log.Warn("alloc: cancel", "job", act.ID, "err", err)
		}
	}
}

func (a *Allocator) submit(ctx context.Context, core *decide.Core, why string, manual bool) error {
	id, err := a.cfg.Scheduler.Submit(ctx, a.cfg.Script, a.cfg.Options)
	now := a.cfg.Now()
	if err != nil {
		a.cfg.Logger.Warn("alloc: submission failed", "err", err)
		core.SubmitFailed(err, now)
		return err
	}
	a.cfg.Logger.Info("alloc: submitted an allocation", "job", id, "why", why)
	core.Submitted(id, now, manual)
	return nil
}

// manual answers a request of qlaunch alloc add or remove.
func (a *Allocator) manual(ctx context.Context, core *decide.Core, r request, now time.Time) string {
	defer a.publish(core, a.Snapshot().Backlog)
	if r.add {
		if err := core.Add(); err != nil {
			return "error: " + err.Error()
		}
		if err := a.submit(ctx, core, "qlaunch alloc add", true); err != nil {
			return "error: " + err.Error()
		}
		l := core.List()
		return "submitted allocation " + l[len(l)-1].ID
	}
	act, err := core.Remove(r.remove, now)
	if err != nil {
		return "error: " + err.Error()
	}
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	rows, _ := a.cfg.Tree.Status(sctx)
	cancel()
	a.act(ctx, core, act, rows)
	return fmt.Sprintf("%s allocation %s", map[decide.ActionKind]string{decide.Drain: "draining", decide.Cancel: "cancelled"}[act.Kind], r.remove)
}

func (a *Allocator) publish(core *decide.Core, backlog int) {
	s := &Snapshot{Scheduler: a.cfg.Scheduler.Name(), Backlog: backlog, Allocations: core.List(), LastFailure: core.LastError()}
	if err := core.Err(); err != nil {
		s.Error = err.Error()
	}
	a.snap.Store(s)
}

// logChanges logs each allocation's change of phase.
func logChanges(log *slog.Logger, before, after []decide.Allocation) {
	for _, n := range after {
		i := slices.IndexFunc(before, func(o decide.Allocation) bool { return o.ID == n.ID })
		if i >= 0 && before[i].Phase == n.Phase {
			continue
		}
		switch n.Phase {
		case decide.Running:
			log.Info("alloc: the scheduler started the allocation", "job", n.ID, "pending", n.Started.Sub(n.Submitted).Round(time.Millisecond))
		case decide.Joined:
			log.Info("alloc: the allocation's ranks joined", "job", n.ID, "ranks", n.Ranks, "since_submission", n.Joined.Sub(n.Submitted).Round(time.Millisecond))
		case decide.Ended:
			log.Info("alloc: the allocation ended", "job", n.ID, "why", n.Reason)
		}
	}
}

// Add submits an allocation now (qlaunch alloc add); Remove ends one
// (drained if joined, else cancelled). Both return the outcome's text.
func (a *Allocator) Add(ctx context.Context) (string, error) {
	return a.ask(ctx, request{add: true})
}

// Remove ends allocation id: see Add.
func (a *Allocator) Remove(ctx context.Context, id string) (string, error) {
	return a.ask(ctx, request{remove: id})
}

func (a *Allocator) ask(ctx context.Context, r request) (string, error) {
	r.reply = make(chan string, 1)
	select {
	case a.reqs <- r:
	case <-ctx.Done():
		return "", ctx.Err()
	}
	select {
	case s := <-r.reply:
		if msg, isErr := cutPrefix(s, "error: "); isErr {
			return "", fmt.Errorf("%s", msg)
		}
		return s, nil
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

func cutPrefix(s, p string) (string, bool) {
	if len(s) >= len(p) && s[:len(p)] == p {
		return s[len(p):], true
	}
	return s, false
}

// stop cancels every live job and waits until the scheduler lists none
// of them as pending or running.
func (a *Allocator) stop(core *decide.Core) error {
	log := a.cfg.Logger
	ctx, cancel := context.WithTimeout(context.Background(), a.cfg.StopTimeout)
	defer cancel()
	var ids []string
	for _, act := range core.Stop() {
		ids = append(ids, act.ID)
	}
	if len(ids) == 0 {
		return nil
	}
	log.Info("alloc: the server stops: cancelling its allocations", "jobs", ids)
	if err := a.cfg.Scheduler.Cancel(ctx, ids); err != nil {
		log.Warn("alloc: cancel", "jobs", ids, "err", err)
	}
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		jobs, err := a.cfg.Scheduler.Jobs(ctx, ids)
		left := ids[:0:0]
		for _, id := range ids {
			if j, ok := jobs[id]; err != nil || ok && j.State != decide.JobEnded {
				left = append(left, id)
			}
		}
		if len(left) == 0 {
			log.Info("alloc: every allocation ended", "jobs", ids)
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("alloc: jobs %v still listed by the scheduler %v after their cancellation (last error: %v): cancel them by hand", left, a.cfg.StopTimeout, err)
		case <-tick.C: // polling the scheduler: it has no completion event
		}
	}
}
