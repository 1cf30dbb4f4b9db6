package relay

import (
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/qlaunch/qlaunch/launcher/sched"
	"github.com/qlaunch/qlaunch/launcher/wire"
)

// ctrl is a control frame queued for a peer.
type ctrl struct {
	kind wire.Kind
	body []byte
}

// large is a task or result record sent by reference (LargeRecord).
type large struct {
	kind wire.Kind
	id   uint64
	body []byte
	loan Loan // the shell's buffer body lies in (0: none)
}

// peer is the core's state of one connection.
type peer struct {
	id    Peer
	kind  PeerKind
	hello wire.Hello
	name  string
	role  string // hello's role without the link end
	// supervised: the relay's Supervisor runs its process.
	supervised bool
	ranks      int // ranks of its subtree (a child's Join)
	slots      int // worker slots of its subtree
	lastSeen   int64
	// Frames queued for it by the current event.
	ctrl                 []ctrl
	logs, results, tasks []byte
	large                []large
	cancels              []uint64
	dirty                bool
	// lostReason: why the relay dropped it (silence, not reading), for
	// the errors of its tasks and status replies. cause: why it was lost,
	// while its tasks are failed.
	lostReason string
	cause      string
	// removed: being removed; known only while its tasks are failed.
	removed bool
	// dying: a supervised child whose connection broke; the relay waits
	// for its process's exit status (exit) before it reports the loss.
	dying    bool
	dyingErr error
	exit     string
	// draining: told to drain; its leave is clean once it holds no task.
	draining bool
	// alloc: the allocation (job id) the child said it runs in (its join,
	// its own row of a status reply), kept for its row once it has left.
	alloc string
}

type statusReq struct {
	src     Peer // 0: an observer's (token)
	srcID   uint64
	token   uint64
	waiting map[Peer]bool
	ranks   []wire.RankStatus
	silent  map[Peer]time.Duration
}

// Counters are the relay's counts of what went to clients, for a Monitor.
type Counters struct {
	Submitted, Completed, Failed, Cancelled uint64
}

// Core is the protocol state of one relay rank. Use New.
type Core struct {
	cfg     Config
	log     *slog.Logger
	sched   *sched.Sched
	peers   map[Peer]*peer
	order   []Peer // known peers, ascending
	parent  *peer
	actions []Action
	dirty   []*peer
	now     int64
	// released are the loans the scheduler let go of in this step: they
	// come out after its Sends.
	released []Loan

	reserved   map[int]int   // worker slots of supervised ranks being started again, by rank
	restarts   map[int]int   // times the Supervisor started each supervised rank again, by rank
	starting   map[int]int64 // supervised ranks started and not yet connected: when they started
	status     map[uint64]*statusReq
	nextStatus uint64
	done       uint64
	ready      bool
	stopping   bool
	draining   bool // this manager was drained: it leaves once its children left
	result     error
	lastJoin   wire.Join
	lostRanks  []wire.RankStatus
	counts     Counters
}

// New returns the core of a relay rank with no peer.
func New(cfg Config) *Core {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Core{
		cfg: cfg, log: cfg.Logger, sched: sched.New(), peers: make(map[Peer]*peer),
		reserved: make(map[int]int), restarts: make(map[int]int), starting: make(map[int]int64), status: make(map[uint64]*statusReq),
	}
}

// Step handles one event and returns the actions it produced (see the
// package doc for their order). The slice is reused by the next Step.
func (c *Core) Step(ev Event) []Action {
	clear(c.actions) // drop the last step's references to frame bodies
	c.actions = c.actions[:0]
	if ev.Now > c.now {
		c.now = ev.Now
	}
	switch ev.Type {
	case PeerUp:
		c.peerUp(ev)
	case PeerDown:
		if p := c.peers[ev.Peer]; p != nil {
			c.removePeer(p, ev.Err)
		}
	case Frame:
		c.frame(ev)
	case Tick:
		c.tick(ev)
	case Timeout:
		c.timeout(ev.Peer, ev.Timer)
	case RankExited:
		c.rankExited(ev.Rank, ev.Slots, ev.Reason, ev.Restart)
	case RankStarted:
		if !c.connected(ev.Rank) {
			c.starting[ev.Rank] = ev.Now
		}
	case Stalled:
		if p := c.peers[ev.Peer]; p != nil {
			c.dropStalled(p, ev.Reason)
		}
	case SelfDrain:
		c.selfDrain()
	case DrainRanks:
		c.onDrain(ev.Ranks)
	case Stop:
		c.fail(ev.Err)
	case StatusAsk:
		c.startStatus(&statusReq{token: ev.Token})
	}
	c.apply()
	c.flush(c.burst(ev))
	for _, l := range c.released {
		c.do(Action{Type: Released, Loan: l})
	}
	c.released = c.released[:0]
	return c.actions
}

// burstMax bounds the result bytes held for a client during a burst.
const burstMax = wire.MaxBatch / 4

// burst reports whether ev is a small frame from a child whose next frame
// the shell already holds (Event.More): the results it produced for
// clients are then held for the next step, so that a burst of small
// result frames from a worker reaches a client as one frame, not as one
// frame (and one write) each. They never wait for a read: the next frame
// is already in, and any step without More sends them. Frames from
// clients and large frames are never held.
func (c *Core) burst(ev Event) bool {
	if ev.Type != Frame || !ev.More || len(ev.Body) >= LargeRecord {
		return false
	}
	p := c.peers[ev.Peer]
	return p != nil && p.kind == Child
}

// holdsOnlyResults reports whether all p has queued is a result batch
// smaller than burstMax (what a burst may hold back).
func (p *peer) holdsOnlyResults() bool {
	return len(p.ctrl) == 0 && len(p.logs) == 0 && len(p.tasks) == 0 && len(p.large) == 0 &&
		len(p.cancels) == 0 && len(p.results) < burstMax
}

// Start reports the relay's readiness at its start: a server that expects
// no rank is ready at once.
func (c *Core) Start(now int64) []Action {
	c.actions = c.actions[:0]
	c.now = now
	c.checkReady()
	c.flush(false)
	return c.actions
}

// Result is why the relay stops: nil while it runs.
func (c *Core) Result() error { return c.result }

// Stopping reports whether the relay is stopping.
func (c *Core) Stopping() bool { return c.stopping }

// Idle reports whether the relay is stopping and no child is left.
func (c *Core) Idle() bool { return c.stopping && c.children() == 0 }

// Children returns the number of children connected.
func (c *Core) Children() int { return c.children() }

// Clients returns the number of clients connected.
func (c *Core) Clients() int {
	n := 0
	for _, p := range c.peers {
		if p.kind == Client {
			n++
		}
	}
	return n
}

// Subtree returns the ranks and worker slots of the relay's subtree.
func (c *Core) Subtree() wire.Join { return c.subtree() }

// Counters returns what went to clients so far.
func (c *Core) Counters() Counters { return c.counts }

// Sched returns the task table, for reading its counts.
func (c *Core) Sched() *sched.Sched { return c.sched }

// Known reports whether the core knows peer id.
func (c *Core) Known(id Peer) bool { return c.peers[id] != nil }

func (c *Core) children() int {
	n := 0
	for _, p := range c.peers {
		if p.kind == Child {
			n++
		}
	}
	return n
}

func (c *Core) do(a Action) { c.actions = append(c.actions, a) }

func (c *Core) mark(p *peer) {
	if !p.dirty {
		p.dirty = true
		c.dirty = append(c.dirty, p)
	}
}

func (c *Core) sendCtrl(p *peer, k wire.Kind, body []byte) {
	p.ctrl = append(p.ctrl, ctrl{k, body})
	c.mark(p)
}

// flush turns the frames queued for each peer into Send actions; with
// hold (a burst), a client's results stay queued for the next step.
func (c *Core) flush(hold bool) {
	if len(c.dirty) == 0 {
		return
	}
	if len(c.dirty) > 1 {
		slices.SortFunc(c.dirty, func(a, b *peer) int { return int(a.id - b.id) })
	}
	held := 0 // peers whose results wait, kept at the front of c.dirty
	for _, p := range c.dirty {
		if c.peers[p.id] != p {
			// Dropped by this event: what was queued for it goes nowhere.
			p.dirty = false
			p.ctrl, p.logs, p.results, p.tasks, p.large, p.cancels = nil, nil, nil, nil, nil, nil
			continue
		}
		if hold && p.kind == Client && p.holdsOnlyResults() {
			c.dirty[held] = p
			held++
			continue
		}
		p.dirty = false
		for _, f := range p.ctrl {
			c.do(Action{Type: Send, Peer: p.id, Frame: f.kind, Body: f.body})
		}
		p.ctrl = nil
		if len(p.logs) > 0 {
			c.do(Action{Type: Send, Peer: p.id, Frame: wire.KindLog, Body: p.logs})
			p.logs = nil
		}
		if len(p.results) > 0 {
			c.do(Action{Type: Send, Peer: p.id, Frame: wire.KindResult, Body: p.results})
			p.results = nil
		}
		if len(p.tasks) > 0 {
			c.do(Action{Type: Send, Peer: p.id, Frame: wire.KindSubmit, Body: p.tasks})
			p.tasks = nil
		}
		for i, r := range p.large {
			head := wire.AppendRecordHead(nil, r.id, len(r.body))
			c.do(Action{Type: Send, Peer: p.id, Frame: r.kind, Head: head, Body: r.body, Loan: r.loan})
			p.large[i] = large{}
		}
		p.large = p.large[:0]
		if len(p.cancels) > 0 {
			wire.SplitCancel(p.cancels, func(b []byte) {
				c.do(Action{Type: Send, Peer: p.id, Frame: wire.KindCancel, Body: b})
			})
			p.cancels = nil
		}
	}
	clear(c.dirty[held:])
	c.dirty = c.dirty[:held]
}

func (c *Core) peerUp(ev Event) {
	refuse := func(why string) { c.do(Action{Type: Drop, Peer: ev.Peer, Reason: why}) }
	switch {
	case c.peers[ev.Peer] != nil:
		refuse("peer id in use")
		return
	case c.stopping:
		refuse("stopping")
		return
	case ev.Kind == Parent && (c.parent != nil || c.cfg.Server):
		c.log.Warn("refused second parent", "peer", ev.Name)
		refuse("second parent")
		return
	case ev.Kind == Client && !c.cfg.Server:
		refuse("a manager takes no client")
		return
	}
	role, _, _ := strings.Cut(ev.Hello.Role, ":")
	p := &peer{id: ev.Peer, kind: ev.Kind, hello: ev.Hello, name: ev.Name, role: role,
		supervised: ev.Supervised, lastSeen: ev.Now}
	if p.name == "" {
		p.name = fmt.Sprintf("%s rank %d on %s", ev.Hello.Role, ev.Hello.Rank, ev.Hello.Host)
	}
	c.peers[p.id] = p
	if p.kind == Child {
		delete(c.starting, p.hello.Rank) // connected: its heartbeats judge it now
	}
	i, _ := slices.BinarySearch(c.order, p.id)
	c.order = slices.Insert(c.order, i, p.id)
	c.log.Debug("connected", "peer", p.name)
	if p.kind == Parent {
		c.parent = p
		c.lastJoin = wire.Join{}
		c.reportJoin()
	}
}

// forget removes p from the known peers.
func (c *Core) forget(p *peer) {
	delete(c.peers, p.id)
	if i, ok := slices.BinarySearch(c.order, p.id); ok {
		c.order = slices.Delete(c.order, i, i+1)
	}
	c.do(Action{Type: Drop, Peer: p.id})
}

// fail stops the relay with err as its result (the first one wins).
func (c *Core) fail(err error) {
	if err == nil {
		return
	}
	if c.result == nil {
		c.result = err
	}
	c.beginStop(err)
}

// beginStop sends shutdown down the tree and drops clients and the parent
// (a drained manager's parent stays, for its last results: the shell
// closes it once they are written).
func (c *Core) beginStop(cause error) {
	if c.stopping {
		return
	}
	c.stopping = true
	c.log.Debug("stopping", "cause", cause)
	c.do(Action{Type: Stopping, Err: cause})
	for _, id := range slices.Clone(c.order) {
		if p := c.peers[id]; p != nil && p.dying {
			c.removePeer(p, p.dyingErr)
		}
	}
	for _, id := range c.order {
		p := c.peers[id]
		switch p.kind {
		case Child:
			c.sendCtrl(p, wire.KindShutdown, wire.AppendText(nil, cause.Error()))
		case Parent:
			if !errors.Is(cause, ErrDrained) {
				c.do(Action{Type: Close, Peer: p.id, Reason: "stopping"})
			}
		default:
			c.do(Action{Type: Close, Peer: p.id, Reason: "stopping"})
		}
	}
}

// tick checks every peer's liveness and sends heartbeats.
func (c *Core) tick(ev Event) {
	clocks := make(map[Peer]Clock, len(ev.Clocks))
	for _, k := range ev.Clocks {
		if p := c.peers[k.Peer]; p != nil {
			p.lastSeen = max(p.lastSeen, k.LastSeen)
			clocks[k.Peer] = k
		}
	}
	now := ev.Now
	for _, id := range slices.Clone(c.order) {
		p := c.peers[id]
		if p == nil {
			continue
		}
		k := clocks[id]
		if k.Blocked != 0 && now-k.Blocked > int64(c.cfg.OutboxStall) {
			c.dropStalled(p, fmt.Sprintf("not reading: one write to it blocked for %v", time.Duration(now-k.Blocked).Round(time.Millisecond)))
			continue
		}
		if k.Writing || p.dying {
			continue // its frames wait behind our write, not its silence
		}
		if now-p.lastSeen > int64(c.cfg.HeartbeatTimeout) {
			if p.lostReason == "" {
				c.log.Warn("peer silent, dropping it", "peer", p.name)
				p.lostReason = fmt.Sprintf("silent for %v (no heartbeat)", time.Duration(now-p.lastSeen).Round(time.Millisecond))
				c.do(Action{Type: Close, Peer: p.id, Reason: p.lostReason})
			}
			continue
		}
		c.sendCtrl(p, wire.KindHeartbeat, nil)
	}
	c.killUnjoined(now)
}

// connected reports whether a child of worker rank rank is connected
// and not dying.
func (c *Core) connected(rank int) bool {
	for _, p := range c.peers {
		if p.kind == Child && p.hello.Rank == rank && !p.dying {
			return true
		}
	}
	return false
}

// minJoinTimeout is the least default JoinTimeout: a process start on a
// loaded node takes far longer than a heartbeat timeout set short.
const minJoinTimeout = 5 * time.Second

// killUnjoined has every supervised rank started (first, or again) that
// has not connected within JoinTimeout killed: one frozen (or stuck)
// before its hello would otherwise hold the tree's readiness, or a
// replacement's reservation, and the tasks waiting on it, for ever. Its
// death then takes the usual path: RankExited, a restart while any are
// left.
func (c *Core) killUnjoined(now int64) {
	if len(c.starting) == 0 {
		return
	}
	limit := c.cfg.JoinTimeout
	if limit <= 0 {
		limit = max(c.cfg.HeartbeatTimeout, minJoinTimeout)
	}
	for _, rank := range slices.Sorted(maps.Keys(c.starting)) {
		if waited := time.Duration(now - c.starting[rank]); waited > limit {
			delete(c.starting, rank)
			c.log.Warn("worker rank started but did not connect", "rank", rank, "waited", waited.Round(time.Millisecond))
			c.do(Action{Type: Kill, Rank: rank, Reason: fmt.Sprintf("started, but not connected within %v", limit)})
		}
	}
}

// dropStalled drops peer p, which does not read what it is sent: its
// connection is closed (a write blocked on it fails), what is queued for
// it is discarded, and its PeerDown then removes it as any lost peer.
func (c *Core) dropStalled(p *peer, why string) {
	if p.lostReason != "" {
		return
	}
	c.log.Warn("peer does not read, dropping it", "peer", p.name, "why", why)
	p.lostReason = why
	c.do(Action{Type: Close, Peer: p.id, Reason: why})
}

// frame handles one frame from peer ev.Peer; a frame that does not decode
// or that its sender may not send drops the sender.
func (c *Core) frame(ev Event) {
	if ev.Loan != 0 {
		// Released, in this step or once the scheduler keeps no task
		// body of it.
		c.sched.Lend(ev.Loan)
		defer c.sched.Return(ev.Loan)
	}
	p := c.peers[ev.Peer]
	if p == nil {
		return
	}
	p.lastSeen = max(p.lastSeen, ev.Now)
	if err := c.message(p, ev.Frame, ev.Body, ev.Loan); err != nil {
		if errors.Is(err, ErrShutdown) {
			c.fail(ErrShutdown)
			return
		}
		c.log.Warn("bad message, dropping connection", "peer", p.name, "kind", ev.Frame, "err", err)
		c.removePeer(p, err)
	}
}

func (c *Core) message(p *peer, k wire.Kind, b []byte, loan Loan) error {
	switch k {
	case wire.KindHeartbeat:
		return nil
	case wire.KindSubmit:
		if c.stopping {
			return nil
		}
		recs := wire.NewRecords(b)
		for {
			id, body, ok := recs.Next()
			if !ok {
				break
			}
			if p.kind == Client {
				c.counts.Submitted++
				if c.refuseTask(p, id, body) {
					continue
				}
			}
			c.sched.SubmitLent(p.id, id, body, c.cfg.Retryable[string(wire.TaskKernel(body))], loan)
		}
		return recs.Err()
	case wire.KindCancel:
		ids, err := wire.DecodeCancel(b, nil)
		if err != nil {
			return err
		}
		c.sched.Cancel(p.id, ids)
		return nil
	case wire.KindStatus:
		return c.onStatus(p, b)
	case wire.KindDrain:
		if p.kind == Child {
			// The child drains itself (a signal under its scheduler).
			c.drainChild(p)
			c.reportJoin()
			return nil
		}
		var d wire.Drain
		if err := wire.DecodeDrain(b, &d); err != nil {
			return err
		}
		c.onDrain(d.Ranks)
		return nil
	}
	if p.kind == Child {
		switch k {
		case wire.KindResult:
			recs := wire.NewRecords(b)
			for {
				id, body, ok := recs.Next()
				if !ok {
					break
				}
				c.done++
				c.sched.Result(p.id, id, body)
			}
			return recs.Err()
		case wire.KindLog:
			return c.onLog(b)
		case wire.KindLoad:
			var l wire.Load
			if err := wire.DecodeLoad(b, &l); err != nil {
				return err
			}
			c.sched.Load(p.id, l.Idle, l.Queued)
			return nil
		case wire.KindJoin:
			var j wire.Join
			if err := wire.DecodeJoin(b, &j); err != nil {
				return err
			}
			p.ranks, p.slots = j.Ranks, j.Slots
			if j.Alloc != "" {
				p.alloc = j.Alloc
			}
			c.sched.AddChild(p.id, j.Slots)
			if _, ok := c.reserved[p.hello.Rank]; ok && j.Slots > 0 {
				// The replacement of a supervised rank joined.
				c.log.Info("worker rank back", "peer", p.name, "slots", j.Slots)
				delete(c.reserved, p.hello.Rank)
				c.updateReserve()
			}
			c.reportJoin()
			return nil
		}
	}
	if p.kind == Parent {
		switch k {
		case wire.KindShutdown:
			return ErrShutdown
		case wire.KindLoad, wire.KindResult, wire.KindLog:
			return nil
		}
	}
	return fmt.Errorf("unexpected %v message from %s", k, p.hello.Role)
}

// refuseTask checks the task record id | body from client p and reports
// whether it was refused, in which case p gets an error result for it: a
// record a worker rank could not decode, or that names no valid kernel,
// fails at once and the rest of the batch goes on.
func (c *Core) refuseTask(p *peer, id uint64, body []byte) bool {
	err := wire.CheckTask(body)
	if err == nil {
		return false
	}
	c.log.Warn("malformed task record refused", "peer", p.name, "id", id, "err", err)
	r := wire.Result{
		Status: wire.ResultError, Kernel: RecordKernel(body), Rank: c.cfg.Rank, Host: c.cfg.Host,
		Message: fmt.Sprintf("task record refused by the server: %v (the client sent a body the runtime cannot decode: a client bug or a version mismatch)", err),
	}
	p.results = wire.AppendRecord(p.results, id, wire.AppendResult(nil, &r))
	c.counts.Failed++
	c.mark(p)
	return true
}

// RecordKernel returns the kernel name of a task body that may be
// malformed, made printable and short enough for an error message ("?"
// when there is none).
func RecordKernel(body []byte) string {
	k := wire.TaskKernel(body)
	if len(k) > 64 {
		k = k[:64]
	}
	if len(k) == 0 {
		return "?"
	}
	return strings.ToValidUTF8(string(k), "?")
}

func (c *Core) onLog(b []byte) error {
	var rec wire.LogRecord
	for len(b) > 0 {
		rest, err := wire.DecodeLog(b, &rec)
		if err != nil {
			return err
		}
		b = rest
		src, id, ok := c.sched.Route(rec.Task)
		if !ok {
			continue
		}
		if sp := c.peers[src]; sp != nil {
			rec.Task = id
			sp.logs = wire.AppendLog(sp.logs, &rec)
			c.mark(sp)
		}
	}
	return nil
}

// countResult counts a result going to a client.
func (c *Core) countResult(body []byte) {
	switch {
	case len(body) > 0 && body[0] == wire.ResultOK:
		c.counts.Completed++
	case len(body) > 0 && body[0] == wire.ResultCancelled:
		c.counts.Cancelled++
	default:
		c.counts.Failed++
	}
}

// apply turns the scheduler's decisions into frames.
func (c *Core) apply() {
	for _, a := range c.sched.Ready() {
		if a.Kind == sched.Released {
			c.released = append(c.released, a.Loan)
			continue
		}
		p := c.peers[a.To]
		if p == nil {
			continue
		}
		switch a.Kind {
		case sched.SendTask:
			if len(a.Body) >= LargeRecord {
				p.large = append(p.large, large{wire.KindSubmit, a.ID, a.Body, a.Loan})
			} else {
				p.tasks = wire.AppendRecord(p.tasks, a.ID, a.Body)
			}
		case sched.SendResult:
			if len(a.Body) >= LargeRecord {
				p.large = append(p.large, large{kind: wire.KindResult, id: a.ID, body: a.Body})
			} else {
				p.results = wire.AppendRecord(p.results, a.ID, a.Body)
			}
			if p.kind == Client {
				c.countResult(a.Body)
			}
		case sched.SendCancel:
			p.cancels = append(p.cancels, a.ID)
		case sched.FailTask:
			r := wire.Result{Status: wire.ResultLost, Message: "connection lost"}
			if lost := c.peers[a.Lost]; lost != nil {
				r.Rank, r.Host = lost.hello.Rank, lost.hello.Host
				if lost.cause != "" {
					r.Message = lost.cause
				}
			}
			p.results = wire.AppendRecord(p.results, a.ID, wire.AppendResult(nil, &r))
			if p.kind == Client {
				c.counts.Failed++
			}
		case sched.Cancelled:
			r := wire.Result{Status: wire.ResultCancelled, Rank: c.cfg.Rank, Host: c.cfg.Host}
			p.results = wire.AppendRecord(p.results, a.ID, wire.AppendResult(nil, &r))
			if p.kind == Client {
				c.counts.Cancelled++
			}
		case sched.Unplaceable:
			r := c.noSlotResult()
			p.results = wire.AppendRecord(p.results, a.ID, wire.AppendResult(nil, &r))
			if p.kind == Client {
				c.counts.Failed++
			}
		case sched.Steal:
			p.ctrl = append(p.ctrl, ctrl{wire.KindLoad, wire.AppendLoad(nil, &wire.Load{Steal: a.N})})
		}
		c.mark(p)
	}
}

// Loads returns the tasks in flight through the relay (submitted and not
// yet answered) and their body bytes, from source p and in all: what a
// shell's admission control bounds.
func (c *Core) Loads(p Peer) (src, total sched.Load) {
	return c.sched.Source(p), c.sched.Total()
}
