// Package executor is the pure core of a worker rank's executor: its slot
// tokens, its run queue, the kernels parked until a token is free, and the
// policies that decide what runs where: batches newest first, tokens to
// parked kernels before queued tasks, helping while waiting, running the
// reader's batch inline, and when to report load.
//
// The core does no I/O, starts no goroutine, reads no clock and takes no
// lock. Its methods return what the caller must do (Effects: start a runner
// on a batch, run a batch inline, resume a parked kernel, start a reader,
// send a load report), so every policy is tested without sockets or
// sleeps (executor_test.go).
//
// # Ownership
//
// A Core is owned by the worker rank that holds it (launcher's worker),
// which calls it under its executor lock (worker.mu) and carries out the
// effects after or while holding it as each method says. The core owns
// the token count, the queue and the parked list; the tasks (T) and the
// wake-up handles of parked kernels (W) are the caller's, and the core
// only hands them back.
package executor

import "math/bits"

// Limits of the policies.
const (
	// MaxHelpDepth bounds how many batches a waiting kernel runs nested
	// inside its own Wait or Next (Help) before it parks instead.
	MaxHelpDepth = 8
	// MaxBatch is the most tasks taken from the queue at once.
	MaxBatch = 64
	// TurnIdleChecks is how many checks without an inline batch end the
	// inline check (CheckTurn).
	TurnIdleChecks = 10
)

// Core is the executor state of one worker rank: Slots tokens, the queue
// of tasks T waiting for one, and the kernels parked waiting for a token,
// known by their wake-up handles W.
type Core[T, W any] struct {
	slots    int
	free     int
	queue    []T
	qhead    int
	parked   []W
	stopping bool

	// load reporting: what the last report said
	reportedIdle  bool
	reportedQueue int // bits.Len of the queue length reported, 0 below 2

	// inline policy: the reader's batch (a turn) and the check that hands
	// the reading over from one that runs long
	turn      uint64 // the reader's current inline batch, 0: it reads
	lastTurn  uint64
	checked   uint64 // lastTurn at the previous check
	idleTurns int
	checking  bool
}

// New returns a core of slots tokens (at least one), all free, reported
// idle.
func New[T, W any](slots int) *Core[T, W] {
	slots = max(slots, 1)
	return &Core[T, W]{slots: slots, free: slots, reportedIdle: true}
}

// Effects is what a call asks of its caller.
type Effects[T, W any] struct {
	// Start: start a runner goroutine on each batch; each holds a token.
	Start [][]T
	// Inline: the batch the caller runs itself, its token taken (Dispatch
	// with keep).
	Inline []T
	// Wake: resume each parked kernel; each was given a token.
	Wake []W
}

// Slots is the number of tokens; Free those not held; Queued the tasks
// waiting.
func (c *Core[T, W]) Slots() int  { return c.slots }
func (c *Core[T, W]) Free() int   { return c.free }
func (c *Core[T, W]) Queued() int { return len(c.queue) - c.qhead }

// Stopping reports whether Stop was called.
func (c *Core[T, W]) Stopping() bool { return c.stopping }

// Push queues t. The caller calls Dispatch once it pushed a batch.
func (c *Core[T, W]) Push(t T) { c.queue = append(c.queue, t) }

// Dispatch hands free tokens to parked kernels first, then to batches of
// queued tasks, each for a new runner. With keep, the first such batch is
// returned as Inline instead, for the caller to run.
func (c *Core[T, W]) Dispatch(keep bool) (fx Effects[T, W]) {
	for c.free > 0 {
		if w, ok := c.unpark(); ok {
			c.free--
			fx.Wake = append(fx.Wake, w)
			continue
		}
		if c.Queued() == 0 || c.stopping {
			return fx
		}
		batch := c.pop(nil)
		c.free--
		if keep && fx.Inline == nil {
			fx.Inline = batch
			continue
		}
		fx.Start = append(fx.Start, batch)
	}
	return fx
}

// Continue is a runner's step after a batch, its token held: the token
// goes to the first parked kernel (wake, done), else the runner takes the
// next batch into buf, else (nothing queued, or stopping) it gives the
// token back (done).
func (c *Core[T, W]) Continue(buf []T) (next []T, wake W, woke, done bool) {
	if w, ok := c.unpark(); ok {
		return nil, w, true, true
	}
	if !c.stopping {
		next = c.pop(buf[:0])
	}
	if len(next) == 0 {
		c.free++
		return nil, wake, false, true
	}
	return next, wake, false, false
}

// Release gives the caller's token back: to the first parked kernel, or
// to queued work (Dispatch), or free.
func (c *Core[T, W]) Release() Effects[T, W] {
	if w, ok := c.unpark(); ok {
		return Effects[T, W]{Wake: []W{w}}
	}
	c.free++
	return c.Dispatch(false)
}

// Help returns a batch for a kernel about to wait at helping depth depth
// to run itself, its token kept, or nil when it should park (Park).
func (c *Core[T, W]) Help(depth int) []T {
	if depth >= MaxHelpDepth || c.Queued() == 0 || c.stopping {
		return nil
	}
	return c.pop(nil)
}

// Park gives the token of a kernel that waits back (its wait runs without
// one) and dispatches it.
func (c *Core[T, W]) Park() Effects[T, W] {
	c.free++
	return c.Dispatch(false)
}

// TakeToken takes a token for a kernel whose wait ended and reports
// whether it got one: one was free and nobody was parked first. If not,
// the kernel parks (WaitToken).
func (c *Core[T, W]) TakeToken() bool {
	if c.free > 0 && len(c.parked) == 0 {
		c.free--
		return true
	}
	return false
}

// WaitToken parks a kernel that did not get a token, known by w, behind
// those parked before it; Effects.Wake names it once it was given one.
func (c *Core[T, W]) WaitToken(w W) { c.parked = append(c.parked, w) }

// Stop starts the stop: no batch starts any more, and every parked kernel
// is returned to be woken (it needs a token to return, and gets one past
// the count).
func (c *Core[T, W]) Stop() []W {
	c.stopping = true
	p := c.parked
	c.parked = nil
	return p
}

// StealOldest removes up to n of the oldest queued tasks, to be handed
// elsewhere.
func (c *Core[T, W]) StealOldest(n int) []T {
	var out []T
	var zero T
	for len(out) < n && c.Queued() > 0 {
		out = append(out, c.queue[c.qhead])
		c.queue[c.qhead] = zero
		c.qhead++
	}
	c.compact()
	return out
}

// Load is a load report: idle tokens and queued tasks.
type Load struct {
	Idle   int
	Queued int
}

// Load reports whether to tell the scheduler above the rank's load, and
// what: when the queue grew or shrank past a power of two (one queued
// task is no surplus), or the rank became idle since it last said it was
// busy. Going busy alone is not reported: a rank that runs one task at a
// time sends no load report at all.
func (c *Core[T, W]) Load() (Load, bool) {
	idle := c.free > 0
	q := c.Queued()
	b := 0
	if q >= 2 {
		b = bits.Len(uint(q))
	}
	if b == c.reportedQueue && (!idle || c.reportedIdle) {
		return Load{}, false
	}
	c.reportedIdle, c.reportedQueue = idle, b
	return Load{Idle: c.free, Queued: q}, true
}

// ForgetLoad makes the next Load report whatever it finds (after a steal,
// which the scheduler above counted on).
func (c *Core[T, W]) ForgetLoad() { c.reportedQueue = -1 }

// pop takes a fair share of the queue into buf, newest first (depth first
// keeps nested fork-join's working set small): half the queue over the
// tokens, at least one, at most MaxBatch.
func (c *Core[T, W]) pop(buf []T) []T {
	n := c.Queued()
	if n == 0 {
		return buf
	}
	var zero T
	k := min(MaxBatch, max(1, n/(2*c.slots)))
	for range k {
		last := len(c.queue) - 1
		buf = append(buf, c.queue[last])
		c.queue[last] = zero
		c.queue = c.queue[:last]
	}
	c.compact()
	return buf
}

func (c *Core[T, W]) compact() {
	if c.Queued() == 0 {
		c.queue, c.qhead = c.queue[:0], 0
	}
}

func (c *Core[T, W]) unpark() (W, bool) {
	var zero W
	if len(c.parked) == 0 {
		return zero, false
	}
	w := c.parked[0]
	c.parked[0] = zero
	c.parked = c.parked[1:]
	return w, true
}

// The inline policy. The first batch of a submission that arrives alone
// runs in the goroutine that read it (Dispatch with keep), which saves
// starting one; frames go unread meanwhile, so the reading is handed to a
// new goroutine as soon as a kernel of that batch is about to wait
// (HandOff), or when the batch ran through a whole period of the caller's
// check timer (CheckTurn).

// BeginInline numbers the batch the reader is about to run itself (its
// turn) and reports whether the caller must start its check timer.
func (c *Core[T, W]) BeginInline() (turn uint64, startCheck bool) {
	c.lastTurn++
	c.turn = c.lastTurn
	if !c.checking {
		c.checking, c.checked, c.idleTurns = true, 0, 0
		startCheck = true
	}
	return c.turn, startCheck
}

// EndInline ends turn and reports whether its goroutine still reads (no
// other took the reading over meanwhile).
func (c *Core[T, W]) EndInline(turn uint64) (reading bool) {
	if c.turn != turn {
		return false
	}
	c.turn = 0
	return true
}

// HandOff reports whether the caller must start a new reader because a
// kernel of turn is about to wait (turn 0: not an inline batch).
func (c *Core[T, W]) HandOff(turn uint64) bool {
	if turn == 0 || c.turn != turn || c.stopping {
		return false
	}
	c.turn = 0
	return true
}

// CheckTurn is the caller's periodic check: it reports whether to start a
// new reader (the reader's batch ran since the previous check) and
// whether to check again (false after TurnIdleChecks checks without an
// inline batch, or once stopping).
func (c *Core[T, W]) CheckTurn() (handOff, again bool) {
	if c.turn != 0 && c.turn == c.checked {
		handOff = c.HandOff(c.turn)
	}
	if c.lastTurn == c.checked {
		c.idleTurns++
	} else {
		c.idleTurns = 0
	}
	c.checked = c.lastTurn
	if c.idleTurns >= TurnIdleChecks || c.stopping {
		c.checking = false
		return handOff, false
	}
	return handOff, true
}
