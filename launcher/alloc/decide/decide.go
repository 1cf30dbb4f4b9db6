// Package decide is the pure core of automatic allocation: given what the
// server sees (its backlog of queued tasks, the ranks each allocation has
// in the tree and how busy they are) and what the scheduler says of each
// job it was given (pending, running, gone), it decides when to submit an
// allocation, when to drain an idle one and when to cancel one. It does no
// I/O and reads no clock: every call carries the time, so that tests
// script whole histories in microseconds. Package alloc is its I/O shell.
//
// The rules, in the order Step applies them:
//
//  1. An allocation the scheduler no longer lists, or lists as ended, has
//     ended. One that ended without ever joining counts as a failed
//     submission; one that ended while serving, undrained (scancel, a
//     node failure), is recorded as such (its tasks were retried or failed
//     by the tree, naming its ranks) and no longer counts against
//     MaxAllocations, so a lasting backlog brings a replacement.
//  2. An allocation with ranks in the tree has joined. It is idle while
//     its ranks run and hold nothing.
//  3. The backlog counts once it reaches Policy.Backlog, from that moment.
//  4. A joined allocation idle for IdleTimeout while nothing is queued is
//     drained (its ranks hand back, finish and leave; the job then ends).
//     One still listed DrainTimeout after its drain is cancelled.
//  5. A backlog that has lasted BacklogFor (since it began, since the
//     last submission and since the last join) submits one allocation when
//     fewer than MaxAllocations are active (not ended, not draining) and
//     none is still waiting to join: the one on its way takes the backlog
//     first. After a failed submission the next waits 1 s, 2 s, 4 s …;
//     after MaxFailures failures in a row the core gives up (Err).
package decide

import (
	"errors"
	"fmt"
	"slices"
	"time"
)

// Policy is the configuration of the core (topology [alloc]).
type Policy struct {
	MaxAllocations int           // active allocations at once (at least 1)
	Backlog        int           // queued tasks that call for one (at least 1)
	BacklogFor     time.Duration // how long the backlog must last
	IdleTimeout    time.Duration // idle this long with no backlog: drain
	// DrainTimeout is how long a drained allocation may stay listed by
	// the scheduler before it is cancelled; 0 means 2 minutes.
	DrainTimeout time.Duration
	// MaxFailures is how many failed submissions in a row make the core
	// give up; 0 means 3.
	MaxFailures int
}

func (p Policy) withDefaults() Policy {
	if p.DrainTimeout <= 0 {
		p.DrainTimeout = 2 * time.Minute
	}
	if p.MaxFailures <= 0 {
		p.MaxFailures = 3
	}
	p.MaxAllocations = max(p.MaxAllocations, 1)
	p.Backlog = max(p.Backlog, 1)
	return p
}

// Phase is where an allocation is in its life.
type Phase uint8

// The phases.
const (
	Pending  Phase = iota // submitted; the scheduler has not started it
	Running               // started by the scheduler; no rank in the tree yet
	Joined                // its ranks are in the tree
	Draining              // told to drain (or cancelled before it joined)
	Ended                 // the scheduler no longer runs it
)

var phaseNames = [...]string{"pending", "running", "joined", "draining", "ended"}

func (p Phase) String() string {
	if int(p) < len(phaseNames) {
		return phaseNames[p]
	}
	return fmt.Sprintf("phase(%d)", p)
}

// Allocation is one job the core had submitted.
type Allocation struct {
	ID        string
	Phase     Phase
	Manual    bool      // added by hand (qlaunch alloc add)
	Submitted time.Time // when the scheduler accepted it
	Started   time.Time // when the scheduler was first seen running it (zero: not yet)
	Joined    time.Time // when its first rank was seen in the tree
	Drained   time.Time // when it was told to drain or cancelled
	Ended     time.Time
	Ranks     int       // its ranks in the tree, as last seen
	IdleSince time.Time // zero while its ranks run or hold tasks
	// Reason says why it ended, or why it drains.
	Reason    string
	cancelled bool
}

// active reports whether a counts against MaxAllocations.
func (a *Allocation) active() bool { return a.Phase < Draining }

// waiting reports whether a is submitted and not yet in the tree.
func (a *Allocation) waiting() bool { return a.Phase == Pending || a.Phase == Running }

// JobState is the scheduler's word on a job.
type JobState uint8

// The job states.
const (
	JobPending JobState = iota // queued, held, starting
	JobRunning                 // running (or completing)
	JobEnded                   // finished, failed, cancelled, timed out
)

// Job is what the scheduler says of one job.
type Job struct {
	State JobState
	// Detail is the scheduler's own state name ("CANCELLED", "F"),
	// quoted in reasons.
	Detail string
}

// Ranks is what the tree holds of one allocation: its joined ranks, and
// the busy slots and queued tasks of its worker ranks.
type Ranks struct {
	Ranks, Busy, Queued int
}

// Observation is one look at the world.
type Observation struct {
	Now time.Time
	// Backlog is the tasks in the tree waiting for a slot.
	Backlog int
	// Jobs, when not nil, is the scheduler's view of the jobs the core
	// submitted: a job it does not list has ended. Nil: not asked this
	// time (nothing is concluded about the jobs).
	Jobs map[string]Job
	// Tree, when not nil, is the tree's ranks by allocation (job id); an
	// allocation it does not list has no rank in the tree. Nil: not asked.
	Tree map[string]Ranks
}

// ActionKind is what the shell is to do.
type ActionKind uint8

// The actions.
const (
	Submit ActionKind = iota // submit one allocation, then call Submitted or SubmitFailed
	Drain                    // drain every rank of allocation ID
	Cancel                   // cancel job ID with the scheduler
)

func (k ActionKind) String() string {
	switch k {
	case Submit:
		return "submit"
	case Drain:
		return "drain"
	case Cancel:
		return "cancel"
	}
	return fmt.Sprintf("action(%d)", uint8(k))
}

// Action is one decision.
type Action struct {
	Kind   ActionKind
	ID     string // the allocation (Drain, Cancel)
	Reason string // for the log
}

// Core holds the allocations and the decisions' state. It is not safe for
// concurrent use: one goroutine (the shell's loop) owns it.
type Core struct {
	policy       Policy
	allocs       []*Allocation
	backlogSince time.Time // zero: no backlog
	failures     int       // failed submissions in a row
	retryAt      time.Time // no automatic submission before
	gaveUp       error
	lastErr      string
	submitting   bool
}

// New returns a core with no allocation.
func New(p Policy) *Core { return &Core{policy: p.withDefaults()} }

// ErrGaveUp is wrapped by Err once repeated failures stopped submissions.
var ErrGaveUp = errors.New("automatic allocation gave up")

// Err is the reason automatic submission stopped, nil while it goes on.
func (c *Core) Err() error { return c.gaveUp }

// Step takes one observation and returns what to do now.
func (c *Core) Step(o Observation) []Action {
	var acts []Action
	now := o.Now
	joinedNow := false
	for _, a := range c.allocs {
		if a.Phase == Ended {
			continue
		}
		if o.Jobs != nil {
			j, listed := o.Jobs[a.ID]
			switch {
			case !listed || j.State == JobEnded:
				c.end(a, now, j, listed)
				continue
			case j.State == JobRunning && a.Phase == Pending:
				a.Phase, a.Started = Running, now
			}
		}
		if o.Tree != nil {
			r := o.Tree[a.ID]
			a.Ranks = r.Ranks
			if r.Ranks > 0 && a.waiting() {
				if a.Started.IsZero() {
					a.Started = now
				}
				a.Phase, a.Joined = Joined, now
				c.failures = 0
				joinedNow = true
			}
			switch {
			case r.Ranks == 0 || r.Busy > 0 || r.Queued > 0:
				a.IdleSince = time.Time{}
			case a.IdleSince.IsZero():
				a.IdleSince = now
			}
		}
	}

	if o.Backlog >= c.policy.Backlog {
		if c.backlogSince.IsZero() || joinedNow {
			// New capacity gets BacklogFor to take the backlog.
			c.backlogSince = now
		}
	} else {
		c.backlogSince = time.Time{}
	}

	for _, a := range c.allocs {
		switch {
		case a.Phase == Joined && o.Backlog == 0 && !a.IdleSince.IsZero() && now.Sub(a.IdleSince) >= c.policy.IdleTimeout:
			a.Phase, a.Drained = Draining, now
			a.Reason = fmt.Sprintf("idle for %v", now.Sub(a.IdleSince).Round(time.Millisecond))
			acts = append(acts, Action{Kind: Drain, ID: a.ID, Reason: a.Reason})
		case a.Phase == Draining && !a.cancelled && now.Sub(a.Drained) >= c.policy.DrainTimeout:
			a.cancelled = true
			acts = append(acts, Action{Kind: Cancel, ID: a.ID,
				Reason: fmt.Sprintf("still listed by the scheduler %v after its drain", now.Sub(a.Drained).Round(time.Second))})
		}
	}

	if c.wantSubmit(now) {
		c.submitting = true
		acts = append(acts, Action{Kind: Submit, Reason: fmt.Sprintf("%d tasks queued for %v", o.Backlog, now.Sub(c.backlogSince).Round(time.Millisecond))})
	}
	return acts
}

func (c *Core) wantSubmit(now time.Time) bool {
	if c.gaveUp != nil || c.submitting || c.backlogSince.IsZero() || now.Sub(c.backlogSince) < c.policy.BacklogFor || now.Before(c.retryAt) {
		return false
	}
	active := 0
	for _, a := range c.allocs {
		if a.waiting() {
			return false
		}
		if a.active() {
			active++
		}
	}
	return active < c.policy.MaxAllocations
}

// end records that a left the scheduler.
func (c *Core) end(a *Allocation, now time.Time, j Job, listed bool) {
	state := "no longer listed"
	if listed && j.Detail != "" {
		state = j.Detail
	}
	switch {
	case a.Phase == Draining && a.Reason != "":
		a.Reason = fmt.Sprintf("drained (%s); the job ended: %s", a.Reason, state)
	case a.Phase == Draining:
		a.Reason = "cancelled before it joined: " + state
	case a.Phase == Joined:
		a.Reason = fmt.Sprintf("ended without a drain (%s): its ranks' tasks were retried or failed naming them", state)
	default:
		a.Reason = fmt.Sprintf("ended before any rank joined (%s)", state)
		c.fail(now, fmt.Sprintf("job %s %s", a.ID, a.Reason))
	}
	a.Phase, a.Ended, a.Ranks, a.IdleSince = Ended, now, 0, time.Time{}
}

// Submitted records that the scheduler accepted allocation id.
func (c *Core) Submitted(id string, now time.Time, manual bool) {
	c.submitting = false
	c.allocs = append(c.allocs, &Allocation{ID: id, Phase: Pending, Manual: manual, Submitted: now})
	if !c.backlogSince.IsZero() {
		c.backlogSince = now // the next one waits for a backlog lasting as long again
	}
}

// SubmitFailed records that a submission failed with err.
func (c *Core) SubmitFailed(err error, now time.Time) {
	c.submitting = false
	c.fail(now, err.Error())
}

func (c *Core) fail(now time.Time, msg string) {
	c.failures++
	c.lastErr = msg
	c.retryAt = now.Add(time.Second << min(c.failures-1, 6))
	if c.failures >= c.policy.MaxFailures && c.gaveUp == nil {
		c.gaveUp = fmt.Errorf("%w after %d failed submissions in a row; the last: %s (check the [alloc] table and the scheduler's own message; qlaunch alloc add tries again by hand)",
			ErrGaveUp, c.failures, msg)
	}
}

// Add asks for one allocation by hand (qlaunch alloc add): nil when one
// may be submitted now (then call Submitted or SubmitFailed). It clears a
// give-up: the user asks again.
func (c *Core) Add() error {
	active := 0
	for _, a := range c.allocs {
		if a.active() {
			active++
		}
	}
	if active >= c.policy.MaxAllocations {
		return fmt.Errorf("%d allocations active, the most alloc.max_allocations allows: remove one first (qlaunch alloc remove ID)", active)
	}
	c.gaveUp, c.failures, c.retryAt = nil, 0, time.Time{}
	c.submitting = true
	return nil
}

// Remove asks to end allocation id by hand (qlaunch alloc remove): a
// joined one is drained, one not joined yet is cancelled.
func (c *Core) Remove(id string, now time.Time) (Action, error) {
	i := slices.IndexFunc(c.allocs, func(a *Allocation) bool { return a.ID == id })
	if i < 0 {
		return Action{}, fmt.Errorf("no allocation %q was submitted by this server (qlaunch alloc list)", id)
	}
	a := c.allocs[i]
	switch a.Phase {
	case Joined:
		a.Phase, a.Drained, a.Reason = Draining, now, "removed by hand"
		return Action{Kind: Drain, ID: id, Reason: a.Reason}, nil
	case Pending, Running:
		a.Phase, a.Drained, a.cancelled = Draining, now, true
		return Action{Kind: Cancel, ID: id, Reason: "removed by hand before it joined"}, nil
	}
	return Action{}, fmt.Errorf("allocation %s is %s already", id, a.Phase)
}

// Stop returns a Cancel for every allocation not ended: the server stops,
// and leaves no job behind.
func (c *Core) Stop() []Action {
	var acts []Action
	for _, a := range c.allocs {
		if a.Phase != Ended {
			acts = append(acts, Action{Kind: Cancel, ID: a.ID, Reason: "the server stops"})
		}
	}
	return acts
}

// Live returns the ids of the allocations not ended.
func (c *Core) Live() []string {
	var ids []string
	for _, a := range c.allocs {
		if a.Phase != Ended {
			ids = append(ids, a.ID)
		}
	}
	return ids
}

// List returns a copy of every allocation, in submission order.
func (c *Core) List() []Allocation {
	out := make([]Allocation, len(c.allocs))
	for i, a := range c.allocs {
		out[i] = *a
	}
	return out
}

// LastError is the last submission failure's message ("" if none).
func (c *Core) LastError() string { return c.lastErr }

// MarshalText returns the phase's name.
func (p Phase) MarshalText() ([]byte, error) { return []byte(p.String()), nil }

// UnmarshalText accepts a phase's name.
func (p *Phase) UnmarshalText(b []byte) error {
	i := slices.Index(phaseNames[:], string(b))
	if i < 0 {
		return fmt.Errorf("%q is not a phase", b)
	}
	*p = Phase(i)
	return nil
}
