// Package sched is the scheduling core of a relay node (the server or a
// manager): a pure state machine with no goroutines, no clock and no I/O.
//
// The caller feeds it events (a batch of tasks arrived from a source, a
// result came back from a child, a child joined, reported its load or was
// lost, a source asked to cancel or went away) and drains the decisions it
// took as plain data with Ready: send this task to that child, this result
// to that source, cancel these tasks on that child, fail this task because
// its child was lost, ask that child to hand back queued tasks.
//
// Tasks are renumbered at every hop: a task that arrives from source S with
// S's id x gets a fresh local id l (a counter, never reused), goes down as
// l, and its result comes back as l and goes up to S as x. Every table is a
// map keyed by local id, so scheduling and routing cost O(1) per task plus
// a scan of the (few) children to pick where it goes.
//
// Capacity: a task that arrives while no child has a worker slot is held
// while capacity may still come: before the first child with slots joined
// (the tree is starting), or while the caller has slots reserved (Reserve:
// a worker rank this node's process started died and is being started
// again). Once capacity is gone for good, a task that cannot be placed is
// sent to a child without slots if there is one (that child knows which
// of its ranks were lost and fails it saying so), else it fails at once
// with Unplaceable; tasks held until then go the same way. Nothing waits
// for a slot that cannot come.
//
// Draining: Drain marks a child that is leaving. It gets no new task, its
// slots stop counting as capacity, and Holding says how many tasks it
// still has; once that is zero its leave is clean (RemoveChild then fails
// nothing). Tasks it hands back come in as submissions and go elsewhere.
//
// Loans: a body may lie in a buffer the caller wants back (a relay reuses
// the read buffer of a large task batch). The caller opens a loan for it
// (Lend), submits the tasks whose bodies lie in it (SubmitLent) and
// closes its own part (Return); the scheduler counts the bodies it keeps
// of each loan (retryable tasks until they finish, tasks held for a slot)
// and says Released once it keeps none. SendTask actions name the loan
// their body lies in, for the caller to count the writes still to come.
//
// Every event's actions come out in a deterministic order: tasks in the
// order of their local ids (the order they arrived in), whatever the
// order of Go's map iteration.
package sched

import "slices"

// Peer identifies a connection of the node: a source of tasks (a client, a
// parent, a child submitting surplus) or a child. The caller chooses the
// numbers; sched only compares them.
type Peer int

// ActionKind says what an Action asks the caller to do.
type ActionKind uint8

// Action kinds.
const (
	SendTask    ActionKind = iota // send task ID (Body) to child To
	SendResult                    // send result ID (Body) to source To
	SendCancel                    // ask child To to cancel task ID
	FailTask                      // tell source To that its task ID was lost with child Lost
	Steal                         // ask child To to hand back up to N queued tasks
	Unplaceable                   // tell source To that its task ID cannot run: no worker slot is left
	Cancelled                     // tell source To that its task ID was cancelled before it was placed
	Released                      // the scheduler refers to no body of loan Loan any more
)

// Loan names a buffer of the caller's that task bodies lie in; zero is
// none. The caller chooses the numbers, never reusing one while it is
// open.
type Loan uint64

// Action is one decision of the scheduler.
type Action struct {
	Kind ActionKind
	To   Peer
	ID   uint64
	Body []byte // SendTask, SendResult: the record body, passed through
	Lost Peer   // FailTask: the child that was lost
	N    int    // Steal: how many tasks
	Loan Loan   // SendTask: the loan Body lies in (0: none); Released: the loan
}

type child struct {
	peer   Peer
	slots  int // worker slots in the child's subtree
	out    int // tasks sent and not finished
	idle   int // idle slots, as last reported
	queued int // queued tasks, as last reported
	sent   int // tasks sent since the last load report
	// reported: the child sends load reports (a worker rank). A relay
	// child (a manager, a joined allocation) sends none: its spare
	// slots are its slots less the tasks it holds.
	reported bool
	stealing bool
	draining bool // leaving: no new task, its slots no longer count
}

type entry struct {
	src   Peer
	srcID uint64
	dst   Peer
	gone  bool // the source went away: drop the result
	// cancelling: the source cancelled it; the child's (cancelled) result
	// still goes up, so every hop above frees its entry.
	cancelling bool
	// kept: the entry counts in its loan, keeping the body (retryable, or
	// held for a slot).
	kept  bool
	tries uint8  // placements after the first, for retryable tasks (at most MaxRetries)
	size  uint32 // of the body as submitted, for Source and Total
	body  []byte // kept only for retryable tasks
	// loan: the loan the body lies in (nil: none). With it and the small
	// fields packed together an entry stays 64 bytes, as before loans:
	// one is allocated per task.
	loan *loan
}

// loan is an open loan: refs counts the caller's part (Lend to Return)
// and the entries that keep a body of it.
type loan struct {
	id   Loan
	refs int
}

// MaxRetries is how many times a retryable task is placed again after the
// rank running it was lost.
const MaxRetries = 3

// Sched is the state of one relay node. The zero value is not ready; use
// New.
type Sched struct {
	children []child
	tasks    map[uint64]*entry
	next     uint64
	actions  []Action
	// Held are tasks that arrived while no child had a slot; they are
	// placed as soon as one joins.
	held []heldTask
	// retries counts retryable tasks placed again after their child was
	// lost.
	retries uint64
	// started is set once a child with worker slots joined: before, tasks
	// wait for the tree to start.
	started bool
	// reserved are worker slots expected back (Reserve).
	reserved int
	// sources and total count the tasks in flight and their body bytes,
	// per source and in all (Source, Total); a source with none has no
	// key.
	sources map[Peer]*Load
	total   Load
	// loans are the open loans; lent is the one Lend opened last, which
	// SubmitLent finds without a lookup.
	loans map[Loan]*loan
	lent  *loan
}

// Load is what tasks in flight through this node cost: their number and
// the bytes of their bodies as submitted. A relay bounds it per client and
// in all (admission control) with Source and Total.
type Load struct {
	Tasks int
	Bytes int64
}

type heldTask struct {
	id   uint64
	body []byte
}

// New returns an empty scheduler.
func New() *Sched {
	return &Sched{tasks: make(map[uint64]*entry), sources: make(map[Peer]*Load), loans: make(map[Loan]*loan), next: 1}
}

// Lend opens loan l (not zero) for the bodies submitted with SubmitLent
// until Return(l).
func (s *Sched) Lend(l Loan) {
	lc := s.loans[l]
	if lc == nil {
		lc = &loan{id: l}
		s.loans[l] = lc
	}
	lc.refs++
	s.lent = lc
}

// Return closes the caller's part of loan l: Released follows, now or
// once the last body kept of it is dropped.
func (s *Sched) Return(l Loan) {
	if lc := s.loans[l]; lc != nil {
		s.unref(lc)
	}
}

// Loans returns the number of open loans.
func (s *Sched) Loans() int { return len(s.loans) }

func (s *Sched) unref(lc *loan) {
	if lc.refs--; lc.refs > 0 {
		return
	}
	delete(s.loans, lc.id)
	if s.lent == lc {
		s.lent = nil
	}
	s.actions = append(s.actions, Action{Kind: Released, Loan: lc.id})
}

// keep counts e in its body's loan, if it has one; drop ends that. A task
// placed at once and not retryable is never counted: on the tiny
// workload's batches (lent: they pass 64 KiB) a count per task would be
// work for nothing.
func (s *Sched) keep(e *entry) {
	if e.loan != nil && !e.kept {
		e.kept = true
		e.loan.refs++
	}
}

func (s *Sched) drop(e *entry) {
	if e.kept {
		e.kept = false
		s.unref(e.loan)
	}
}

// loanID is the Loan an action about e names.
func (e *entry) loanID() Loan {
	if e.loan == nil {
		return 0
	}
	return e.loan.id
}

// Source returns the tasks in flight that src submitted and their bytes.
func (s *Sched) Source(src Peer) Load {
	if l := s.sources[src]; l != nil {
		return *l
	}
	return Load{}
}

// Total returns the tasks in flight through this node and their bytes.
func (s *Sched) Total() Load { return s.total }

// forget deletes the entry of task id, and counts it out of its source's
// and the total load.
func (s *Sched) forget(id uint64, e *entry) {
	delete(s.tasks, id)
	s.drop(e)
	s.total.Tasks--
	s.total.Bytes -= int64(e.size)
	if l := s.sources[e.src]; l != nil {
		l.Tasks--
		l.Bytes -= int64(e.size)
		if l.Tasks == 0 {
			delete(s.sources, e.src)
		}
	}
}

// Ready returns the actions taken since the last call. The slice is reused
// by the next event; the caller must act on it before feeding one.
func (s *Sched) Ready() []Action {
	a := s.actions
	s.actions = s.actions[:0]
	return a
}

// Pending returns the number of tasks in flight through this node.
func (s *Sched) Pending() int { return len(s.tasks) }

// Held returns the number of tasks waiting for a child with a free slot.
func (s *Sched) Held() int { return len(s.held) }

// Retries returns how many times a retryable task was placed again after
// the child running it was lost.
func (s *Sched) Retries() uint64 { return s.retries }

// Reserve sets the worker slots expected back below this node: ranks the
// node's own process started again after they died. While some are
// reserved, tasks that find no slot are held for them; setting it back to
// zero with no slot left releases the held tasks (see the package doc).
func (s *Sched) Reserve(slots int) {
	s.reserved = max(slots, 0)
	s.settle()
}

// Reserved returns the worker slots expected back (Reserve).
func (s *Sched) Reserved() int { return s.reserved }

// canWait reports whether a task that finds no slot may wait for one.
func (s *Sched) canWait() bool { return !s.started || s.reserved > 0 }

// settle places or fails the held tasks once no slot can come for them.
func (s *Sched) settle() {
	if len(s.held) == 0 || s.canWait() || s.pick() != nil {
		return
	}
	held := s.held
	s.held = nil
	for _, h := range held {
		s.place(h.id, h.body)
	}
}

// Slots returns the worker slots below this node.
func (s *Sched) Slots() int {
	n := 0
	for i := range s.children {
		if !s.children[i].draining {
			n += s.children[i].slots
		}
	}
	return n
}

// Drain marks child p as leaving: from now on it gets no task, and its
// slots no longer count as capacity (tasks that find no other slot go as
// they would were it gone). It reports whether p is a known child.
func (s *Sched) Drain(p Peer) bool {
	c := s.find(p)
	if c == nil {
		return false
	}
	c.draining, c.idle, c.sent = true, 0, 0
	s.settle()
	return true
}

// Draining reports whether child p was marked leaving (Drain).
func (s *Sched) Draining(p Peer) bool {
	c := s.find(p)
	return c != nil && c.draining
}

// Holding returns the number of tasks child p holds: sent to it and not
// finished. A draining child whose Holding is zero may leave cleanly.
func (s *Sched) Holding(p Peer) int {
	if c := s.find(p); c != nil {
		return c.out
	}
	return 0
}

func (s *Sched) find(p Peer) *child {
	for i := range s.children {
		if s.children[i].peer == p {
			return &s.children[i]
		}
	}
	return nil
}

// AddChild records a child with slots worker slots below it, or updates
// the slot count of a known child.
func (s *Sched) AddChild(p Peer, slots int) {
	if c := s.find(p); c != nil {
		c.slots = slots
		if c.draining {
			return
		}
	} else {
		s.children = append(s.children, child{peer: p, slots: slots, idle: slots})
	}
	// New capacity takes work queued on the others (a joined allocation
	// takes its share of a backlog already placed).
	defer s.balance()
	if slots > 0 {
		s.started = true
	}
	if slots > 0 && len(s.held) > 0 {
		held := s.held
		s.held = nil
		for _, h := range held {
			s.place(h.id, h.body)
		}
	}
	s.settle()
}

// pick returns the child a new task should go to: one with reported idle
// slots not yet filled first, else the one with the fewest tasks per slot.
func (s *Sched) pick() *child {
	var best *child
	for i := range s.children {
		c := &s.children[i]
		if c.slots == 0 || c.draining {
			continue
		}
		if c.idle > c.sent {
			return c
		}
		if best == nil || c.out*best.slots < best.out*c.slots {
			best = c
		}
	}
	return best
}

// Submit schedules one task that source src numbered srcID. A retryable
// task (its kernel is idempotent) is placed again, up to MaxRetries times,
// when the child running it is lost; its body is kept until it finishes.
func (s *Sched) Submit(src Peer, srcID uint64, body []byte, retryable bool) {
	s.SubmitLent(src, srcID, body, retryable, 0)
}

// SubmitLent is Submit of a body that lies in loan loan, open (Lend): the
// scheduler counts it in that loan while it keeps the body.
func (s *Sched) SubmitLent(src Peer, srcID uint64, body []byte, retryable bool, loan Loan) {
	id := s.next
	s.next++
	e := &entry{src: src, srcID: srcID, dst: -1, size: uint32(min(len(body), 1<<32-1))}
	if retryable {
		e.body = body
	}
	if loan != 0 {
		e.loan = s.lent
		if e.loan == nil || e.loan.id != loan {
			e.loan = s.loans[loan]
		}
		if retryable {
			s.keep(e) // until it finishes
		}
	}
	s.tasks[id] = e
	l := s.sources[src]
	if l == nil {
		l = new(Load)
		s.sources[src] = l
	}
	l.Tasks++
	l.Bytes += int64(e.size)
	s.total.Tasks++
	s.total.Bytes += int64(e.size)
	s.place(id, body)
}

func (s *Sched) place(id uint64, body []byte) {
	e := s.tasks[id]
	c := s.pick()
	if c == nil && s.canWait() {
		s.held = append(s.held, heldTask{id, body})
		s.keep(e) // until placed
		return
	}
	if c == nil {
		// No slot anywhere and none to come: the first child without
		// slots (not leaving) gets it and fails it naming its lost ranks.
		for i := range s.children {
			if !s.children[i].draining {
				c = &s.children[i]
				break
			}
		}
	}
	if c == nil {
		s.forget(id, e)
		s.actions = append(s.actions, Action{Kind: Unplaceable, To: e.src, ID: e.srcID})
		return
	}
	c.out++
	c.sent++
	e.dst = c.peer
	s.actions = append(s.actions, Action{Kind: SendTask, To: c.peer, ID: id, Body: body, Loan: e.loanID()})
	if e.body == nil {
		s.drop(e) // placed, and not kept for a retry
	}
}

// Result routes the result of local task id, which came back from child
// from, to the task's source.
func (s *Sched) Result(from Peer, id uint64, body []byte) {
	e, ok := s.tasks[id]
	if !ok || e.dst != from {
		return // unknown, or late after the task was failed
	}
	s.forget(id, e)
	e.body = nil // forget released its loan
	if c := s.find(from); c != nil {
		c.out--
		if !c.reported && c.out < c.slots && !c.draining {
			s.balance() // a relay child has room: share others' queues with it
		}
	}
	if !e.gone {
		s.actions = append(s.actions, Action{Kind: SendResult, To: e.src, ID: e.srcID, Body: body})
	}
}

// Route returns where a log record of local task id goes: its source and
// the source's id for it.
func (s *Sched) Route(id uint64) (Peer, uint64, bool) {
	e, ok := s.tasks[id]
	if !ok || e.gone {
		return 0, 0, false
	}
	return e.src, e.srcID, true
}

// Cancel cancels the tasks that source src numbered ids, and their
// descendants, wherever they run. A placed task's entry stays until the
// child's (cancelled) result comes back, which goes on to src as any
// result does, so that src, when it is a relay, frees its own entry; a
// held task is answered at once (Cancelled). Cancelling costs a scan of
// the tasks in flight; it is rare.
func (s *Sched) Cancel(src Peer, ids []uint64) {
	want := make(map[uint64]struct{}, len(ids))
	for _, id := range ids {
		want[id] = struct{}{}
	}
	s.cancelWhere(false, func(e *entry) bool {
		_, ok := want[e.srcID]
		return e.src == src && ok
	})
}

// cancelWhere cancels the matching tasks; drop says their source went
// away (their results go nowhere).
func (s *Sched) cancelWhere(drop bool, match func(*entry) bool) {
	var ids []uint64
	for id, e := range s.tasks {
		if !e.gone && (drop || !e.cancelling) && match(e) {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	for _, id := range ids {
		e := s.tasks[id]
		wasCancelling := e.cancelling
		e.gone = e.gone || drop
		e.cancelling = true
		if e.dst < 0 {
			s.unhold(id)
			s.forget(id, e)
			if !drop {
				s.actions = append(s.actions, Action{Kind: Cancelled, To: e.src, ID: e.srcID})
			}
			continue
		}
		// The entry stays until the child's cancelled result comes back,
		// so the child's slot accounting stays right.
		if !wasCancelling {
			s.actions = append(s.actions, Action{Kind: SendCancel, To: e.dst, ID: id})
		}
	}
}

func (s *Sched) unhold(id uint64) {
	for i, h := range s.held {
		if h.id == id {
			s.held = append(s.held[:i], s.held[i+1:]...)
			return
		}
	}
}

// DropSource forgets a source that went away: its tasks are cancelled
// below and their results dropped.
func (s *Sched) DropSource(src Peer) {
	s.cancelWhere(true, func(e *entry) bool { return e.src == src })
}

// RemoveChild forgets a lost child: every task it held is failed towards
// its source, and tasks it had submitted are cancelled.
func (s *Sched) RemoveChild(p Peer) {
	for i := range s.children {
		if s.children[i].peer == p {
			s.children = append(s.children[:i], s.children[i+1:]...)
			break
		}
	}
	var held []uint64
	for id, e := range s.tasks {
		if e.dst == p {
			held = append(held, id)
		}
	}
	// In id order, so the outcome does not depend on map iteration order.
	slices.Sort(held)
	var retry []uint64
	for _, id := range held {
		e := s.tasks[id]
		if !e.gone && e.body != nil && e.tries < MaxRetries && e.src != p {
			retry = append(retry, id)
			continue
		}
		s.forget(id, e)
		if !e.gone {
			s.actions = append(s.actions, Action{Kind: FailTask, To: e.src, ID: e.srcID, Lost: p})
		}
	}
	s.DropSource(p)
	for _, id := range retry {
		e := s.tasks[id]
		e.tries++
		s.retries++
		e.dst = -1
		s.place(id, e.body)
	}
	s.settle()
}

// Load records a load report of child p: idle slots and queued tasks. When
// one child has idle slots and another queued work, the busy one is asked
// to hand tasks back (work sharing).
func (s *Sched) Load(p Peer, idle, queued int) {
	c := s.find(p)
	if c == nil {
		return
	}
	c.idle, c.queued, c.sent, c.stealing, c.reported = idle, queued, 0, false, true
	if c.draining {
		c.idle = 0
	}
	s.balance()
}

func (s *Sched) balance() {
	spare := 0
	for i := range s.children {
		c := &s.children[i]
		switch {
		case c.draining:
		case c.reported && c.idle > c.sent && c.queued == 0:
			spare += c.idle - c.sent
		case !c.reported && c.out < c.slots:
			spare += c.slots - c.out
		}
	}
	if spare == 0 {
		return
	}
	for i := range s.children {
		c := &s.children[i]
		if c.queued > 1 && !c.stealing && spare > 0 {
			n := min(c.queued/2, spare*4)
			if n == 0 {
				continue
			}
			c.stealing = true
			spare -= min(spare, n)
			s.actions = append(s.actions, Action{Kind: Steal, To: c.peer, N: n})
		}
	}
}
