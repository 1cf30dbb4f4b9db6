package launcher

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/qlaunch/qlaunch/kernels"
	"github.com/qlaunch/qlaunch/launcher/sched"
	"github.com/qlaunch/qlaunch/launcher/wire"
)

// NodeConfig configures a relay rank: the server (clients above it) or a
// manager (a parent above it). Both place tasks on their children with a
// sched.Sched and route results, logs and status back.
type NodeConfig struct {
	Server bool // the top of the tree: accepts clients, has no parent
	Rank   int
	Host   string
	// Listeners accept children dialling up, clients (server) and a
	// parent dialling down (manager). The node closes them when it stops.
	Listeners []net.Listener
	// Children are addresses of children to dial (the server dials its
	// managers; a manager started with -m dials lower managers).
	Children []string
	// Parent is the address of the parent to dial; empty for the server
	// and for a manager that waits for its parent to dial it.
	Parent string
	// ExpectRanks is the number of ranks of the whole tree, this one
	// included; the server is ready once that many have joined (zero:
	// once every dialled child joined with worker slots below it).
	ExpectRanks int
	// AddressFile, if set, receives Address atomically once ready, with
	// this process, its host and Owner (an AddressRecord).
	AddressFile string
	Address     string
	Owner       AddressOwner
	// Ready, if set, is closed once ready.
	Ready chan struct{}
	// ShutdownTimeout bounds how long a stopping node waits for its
	// children to leave; zero means 5 s.
	ShutdownTimeout time.Duration
	// Registry, if set, says which kernels are retryable: their tasks are
	// placed again when the child running them is lost.
	Registry *kernels.Registry
	Link     LinkConfig
	Logger   *slog.Logger
	// Plan, if set (the server of a planned job), lists every rank the
	// tree should hold; status replies then name the ranks not in it.
	Plan []PlannedRank
	// Monitor, if set, is attached to the node while it runs.
	Monitor *Monitor
	// Alloc labels the node's status rows with its allocation (job id).
	Alloc string
	// Drain, when closed, drains a manager (as qlaunch drain would): it
	// tells its parent, drains its subtree and leaves last. The server
	// ignores it.
	Drain <-chan struct{}
	// Supervisor, if set, started some of this node's worker ranks and
	// starts them again when they die: the node learns of a death from it
	// at once, keeps the rank's slots for its replacement and has it kill
	// a rank it found hung (see Supervisor).
	Supervisor *Supervisor
}

func (c NodeConfig) withDefaults() NodeConfig {
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.ShutdownTimeout <= 0 {
		c.ShutdownTimeout = 5 * time.Second
	}
	c.Link = c.Link.withDefaults()
	return c
}

// keepMin is the size from which a received task batch is kept in the
// connection's own buffer (wire.Conn.Keep) rather than copied.
const keepMin = 64 << 10

type peerKind uint8

const (
	peerClient peerKind = iota
	peerChild
	peerParent
)

type nodePeer struct {
	id    sched.Peer
	kind  peerKind
	l     *link
	out   *wire.Outbox
	w     peerWriter // p's connection, counting what is written
	ranks int
	slots int
	// queued counts the bytes put in out and not yet written; blocked is
	// when the write in progress to p began (Unix ns; 0: none), for the
	// bounds of LinkConfig.MaxOutboxBytes and OutboxStall.
	queued  atomic.Int64
	blocked atomic.Int64
	// writing is set while p's reader writes what p's frame produced
	// (to other peers too): p's own frames then wait unread, and its
	// silence is not held against it.
	writing atomic.Bool

	tasks, results, logs []byte
	large                []largeRecord // records forwarded by reference
	cancels              []uint64
	ctrl                 []ctrlFrame
	dirty                bool
	lostReason           string // why the node dropped it, for status replies
	// dying: a supervised child whose connection broke; the node waits
	// for its process's exit status (exit) before it reports the loss.
	dying    bool
	dyingErr error
	exit     string
	// draining: told to drain (qlaunch drain); its leave is clean once
	// it holds no task. outDone is closed when its writer returns.
	draining bool
	outDone  chan struct{}
	admit    peerAdmission // a client's pause by admission control (admission.go)
}

// largeRecord is a task or result record of at least keepMin body bytes,
// forwarded in a frame of its own without copying its body (which stays in
// the buffer it arrived in) into the outgoing batch.
type largeRecord struct {
	kind wire.Kind
	id   uint64
	body []byte
}

type statusReq struct {
	src     *nodePeer
	srcID   uint64
	waiting map[sched.Peer]bool
	ranks   []wire.RankStatus
	reply   chan<- []wire.RankStatus // src nil: a Monitor's request
	silent  map[sched.Peer]time.Duration
}

type node struct {
	cfg    NodeConfig
	log    *slog.Logger
	role   string
	sched  *sched.Sched
	peers  map[sched.Peer]*nodePeer
	nextID sched.Peer
	parent *nodePeer
	quit   chan struct{}
	wg     sync.WaitGroup
	lost   *nodePeer
	// lostCause is why lost was lost, for the errors of its tasks.
	lostCause string
	// reserved holds, by rank, the worker slots of supervised ranks being
	// started again (or whose exit status is awaited).
	reserved map[int]int

	// mu guards the node's state: the goroutine that read a frame handles
	// it under mu (no hand-off to a loop goroutine), then writes what it
	// produced with Outbox.Drain after releasing mu.
	mu     sync.Mutex
	dirty  []*nodePeer
	closed bool
	result error
	idle   chan struct{} // closed when stopping and no child is left

	retry      map[string]bool
	status     map[uint64]*statusReq
	nextStatus uint64
	done       uint64
	ready      bool
	stopping   bool
	draining   bool // this manager was drained: it leaves once its children left
	lastJoin   wire.Join
	lostRanks  []wire.RankStatus // children lost, for status replies
	counts     observeCounts
	// failedHandshakes counts refused connections, logged at 1, 2, 4, 8 …
	// so that a flood cannot flood the log.
	failedHandshakes atomic.Uint64
	admission        admission // paused clients (admission.go)
}

// RunNode runs a relay rank until ctx ends (the server: a clean stop,
// ErrShutdown), a shutdown message arrives from its parent (ErrShutdown),
// or its parent is lost (ErrParentLost).
func RunNode(ctx context.Context, cfg NodeConfig) error {
	cfg = cfg.withDefaults()
	n := &node{
		cfg: cfg, sched: sched.New(), peers: make(map[sched.Peer]*nodePeer),
		quit: make(chan struct{}), idle: make(chan struct{}),
		status: make(map[uint64]*statusReq), reserved: make(map[int]int),
	}
	if cfg.Registry != nil {
		n.retry = make(map[string]bool)
		for _, name := range cfg.Registry.Names() {
			k, _ := cfg.Registry.Lookup(name)
			n.retry[name] = k.Retryable
		}
	}
	n.role = roleManager
	if cfg.Server {
		n.role = roleServer
	}
	n.log = cfg.Logger.With("role", n.role, "rank", cfg.Rank, "host", cfg.Host)
	for _, ln := range cfg.Listeners {
		n.wg.Go(func() { n.acceptLoop(ln) })
	}
	me := wire.Hello{Role: n.role + linkParent, Rank: cfg.Rank, Host: cfg.Host}
	for _, addr := range cfg.Children {
		n.wg.Go(func() { n.dial(ctx, addr, me, peerChild) })
	}
	if cfg.Parent != "" {
		up := wire.Hello{Role: n.role + linkChild, Rank: cfg.Rank, Host: cfg.Host}
		n.wg.Go(func() { n.dial(ctx, cfg.Parent, up, peerParent) })
	}
	n.wg.Go(n.ticker)
	if cfg.Drain != nil && !cfg.Server {
		n.wg.Go(func() {
			select {
			case <-cfg.Drain:
				n.do(n.selfDrain)
			case <-n.quit:
			}
		})
	}
	if cfg.Monitor != nil {
		cfg.Monitor.attach(n)
		defer cfg.Monitor.detach(n)
	}
	if cfg.Supervisor != nil {
		cfg.Supervisor.attach(n)
		defer cfg.Supervisor.detach(n)
	}
	n.do(func() {
		n.writeStarting()
		n.checkReady()
	})
	defer n.removeStarting()

	select {
	case <-ctx.Done():
		n.do(func() { n.fail(ErrShutdown) })
	case <-n.idle:
	}
	t := time.NewTimer(n.cfg.ShutdownTimeout)
	select {
	case <-n.idle:
	case <-t.C:
		n.mu.Lock()
		n.log.Warn("children did not leave in time", "left", n.countChildren())
		n.mu.Unlock()
	}
	t.Stop()

	n.mu.Lock()
	n.closed = true
	for _, ln := range cfg.Listeners {
		ln.Close()
	}
	if up := n.parent; up != nil && errors.Is(n.result, ErrDrained) {
		// A drained manager leaves with its last results written.
		up.out.Close()
		n.mu.Unlock()
		t := time.NewTimer(n.cfg.ShutdownTimeout)
		select {
		case <-up.outDone:
		case <-t.C:
		}
		t.Stop()
		n.mu.Lock()
	}
	for _, p := range n.peers {
		p.out.Close()
		p.l.close()
	}
	result := n.result
	n.mu.Unlock()
	close(n.quit)
	n.wg.Wait()
	return result
}

// do runs fn with the node's state locked, then writes what it produced.
func (n *node) do(fn func()) { n.doFrom(nil, fn) }

// doFrom is do for the reader of peer from.
func (n *node) doFrom(from *nodePeer, fn func()) {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return
	}
	fn()
	dirty := n.flush()
	if n.stopping && n.countChildren() == 0 {
		select {
		case <-n.idle:
		default:
			close(n.idle)
		}
	}
	n.mu.Unlock()
	if len(dirty) == 0 {
		return
	}
	var t0 int64
	if from != nil {
		from.writing.Store(true)
		t0 = time.Now().UnixNano()
	}
	for _, p := range dirty {
		// This goroutine writes to p itself only when the write cannot
		// block (it fits in p's socket buffer): a peer that does not
		// read never holds up the reader of another. Otherwise p's
		// writer goroutine writes it; a write of its that stays blocked
		// is bounded by the heartbeat's check of OutboxStall, which
		// drops p. (Drain also returns at once when another goroutine
		// is writing to p.)
		if !p.l.room(p.queued.Load()) {
			p.out.Kick()
			continue
		}
		if err := p.out.Drain(p.w); err != nil {
			n.log.Warn("write failed, dropping connection", "peer", p.l.String(), "err", err)
			p.l.close()
		}
	}
	if from != nil {
		if time.Now().UnixNano()-t0 > int64(n.cfg.Link.Heartbeat) {
			// Blocked writing: from's frames waited unread meanwhile.
			from.l.seen()
		}
		from.writing.Store(false)
	}
}

// peerWriter writes a peer's frames to its connection and counts them
// out of its queue, noting when a write blocks.
type peerWriter struct {
	fc *wire.Conn
	p  *nodePeer
}

func (w peerWriter) WriteFrame(k wire.Kind, b []byte) error {
	w.p.blocked.Store(time.Now().UnixNano())
	err := w.fc.WriteFrame(k, b)
	w.p.queued.Add(-int64(len(b)))
	return err
}

func (w peerWriter) WriteFrameParts(k wire.Kind, head, body []byte) error {
	w.p.blocked.Store(time.Now().UnixNano())
	err := w.fc.WriteFrameParts(k, head, body)
	w.p.queued.Add(-int64(len(head) + len(body)))
	return err
}

func (w peerWriter) Flush() error {
	if w.p.blocked.Load() == 0 {
		w.p.blocked.Store(time.Now().UnixNano())
	}
	err := w.fc.Flush()
	w.p.blocked.Store(0)
	return err
}

// fail stops the node with err as its result (the first one wins).
func (n *node) fail(err error) {
	if err == nil {
		return
	}
	if n.result == nil {
		n.result = err
	}
	n.beginStop(err)
}

func (n *node) ticker() {
	t := time.NewTicker(n.cfg.Link.Heartbeat)
	defer t.Stop()
	for {
		select {
		case <-n.quit:
			return
		case now := <-t.C:
			n.do(func() { n.heartbeat(now) })
		}
	}
}

func (n *node) acceptLoop(ln net.Listener) {
	serveListener(ln, n.cfg.Link, n.log, n.quit, n.wg.Go, func(nc net.Conn, release func() bool) {
		me := wire.Hello{Role: n.role, Rank: n.cfg.Rank, Host: n.cfg.Host}
		l, err := handshake(nc, n.cfg.Link, me, false)
		if release() && err == nil {
			// Evicted by the gate in the instant after its handshake: the
			// socket is closed, so the link is not adopted.
			l.close()
			err = errEvicted
		}
		if err != nil {
			if c := n.failedHandshakes.Add(1); c&(c-1) == 0 {
				n.log.Warn("refused connection", "remote", nc.RemoteAddr().String(), "err", err, "refused_so_far", c)
			}
			return
		}
		p := &nodePeer{l: l}
		switch role, end := splitRole(l.peer.Role); {
		case role == roleClient && n.cfg.Server:
			p.kind = peerClient
		case end == linkChild:
			p.kind = peerChild
		case end == linkParent && !n.cfg.Server:
			p.kind = peerParent
		default:
			n.log.Warn("refused connection", "peer", l.String(), "err", errNotAccepted)
			l.close()
			return
		}
		n.adopt(p)
	})
}

// adopt adds an authenticated peer, or closes it if the node is done.
func (n *node) adopt(p *nodePeer) {
	added := false
	n.do(func() { added = n.addPeer(p) })
	if !added {
		p.l.close()
	}
}

func (n *node) dial(ctx context.Context, addr string, me wire.Hello, kind peerKind) {
	l, err := dialLink(ctx, addr, n.cfg.Link, me)
	if err != nil {
		n.do(func() {
			n.log.Error("dial failed", "err", err)
			n.fail(err)
		})
		return
	}
	n.adopt(&nodePeer{l: l, kind: kind})
}

// readLoop handles p's frames in this goroutine, under the node's lock.
func (n *node) readLoop(p *nodePeer) {
	for {
		k, b, err := p.l.fc.ReadFrame()
		if err != nil {
			p.l.readFailed(n.log, err)
			n.do(func() { n.fail(n.removePeer(p, err)) })
			return
		}
		p.l.seen()
		n.doFrom(p, func() { n.fail(n.handle(p, k, b)) })
		n.waitAdmission(p)
	}
}

func (n *node) countChildren() int {
	c := 0
	for _, p := range n.peers {
		if p.kind == peerChild {
			c++
		}
	}
	return c
}

// beginStop sends shutdown down the tree and drops clients and the parent.
func (n *node) beginStop(cause error) {
	if n.stopping {
		return
	}
	n.stopping = true
	n.log.Debug("stopping", "cause", cause)
	if n.cfg.Supervisor != nil {
		n.cfg.Supervisor.Stopping()
	}
	for _, p := range n.peers {
		if p.dying {
			n.removePeer(p, p.dyingErr)
		}
	}
	for _, ln := range n.cfg.Listeners {
		ln.Close()
	}
	for _, p := range n.peers {
		switch p.kind {
		case peerChild:
			p.ctrl = append(p.ctrl, ctrlFrame{wire.KindShutdown, wire.AppendText(nil, cause.Error())})
			n.mark(p)
		case peerParent:
			if !errors.Is(cause, ErrDrained) {
				p.out.Close()
				p.l.close()
			} // else RunNode closes it once the frames queued until then are written
		default:
			p.out.Close()
			p.l.close()
		}
	}
}

func (n *node) heartbeat(now time.Time) {
	for _, p := range n.peers {
		if b := p.blocked.Load(); b != 0 && now.UnixNano()-b > int64(n.cfg.Link.OutboxStall) {
			n.dropStalled(p, fmt.Sprintf("not reading: one write to it blocked for %v", time.Duration(now.UnixNano()-b).Round(time.Millisecond)))
			continue
		}
		if p.writing.Load() || p.admit.paused.Load() {
			continue // its frames wait behind our write or admission, not its silence
		}
		if now.UnixNano()-p.l.lastSeen.Load() > int64(n.cfg.Link.HeartbeatTimeout) {
			n.log.Warn("peer silent, dropping it", "peer", p.l.String())
			p.lostReason = fmt.Sprintf("silent for %v (no heartbeat)", time.Duration(now.UnixNano()-p.l.lastSeen.Load()).Round(time.Millisecond))
			p.l.close()
			continue
		}
		p.ctrl = append(p.ctrl, ctrlFrame{wire.KindHeartbeat, nil})
		n.mark(p)
	}
}

func (n *node) mark(p *nodePeer) {
	if !p.dirty {
		p.dirty = true
		n.dirty = append(n.dirty, p)
	}
}

func (n *node) flush() []*nodePeer {
	if len(n.dirty) == 0 {
		return nil
	}
	for _, p := range n.dirty {
		p.dirty = false
		put := func(k wire.Kind, b []byte) {
			if p.out.Put(k, b) {
				p.queued.Add(int64(len(b)))
			}
		}
		for _, c := range p.ctrl {
			put(c.kind, c.body)
		}
		p.ctrl = nil
		if len(p.logs) > 0 {
			put(wire.KindLog, p.logs)
			p.logs = nil
		}
		if len(p.results) > 0 {
			put(wire.KindResult, p.results)
			p.results = nil
		}
		if len(p.tasks) > 0 {
			put(wire.KindSubmit, p.tasks)
			p.tasks = nil
		}
		for i, r := range p.large {
			head := wire.AppendRecordHead(nil, r.id, len(r.body))
			if p.out.PutParts(r.kind, head, r.body) {
				p.queued.Add(int64(len(head) + len(r.body)))
			}
			p.large[i] = largeRecord{}
		}
		p.large = p.large[:0]
		wire.SplitCancel(p.cancels, func(b []byte) { put(wire.KindCancel, b) })
		p.cancels = nil
		if q := p.queued.Load(); q > n.cfg.Link.MaxOutboxBytes {
			n.dropStalled(p, fmt.Sprintf("not reading: %d bytes queued for it, over the bound of %d", q, n.cfg.Link.MaxOutboxBytes))
		}
	}
	dirty := n.dirty
	n.dirty = nil
	return dirty
}

// dropStalled drops peer p, which does not read what it is sent: its
// connection is closed (a write blocked on it fails), what is queued for
// it is discarded, and its reader then removes it as for any lost peer:
// a client's tasks are cancelled, a child's fail or are placed again.
func (n *node) dropStalled(p *nodePeer, why string) {
	if p.lostReason != "" {
		return
	}
	n.log.Warn("peer does not read, dropping it", "peer", p.l.String(), "why", why)
	p.lostReason = why
	p.out.Stop()
	p.l.close()
}

func (n *node) addPeer(p *nodePeer) bool {
	if n.stopping {
		return false
	}
	if p.kind == peerParent && n.parent != nil {
		n.log.Warn("refused second parent", "peer", p.l.String())
		return false
	}
	n.nextID++
	p.id = n.nextID
	p.out = wire.NewOutbox()
	p.w = peerWriter{p.l.fc, p}
	p.outDone = make(chan struct{})
	n.peers[p.id] = p
	n.wg.Go(func() {
		defer close(p.outDone)
		if err := p.out.Run(p.w); err != nil {
			n.log.Warn("write failed, dropping connection", "peer", p.l.String(), "err", err)
			p.l.close()
		}
	})
	n.wg.Go(func() { n.readLoop(p) })
	n.log.Debug("connected", "peer", p.l.String())
	if p.kind == peerParent {
		n.parent = p
		n.lastJoin = wire.Join{}
		n.reportJoin()
	}
	return true
}

func (n *node) removePeer(p *nodePeer, err error) error {
	if _, ok := n.peers[p.id]; !ok {
		return nil
	}
	if n.awaitExit(p, err) {
		return nil
	}
	delete(n.peers, p.id)
	p.out.Stop()
	p.l.close()
	addWire(&n.counts.closedWire, p.l.fc.Stats())
	switch p.kind {
	case peerClient:
		n.log.Debug("client left", "peer", p.l.String())
		n.sched.DropSource(p.id)
	case peerChild:
		n.lostCause = lossCause(p, err)
		switch {
		case p.draining && n.sched.Holding(p.id) == 0:
			n.log.Info("child drained and left", "peer", p.l.String())
			n.recordDrained(p)
		case !n.stopping:
			n.log.Warn("child lost", "peer", p.l.String(), "cause", n.lostCause)
			n.recordLost(p, err)
		}
		n.lost = p
		n.sched.RemoveChild(p.id)
		n.apply()
		n.lost, n.lostCause = nil, ""
		for id, s := range n.status {
			if s.waiting[p.id] {
				delete(s.waiting, p.id)
				n.statusDone(id, s)
			}
		}
		n.reportJoin()
		n.leaveIfDrained()
	case peerParent:
		n.parent = nil
		n.sched.DropSource(p.id)
		if !n.stopping {
			n.log.Warn("parent lost", "peer", p.l.String(), "err", err)
			return ErrParentLost
		}
	}
	n.apply()
	return nil
}

// handle processes one frame from p; a non-nil error stops the node.
func (n *node) handle(p *nodePeer, k wire.Kind, b []byte) error {
	if _, ok := n.peers[p.id]; !ok {
		return nil
	}
	switch {
	case k == wire.KindSubmit:
		// Held tasks keep their bodies past the next read: take the
		// frame's buffer when it is large, saving the copy of a
		// MiB-sized payload, copy it when small.
		if len(b) >= keepMin {
			p.l.fc.Keep()
		} else {
			b = append([]byte(nil), b...)
		}
	case k == wire.KindResult && len(b) >= keepMin:
		// A large result record is forwarded by reference (largeRecord)
		// and written after this read returns; smaller ones are copied
		// into the outgoing batch before it.
		p.l.fc.Keep()
	}
	if err := n.message(p, k, b); err != nil {
		if errors.Is(err, ErrShutdown) {
			return ErrShutdown
		}
		n.log.Warn("bad message, dropping connection", "peer", p.l.String(), "kind", k, "err", err)
		return n.removePeer(p, err)
	}
	n.apply()
	n.admit(p)
	return nil
}

func (n *node) message(p *nodePeer, k wire.Kind, b []byte) error {
	switch k {
	case wire.KindHeartbeat:
		return nil
	case wire.KindSubmit:
		if n.stopping {
			return nil
		}
		recs := wire.NewRecords(b)
		for {
			id, body, ok := recs.Next()
			if !ok {
				break
			}
			if p.kind == peerClient {
				n.counts.submitted++
			}
			if p.kind == peerClient && n.refuseTask(p, id, body) {
				continue
			}
			n.sched.Submit(p.id, id, body, n.retry[string(wire.TaskKernel(body))])
		}
		return recs.Err()
	case wire.KindCancel:
		ids, err := wire.DecodeCancel(b, nil)
		if err != nil {
			return err
		}
		n.sched.Cancel(p.id, ids)
		return nil
	case wire.KindStatus:
		return n.onStatus(p, b)
	case wire.KindDrain:
		if p.kind == peerChild {
			// The child drains itself (a signal under its scheduler).
			n.drainChild(p)
			n.reportJoin()
			return nil
		}
		var d wire.Drain
		if err := wire.DecodeDrain(b, &d); err != nil {
			return err
		}
		n.onDrain(d.Ranks)
		return nil
	}
	if p.kind == peerChild {
		switch k {
		case wire.KindResult:
			recs := wire.NewRecords(b)
			for {
				id, body, ok := recs.Next()
				if !ok {
					break
				}
				n.done++
				n.sched.Result(p.id, id, body)
			}
			return recs.Err()
		case wire.KindLog:
			return n.onLog(b)
		case wire.KindLoad:
			var l wire.Load
			if err := wire.DecodeLoad(b, &l); err != nil {
				return err
			}
			n.sched.Load(p.id, l.Idle, l.Queued)
			return nil
		case wire.KindJoin:
			var j wire.Join
			if err := wire.DecodeJoin(b, &j); err != nil {
				return err
			}
			p.ranks, p.slots = j.Ranks, j.Slots
			n.sched.AddChild(p.id, j.Slots)
			if _, ok := n.reserved[p.l.peer.Rank]; ok && j.Slots > 0 {
				// The replacement of a supervised rank joined.
				n.log.Info("worker rank back", "peer", p.l.String(), "slots", j.Slots)
				delete(n.reserved, p.l.peer.Rank)
				n.updateReserve()
			}
			n.reportJoin()
			return nil
		}
	}
	if p.kind == peerParent {
		switch k {
		case wire.KindShutdown:
			return ErrShutdown
		case wire.KindLoad, wire.KindResult, wire.KindLog:
			return nil
		}
	}
	return fmt.Errorf("unexpected %v message from %s", k, p.l.peer.Role)
}

func (n *node) onLog(b []byte) error {
	var rec wire.LogRecord
	for len(b) > 0 {
		rest, err := wire.DecodeLog(b, &rec)
		if err != nil {
			return err
		}
		b = rest
		src, id, ok := n.sched.Route(rec.Task)
		if !ok {
			continue
		}
		if sp := n.peers[src]; sp != nil {
			rec.Task = id
			sp.logs = wire.AppendLog(sp.logs, &rec)
			n.mark(sp)
		}
	}
	return nil
}

// apply turns the scheduler's decisions into messages.
func (n *node) apply() {
	for _, a := range n.sched.Ready() {
		p := n.peers[a.To]
		if p == nil {
			continue
		}
		switch a.Kind {
		case sched.SendTask:
			if len(a.Body) >= keepMin {
				p.large = append(p.large, largeRecord{wire.KindSubmit, a.ID, a.Body})
			} else {
				p.tasks = wire.AppendRecord(p.tasks, a.ID, a.Body)
			}
		case sched.SendResult:
			if len(a.Body) >= keepMin {
				p.large = append(p.large, largeRecord{wire.KindResult, a.ID, a.Body})
			} else {
				p.results = wire.AppendRecord(p.results, a.ID, a.Body)
			}
			if p.kind == peerClient {
				n.counts.countResult(a.Body)
			}
		case sched.SendCancel:
			p.cancels = append(p.cancels, a.ID)
		case sched.FailTask:
			r := wire.Result{Status: wire.ResultLost, Message: "connection lost"}
			if n.lost != nil {
				r.Rank, r.Host = n.lost.l.peer.Rank, n.lost.l.peer.Host
			}
			if n.lostCause != "" {
				r.Message = n.lostCause
			}
			p.results = wire.AppendRecord(p.results, a.ID, wire.AppendResult(nil, &r))
			if p.kind == peerClient {
				n.counts.failed++
			}
		case sched.Cancelled:
			r := wire.Result{Status: wire.ResultCancelled, Rank: n.cfg.Rank, Host: n.cfg.Host}
			p.results = wire.AppendRecord(p.results, a.ID, wire.AppendResult(nil, &r))
			if p.kind == peerClient {
				n.counts.cancelled++
			}
		case sched.Unplaceable:
			r := n.noSlotResult()
			p.results = wire.AppendRecord(p.results, a.ID, wire.AppendResult(nil, &r))
			if p.kind == peerClient {
				n.counts.failed++
			}
		case sched.Steal:
			p.ctrl = append(p.ctrl, ctrlFrame{wire.KindLoad, wire.AppendLoad(nil, &wire.Load{Steal: a.N})})
		}
		n.mark(p)
	}
	n.readmit()
}

// subtree returns the ranks and slots of this node's subtree.
func (n *node) subtree() wire.Join {
	j := wire.Join{Ranks: 1}
	for _, p := range n.peers {
		if p.kind == peerChild {
			j.Ranks += p.ranks
			if !p.draining {
				j.Slots += p.slots
			}
		}
	}
	// Ranks being started again keep their place: the parent holds tasks
	// for their slots rather than failing them.
	for _, slots := range n.reserved {
		j.Ranks++
		j.Slots += slots
	}
	return j
}

// reportJoin tells the parent about a changed subtree, or, at the server,
// checks readiness.
func (n *node) reportJoin() {
	j := n.subtree()
	if n.cfg.Server {
		n.checkReady()
		return
	}
	if n.parent == nil || j == n.lastJoin {
		return
	}
	n.lastJoin = j
	n.parent.ctrl = append(n.parent.ctrl, ctrlFrame{wire.KindJoin, wire.AppendJoin(nil, &j)})
	n.mark(n.parent)
	if !n.ready && n.cfg.Parent != "" && j.Slots > 0 {
		// A manager that dialled its parent (the bootstrap's) is ready once
		// its first subtree with slots goes up; a manual-mode manager says
		// so when it listens (cmd/cli).
		n.ready = true
		n.log.Info("ready", "parent", n.cfg.Parent, "ranks", j.Ranks, "slots", j.Slots)
	}
}

func (n *node) checkReady() {
	if !n.cfg.Server || n.ready {
		return
	}
	j := n.subtree()
	if n.cfg.ExpectRanks > 0 && j.Ranks < n.cfg.ExpectRanks {
		return
	}
	if n.cfg.ExpectRanks == 0 {
		// Every dialled child must have joined with worker slots below it.
		withSlots := 0
		for _, p := range n.peers {
			if p.kind == peerChild && p.slots > 0 {
				withSlots++
			}
		}
		if withSlots < len(n.cfg.Children) {
			return
		}
	}
	n.ready = true
	if n.cfg.AddressFile != "" {
		if err := WriteAddressRecord(n.cfg.AddressFile, ownRecord(n.cfg.Address, n.cfg.Owner)); err != nil {
			n.log.Error("writing the address file", "err", err)
		}
		n.removeStarting()
	}
	n.log.Info("ready", "ranks", j.Ranks, "slots", j.Slots, "address", n.cfg.Address)
	if n.cfg.Ready != nil {
		close(n.cfg.Ready)
	}
}

func (n *node) ownStatus() wire.RankStatus {
	parent := -1
	if n.parent != nil {
		parent = n.parent.l.peer.Rank
	}
	return wire.RankStatus{
		Rank: n.cfg.Rank, Parent: parent, Role: n.role, Host: n.cfg.Host,
		Queued: n.sched.Pending(), Done: n.done, Alloc: n.cfg.Alloc,
	}
}

func (n *node) onStatus(p *nodePeer, b []byte) error {
	var s wire.Status
	if err := wire.DecodeStatus(b, &s); err != nil {
		return err
	}
	if s.Reply {
		req := n.status[s.ID]
		if req == nil || !req.waiting[p.id] {
			return nil
		}
		delete(req.waiting, p.id)
		for _, r := range s.Ranks {
			if r.Depth == 0 && r.State == wire.RankJoined {
				// The child itself: how long it had been silent when asked.
				r.Silent = req.silent[p.id]
			}
			r.Depth++
			req.ranks = append(req.ranks, r)
		}
		n.statusDone(s.ID, req)
		return nil
	}
	n.startStatus(&statusReq{src: p, srcID: s.ID})
	return nil
}

// startStatus asks every child for its subtree's status; req is answered
// once they all replied (or were lost).
func (n *node) startStatus(req *statusReq) {
	n.nextStatus++
	id := n.nextStatus
	req.waiting, req.ranks = make(map[sched.Peer]bool), n.statusRows()
	req.silent = make(map[sched.Peer]time.Duration)
	now := time.Now().UnixNano()
	for _, c := range n.peers {
		if c.kind == peerChild {
			req.waiting[c.id] = true
			req.silent[c.id] = time.Duration(now - c.l.lastSeen.Load())
			c.ctrl = append(c.ctrl, ctrlFrame{wire.KindStatus, wire.AppendStatus(nil, &wire.Status{ID: id})})
			n.mark(c)
		}
	}
	n.status[id] = req
	n.statusDone(id, req)
}

func (n *node) statusDone(id uint64, req *statusReq) {
	if len(req.waiting) > 0 {
		return
	}
	delete(n.status, id)
	if n.cfg.Server {
		req.ranks = withExpected(req.ranks, n.cfg.Plan)
	}
	if req.src == nil {
		req.reply <- req.ranks
		return
	}
	if _, ok := n.peers[req.src.id]; !ok {
		return
	}
	reply := wire.Status{ID: req.srcID, Reply: true, Ranks: req.ranks}
	req.src.ctrl = append(req.src.ctrl, ctrlFrame{wire.KindStatus, wire.AppendStatus(nil, &reply)})
	n.mark(req.src)
}

// onDrain drains the listed ranks below this node: a listed child is told
// to drain and gets no new task; a relay child that is not listed gets the
// list, for the ranks below it. A listed manager (this node) drains all its
// children and leaves once they have left.
func (n *node) onDrain(ranks []int) {
	want := make(map[int]bool, len(ranks))
	for _, r := range ranks {
		want[r] = true
	}
	if want[n.cfg.Rank] && !n.cfg.Server && !n.draining {
		n.log.Info("draining: no new task; leaving once the ranks below have left")
		n.draining = true
	}
	for _, p := range n.peers {
		if p.kind != peerChild || p.dying {
			continue
		}
		rank := p.l.peer.Rank
		switch role, _ := splitRole(p.l.peer.Role); {
		case want[rank] || n.draining:
			n.drainChild(p)
		case role != roleWorker:
			p.ctrl = append(p.ctrl, ctrlFrame{wire.KindDrain, wire.AppendDrain(nil, &wire.Drain{Ranks: ranks})})
			n.mark(p)
		}
	}
	n.reportJoin()
	n.leaveIfDrained()
}

// selfDrain drains this manager on its own initiative (NodeConfig.Drain):
// its parent learns of it first, so that it sends no more tasks.
func (n *node) selfDrain() {
	if n.parent != nil {
		n.parent.ctrl = append(n.parent.ctrl, ctrlFrame{wire.KindDrain, wire.AppendDrain(nil, &wire.Drain{Ranks: []int{n.cfg.Rank}})})
		n.mark(n.parent)
	}
	n.onDrain([]int{n.cfg.Rank})
}

// drainChild tells child p to drain: it gets no new task, its slots no
// longer count, and its leave is clean once it holds no task.
func (n *node) drainChild(p *nodePeer) {
	if p.draining {
		return
	}
	p.draining = true
	n.sched.Drain(p.id)
	if sup := n.cfg.Supervisor; sup != nil {
		sup.leaving(p.l.peer.Rank)
	}
	n.log.Info("draining child", "peer", p.l.String())
	p.ctrl = append(p.ctrl, ctrlFrame{wire.KindDrain, wire.AppendDrain(nil, &wire.Drain{Ranks: []int{p.l.peer.Rank}})})
	n.mark(p)
}

// leaveIfDrained stops a drained manager once its last child left.
func (n *node) leaveIfDrained() {
	if n.draining && !n.stopping && n.countChildren() == 0 && len(n.reserved) == 0 {
		n.log.Info("drained: every rank below left; leaving")
		n.fail(ErrDrained)
	}
}
