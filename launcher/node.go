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

	"github.com/qlaunch/qlaunch/launcher/relay"
	"github.com/qlaunch/qlaunch/launcher/starttrace"
	"github.com/qlaunch/qlaunch/launcher/wire"
)

// relayConfig is what a relay rank (server or manager) runs with: its
// NodeConfig, the listeners and children its role translated, and for the
// server its role's part.
type relayConfig struct {
	NodeConfig
	// Listeners accept children dialling up, clients (server) and a
	// parent dialling down (manager). The node closes them when it stops.
	Listeners []net.Listener
	// Children are addresses of children to dial (the server dials its
	// managers; a manager started with -m dials lower managers).
	Children []string
	// Server is the server's part (readiness, address file, plan); nil
	// for a manager.
	Server *ServerConfig
}

// keepMin is the size from which a received task batch is kept in the
// connection's own buffer (wire.Conn.Keep) rather than copied.
const keepMin = relay.LargeRecord

// lentBuffer is the read buffer of a large task batch, lent to the core
// (relay.Event.Loan) so that it can go back to the connection that read
// it (wire.Conn.Recycle) rather than to the collector. refs counts the
// core's part, until Released, and each queued Send of a body in it,
// until written (wire.Outbox.PutPartsSent); the last to let go recycles
// it.
//
// On the payload workload (1 MiB tasks, loopback, 2-core AMD EPYC VM, Go
// 1.26) each such batch otherwise cost the server a fresh MiB: the
// allocator's zeroing (memclrNoHeapPointers) and the collector's work
// together took about a third of its CPU time per MiB.
type lentBuffer struct {
	buf  []byte
	fc   *wire.Conn
	refs atomic.Int32
}

func (b *lentBuffer) unref() {
	if b.refs.Add(-1) == 0 {
		b.fc.Recycle(b.buf)
	}
}

// nodePeer is the I/O side of one connection: the core (relay.Core) holds
// its protocol state under the same Peer id.
type nodePeer struct {
	id   relay.Peer
	kind relay.PeerKind
	l    *link
	out  *wire.Outbox
	w    peerWriter // p's connection, counting what is written
	// queued counts the bytes put in out and not yet written; blocked is
	// when the write in progress to p began (Unix ns; 0: none), for the
	// bounds of LinkConfig.MaxOutboxBytes and OutboxStall.
	queued  atomic.Int64
	blocked atomic.Int64
	// writing is set while p's reader writes what p's frame produced
	// (to other peers too): p's own frames then wait unread, and its
	// silence is not held against it.
	writing atomic.Bool
	dirty   bool          // frames were put in out by the current step
	outDone chan struct{} // closed when its writer returns
	admit   peerAdmission // a client's pause by admission control (admission.go)
}

// node is the I/O shell of a relay rank around its relay.Core: it accepts
// and dials connections, reads frames, and carries out the core's actions
// (writes, closes, the address file, the Ready channel, timers, the
// Supervisor).
type node struct {
	cfg    relayConfig
	log    *slog.Logger
	role   string
	core   *relay.Core
	peers  map[relay.Peer]*nodePeer
	nextID relay.Peer
	quit   chan struct{}
	ready  chan struct{} // closed once ready (the server: relay.Ready)
	wg     sync.WaitGroup

	// mu guards the core and the fields below: the goroutine that read a
	// frame steps the core under mu (no hand-off to a loop goroutine),
	// then writes what it produced with Outbox.Drain after releasing mu.
	mu         sync.Mutex
	dirty      []*nodePeer
	closed     bool
	idle       chan struct{} // closed when stopping and no child is left
	statusWait map[uint64]chan<- []wire.RankStatus
	nextToken  uint64
	closedWire wire.Stats // traffic of the connections already closed
	clocks     []relay.Clock
	loans      map[relay.Loan]*lentBuffer // lent to the core, until Released
	lastLoan   relay.Loan
	// failedHandshakes counts refused connections, logged at 1, 2, 4, 8 …
	// so that a flood cannot flood the log.
	failedHandshakes atomic.Uint64
	admission        admission // paused clients (admission.go)
}

// runRelay runs a relay rank until ctx ends (the server: a clean stop,
// ErrShutdown), a shutdown message arrives from its parent (ErrShutdown),
// or its parent is lost (ErrParentLost).
func runRelay(ctx context.Context, cfg relayConfig) error {
	cfg.NodeConfig = cfg.NodeConfig.withDefaults(true)
	n := &node{
		cfg: cfg, peers: make(map[relay.Peer]*nodePeer),
		quit: make(chan struct{}), idle: make(chan struct{}), ready: make(chan struct{}),
		statusWait: make(map[uint64]chan<- []wire.RankStatus), loans: make(map[relay.Loan]*lentBuffer),
	}
	n.role = roleManager
	if cfg.Server != nil {
		n.role = roleServer
	}
	n.log = cfg.Logger.With("role", n.role, "rank", cfg.Rank, "host", cfg.Host)
	n.core = relay.New(n.coreConfig())
	for _, ln := range cfg.Listeners {
		n.wg.Go(func() { n.acceptLoop(ln) })
	}
	me := wire.Hello{Role: n.role + linkParent, Rank: cfg.Rank, Host: cfg.Host}
	for _, addr := range cfg.Children {
		n.wg.Go(func() { n.dial(ctx, addr, me, relay.Child) })
	}
	if cfg.Parent != "" {
		up := wire.Hello{Role: n.role + linkChild, Rank: cfg.Rank, Host: cfg.Host}
		n.wg.Go(func() { n.dial(ctx, cfg.Parent, up, relay.Parent) })
	}
	n.wg.Go(n.ticker)
	if cfg.Drain != nil && cfg.Server == nil {
		n.wg.Go(func() {
			select {
			case <-cfg.Drain:
				n.do(func() { n.step(relay.Event{Type: relay.SelfDrain}) })
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
		n.apply(n.core.Start(time.Now().UnixNano()))
	})
	defer n.removeStarting()

	select {
	case <-ctx.Done():
		starttrace.Mark(n.role, "stopping")
		n.do(func() { n.step(relay.Event{Type: relay.Stop, Err: ErrShutdown}) })
	case <-n.idle:
	}
	t := time.NewTimer(n.cfg.ShutdownWait)
	select {
	case <-n.idle:
		starttrace.Mark(n.role, "children left")
	case <-t.C:
		n.mu.Lock()
		n.log.Warn("children did not leave in time", "left", n.core.Children())
		n.mu.Unlock()
	}
	t.Stop()

	n.mu.Lock()
	n.closed = true
	for _, ln := range cfg.Listeners {
		ln.Close()
	}
	result := n.core.Result()
	if up := n.parentPeer(); up != nil && errors.Is(result, ErrDrained) {
		// A drained manager leaves with its last results written.
		up.out.Close()
		n.mu.Unlock()
		t := time.NewTimer(n.cfg.ShutdownWait)
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
	n.mu.Unlock()
	close(n.quit)
	n.wg.Wait()
	return result
}

// coreConfig is the relay core's part of the node's configuration.
func (n *node) coreConfig() relay.Config {
	cfg := n.cfg
	rc := relay.Config{
		Server: cfg.Server != nil, Rank: cfg.Rank, Host: cfg.Host, Alloc: cfg.Alloc,
		DialledChildren: len(cfg.Children), DialsParent: cfg.Parent != "",
		HeartbeatTimeout: cfg.Link.HeartbeatTimeout, OutboxStall: cfg.Link.OutboxStall,
		KillGrace: killGrace, ExitWait: exitWait, Logger: n.log,
	}
	if s := cfg.Server; s != nil {
		rc.ExpectRanks, rc.Plan = s.ExpectRanks, s.Plan
	}
	if cfg.Registry != nil {
		rc.Retryable = make(map[string]bool)
		for _, name := range cfg.Registry.Names() {
			k, _ := cfg.Registry.Lookup(name)
			rc.Retryable[name] = k.Retryable
		}
	}
	return rc
}

// killGrace is how long a relay waits for the exit status of a supervised
// child whose connection broke before it kills the child's process.
const killGrace = 100 * time.Millisecond

func (n *node) parentPeer() *nodePeer {
	for _, p := range n.peers {
		if p.kind == relay.Parent {
			return p
		}
	}
	return nil
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
	dirty := n.dirty
	n.dirty = nil
	for _, p := range dirty {
		p.dirty = false
	}
	if n.core.Idle() {
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
		//
		// On the latency workload's path this leaves the server with the
		// raw chain's relay's system calls per round trip: per frame a
		// read, a read that finds nothing and parks in the poller, and
		// one write, with no goroutine woken between reading a task and
		// writing it on (runtime traces of both, 2 netpoll wake-ups per
		// round trip each). room asks the kernel only now and then; asked
		// per frame, it was 2 more system calls per round trip.
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

// step feeds one event to the core and carries out its actions; n.mu is
// held.
func (n *node) step(ev relay.Event) {
	if ev.Now == 0 {
		ev.Now = time.Now().UnixNano()
	}
	n.apply(n.core.Step(ev))
}

// apply carries out the core's actions; n.mu is held. Frames are queued
// in the peers' outboxes, written after n.mu is released (doFrom).
func (n *node) apply(actions []relay.Action) {
	first := len(n.dirty) // peers marked dirty from here on got frames now
	for _, a := range actions {
		p := n.peers[a.Peer]
		switch a.Type {
		case relay.Send:
			if p == nil {
				continue
			}
			var sent func()
			if a.Loan != 0 {
				if lb := n.loans[a.Loan]; lb != nil {
					lb.refs.Add(1)
					sent = lb.unref
				}
			}
			if p.out.PutPartsSent(a.Frame, a.Head, a.Body, sent) {
				p.queued.Add(int64(len(a.Head) + len(a.Body)))
			} else if sent != nil {
				sent()
			}
			if !p.dirty {
				p.dirty = true
				n.dirty = append(n.dirty, p)
			}
		case relay.Close, relay.Drop:
			if p == nil {
				continue
			}
			p.out.Stop()
			p.l.close()
			if a.Type == relay.Drop {
				delete(n.peers, p.id)
				addWire(&n.closedWire, p.l.fc.Stats())
			}
		case relay.Stopping:
			if n.cfg.Supervisor != nil {
				n.cfg.Supervisor.Stopping()
			}
			for _, ln := range n.cfg.Listeners {
				ln.Close()
			}
		case relay.WriteAddress:
			if s := n.cfg.Server; s != nil && s.AddressFile != "" && !s.HoldClients { // else written at the start
				if err := WriteAddressRecord(s.AddressFile, ownRecord(s.Address, s.Owner)); err != nil {
					n.log.Error("writing the address file", "err", err)
				}
				n.removeStarting()
				starttrace.Mark(n.role, "address file written")
			}
		case relay.Ready:
			j := n.core.Subtree()
			if n.cfg.Server == nil {
				n.log.Info("ready", "parent", n.cfg.Parent, "ranks", j.Ranks, "slots", j.Slots)
				continue
			}
			n.log.Info("ready", "ranks", j.Ranks, "slots", j.Slots, "address", n.cfg.Server.Address)
			starttrace.Mark(n.role, "ready")
			close(n.ready)
			if n.cfg.Server.Ready != nil {
				close(n.cfg.Server.Ready)
			}
		case relay.Kill:
			if sup := n.cfg.Supervisor; sup != nil {
				sup.kill(a.Rank, a.Reason)
			}
		case relay.Leaving:
			if sup := n.cfg.Supervisor; sup != nil {
				sup.leaving(a.Rank)
			}
		case relay.StartTimer:
			id, t := a.Peer, a.Timer
			time.AfterFunc(a.After, func() {
				n.do(func() { n.step(relay.Event{Type: relay.Timeout, Peer: id, Timer: t}) })
			})
		case relay.Released:
			if lb := n.loans[a.Loan]; lb != nil {
				delete(n.loans, a.Loan)
				lb.unref()
			}
		case relay.StatusReply:
			if ch := n.statusWait[a.Token]; ch != nil {
				delete(n.statusWait, a.Token)
				ch <- a.Ranks
			}
		}
	}
	// A peer whose queue passed the bound does not read: the core drops
	// it (Stalled).
	for i, end := first, len(n.dirty); i < end; i++ {
		p := n.dirty[i]
		if q := p.queued.Load(); q > n.cfg.Link.MaxOutboxBytes {
			n.step(relay.Event{Type: relay.Stalled, Peer: p.id,
				Reason: fmt.Sprintf("not reading: %d bytes queued for it, over the bound of %d", q, n.cfg.Link.MaxOutboxBytes)})
		}
	}
	n.readmit()
}

// peerWriter writes a peer's frames to its connection and counts them
// out of its queue, noting when a write blocks.
type peerWriter struct {
	fc *wire.Conn
	p  *nodePeer
}

func (w peerWriter) WriteFrame(k wire.Kind, b []byte) error {
	w.p.blocked.Store(time.Now().UnixNano())
	w.p.l.noteSent(len(b))
	err := w.fc.WriteFrame(k, b)
	w.p.queued.Add(-int64(len(b)))
	return err
}

func (w peerWriter) WriteFrameParts(k wire.Kind, head, body []byte) error {
	w.p.blocked.Store(time.Now().UnixNano())
	w.p.l.noteSent(len(head) + len(body))
	err := w.fc.WriteFrameParts(k, head, body)
	w.p.queued.Add(-int64(len(head) + len(body)))
	return err
}

func (w peerWriter) Flush() error {
	if w.p.blocked.Load() == 0 {
		w.p.blocked.Store(time.Now().UnixNano())
	}
	err := w.fc.Flush()
	if err == nil {
		w.p.l.noteFlushed()
	}
	w.p.blocked.Store(0)
	return err
}

// ticker steps the core every heartbeat with what the node saw of each
// peer's reads and writes.
func (n *node) ticker() {
	t := time.NewTicker(n.cfg.Link.Heartbeat)
	defer t.Stop()
	for {
		select {
		case <-n.quit:
			return
		case now := <-t.C:
			n.do(func() {
				n.clocks = n.clocks[:0]
				for _, p := range n.peers {
					n.clocks = append(n.clocks, relay.Clock{Peer: p.id, LastSeen: p.l.lastSeen.Load(),
						Blocked: p.blocked.Load(), Writing: p.writing.Load() || p.admit.paused.Load()})
				}
				n.step(relay.Event{Type: relay.Tick, Now: now.UnixNano(), Clocks: n.clocks})
			})
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
		var kind relay.PeerKind
		switch role, end := splitRole(l.peer.Role); {
		case role == roleClient && n.cfg.Server != nil:
			kind = relay.Client
		case end == linkChild:
			kind = relay.Child
		case end == linkParent && n.cfg.Server == nil:
			kind = relay.Parent
		default:
			n.log.Warn("refused connection", "peer", l.String(), "err", errNotAccepted)
			l.close()
			return
		}
		if kind == relay.Client && n.cfg.Server != nil && n.cfg.Server.HoldClients {
			select {
			case <-n.ready:
				// Held, it was not silent: its frames waited unread.
				l.seen()
			case <-n.quit:
				l.close()
				return
			}
		}
		n.adopt(l, kind)
	})
}

func (n *node) dial(ctx context.Context, addr string, me wire.Hello, kind relay.PeerKind) {
	l, err := dialLink(ctx, addr, n.cfg.Link, me)
	if err != nil {
		n.do(func() {
			n.log.Error("dial failed", "err", err)
			n.step(relay.Event{Type: relay.Stop, Err: err})
		})
		return
	}
	n.adopt(l, kind)
}

// adopt adds an authenticated link as a peer, or closes it if the core
// refuses it (the node stops, a second parent).
func (n *node) adopt(l *link, kind relay.PeerKind) {
	added := false
	n.do(func() {
		n.nextID++
		p := &nodePeer{id: n.nextID, kind: kind, l: l, out: wire.NewOutbox(), outDone: make(chan struct{})}
		p.w = peerWriter{l.fc, p}
		n.peers[p.id] = p
		supervised := kind == relay.Child && n.cfg.Supervisor != nil && n.cfg.Supervisor.supervises(l.peer.Rank)
		n.step(relay.Event{Type: relay.PeerUp, Peer: p.id, Kind: kind, Hello: l.peer, Name: l.String(),
			Supervised: supervised, Now: l.lastSeen.Load()})
		if !n.core.Known(p.id) {
			delete(n.peers, p.id)
			return
		}
		added = true
		n.wg.Go(func() {
			defer close(p.outDone)
			if err := p.out.Run(p.w); err != nil {
				n.log.Warn("write failed, dropping connection", "peer", p.l.String(), "err", err)
				p.l.close()
			}
		})
		n.wg.Go(func() { n.readLoop(p) })
	})
	if !added {
		l.close()
	}
}

// readLoop reads p's frames in this goroutine and steps the core with
// each under the node's lock.
func (n *node) readLoop(p *nodePeer) {
	for {
		k, b, err := p.l.fc.ReadFrame()
		if err != nil {
			p.l.readFailed(n.log, err)
			n.do(func() { n.step(relay.Event{Type: relay.PeerDown, Peer: p.id, Err: err}) })
			return
		}
		now := time.Now().UnixNano()
		p.l.lastSeen.Store(now)
		var kept []byte
		switch {
		case k == wire.KindSubmit:
			// Held tasks keep their bodies past the next read: take the
			// frame's buffer when it is large, saving the copy of a
			// MiB-sized payload, and lend it to the core (lentBuffer);
			// copy it when small.
			if len(b) >= keepMin {
				kept = p.l.fc.Keep()
			} else {
				b = append([]byte(nil), b...)
			}
		case k == wire.KindResult && len(b) >= keepMin:
			// A large result record is forwarded by reference and
			// written after this read returns; smaller ones are copied
			// into the outgoing batch before it.
			p.l.fc.Keep()
		}
		// More: the next frame is in whole, so the core may hold what
		// this one produced for a client until that one's step (a burst).
		more := p.l.fc.FrameBuffered()
		n.doFrom(p, func() {
			var loan relay.Loan
			if kept != nil {
				n.lastLoan++
				loan = n.lastLoan
				lb := &lentBuffer{buf: kept, fc: p.l.fc}
				lb.refs.Store(1) // the core's, until Released
				n.loans[loan] = lb
			}
			n.step(relay.Event{Type: relay.Frame, Peer: p.id, Frame: k, Body: b, Now: now, More: more, Loan: loan})
			n.admit(p)
		})
		n.waitAdmission(p)
	}
}

// rankExited is the supervisor's news that the process of worker rank
// rank (slots slots) ended, how (cause), and whether it is being started
// again.
func (n *node) rankExited(rank, slots int, cause string, restart bool) {
	n.step(relay.Event{Type: relay.RankExited, Rank: rank, Slots: slots, Reason: cause, Restart: restart})
}
