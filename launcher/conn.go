package launcher

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/qlaunch/qlaunch/launcher/transport"
	"github.com/qlaunch/qlaunch/launcher/wire"
)

// Roles, as sent in wire.Hello.Role. A dialling rank adds which end of the
// tree link it is (linkChild: "I am your child", linkParent: "I am your
// parent"), since either end of a link may dial: worker ranks dial their
// manager, a server dials the managers it is given.
const (
	roleServer  = "server"
	roleManager = "manager"
	roleWorker  = "worker"
	roleClient  = "client"

	linkChild  = ":child"
	linkParent = ":parent"
)

// LinkConfig configures the connections of a rank: it is the link
// layer's transport.Config, which holds the settings, their defaults and
// their documentation.
type LinkConfig transport.Config

func (c LinkConfig) withDefaults() LinkConfig {
	return LinkConfig(transport.Config(c).WithDefaults())
}

// Defaults of LinkConfig's limits on incoming connections
// (transport's).
const (
	DefaultMaxPendingHandshakes = transport.DefaultMaxPendingHandshakes
	DefaultAcceptRate           = transport.DefaultAcceptRate
	DefaultMaxOutboxBytes       = transport.DefaultMaxOutboxBytes
)

// link is one authenticated connection.
type link struct {
	nc       net.Conn
	fc       *wire.Conn
	peer     wire.Hello
	lastSeen atomic.Int64
	once     sync.Once
	// raw and sndbuf are the TCP socket under the link and its send
	// buffer size, when known: whether a write can block (room).
	raw    syscall.RawConn
	sndbuf int
	// sent counts the bytes handed to fc for writing (noteSent), flushed
	// what sent was at the end of the last flush (all of it was written
	// then), and roomUntil how far sent may grow before room asks the
	// kernel again how much is still queued.
	sent      atomic.Int64
	flushed   atomic.Int64
	roomUntil atomic.Int64
}

// frameOverhead bounds what a frame adds to its payload on the wire (its
// header and MAC tag), counted in link.sent with every frame.
const frameOverhead = 64

// noteSent counts a frame of payload bytes about to be written; only the
// goroutine writing to the link calls it.
func (l *link) noteSent(payload int) { l.sent.Add(int64(payload) + frameOverhead) }

// noteFlushed records that everything noted so far was written to the
// socket: the writing goroutine calls it after a successful flush.
func (l *link) noteFlushed() { l.flushed.Store(l.sent.Load()) }

// room reports whether n more bytes fit in the socket's send buffer, so
// that writing them cannot block however slowly the peer reads. Linux's
// buffer accounting counts overhead besides the payload: half the
// reported size is taken as room for payload.
//
// The kernel is asked (SIOCOUTQ) only when what was written since it was
// last asked could have used up the room it gave then: the queue holds
// at most what it held then (q) plus what reached the socket since,
// which is at most what was noted after the last flush before asking
// (f): q + sent - f. Asking on every frame was a third of the server's
// system calls on the latency workload's path (2 ioctls next to 4 reads
// and 2 writes per round trip, runtime trace of the server); the raw
// three-process chain makes none.
func (l *link) room(n int64) bool {
	if l.raw == nil {
		return false
	}
	if l.sent.Load()+n < l.roomUntil.Load() {
		return true
	}
	f := l.flushed.Load() // before asking: bytes flushed meanwhile count twice
	q, ok := transport.Unsent(l.raw)
	if !ok {
		return false
	}
	// A concurrent caller storing an older measurement stores a bound
	// that still holds, only a stricter one.
	until := int64(l.sndbuf/2) - int64(q) + f
	l.roomUntil.Store(until)
	return l.sent.Load()+n < until
}

// readFailed logs a read error that means the connection was tampered
// with (a frame whose MAC does not match); the peer's removal that follows
// would report it only as a peer lost.
func (l *link) readFailed(log *slog.Logger, err error) {
	if errors.Is(err, wire.ErrIntegrity) {
		log.Error("refused a frame that failed its integrity check, dropping the connection: it was altered or injected on the way",
			"peer", l.String(), "err", err)
	}
}

func (l *link) seen() { l.lastSeen.Store(time.Now().UnixNano()) }

func (l *link) close() { l.once.Do(func() { l.nc.Close() }) }

func (l *link) String() string {
	return fmt.Sprintf("%s rank %d on %s (%s)", l.peer.Role, l.peer.Rank, l.peer.Host, l.nc.RemoteAddr())
}

// watch sends heartbeats through send every cfg.Heartbeat and closes the
// link when the peer stayed silent for cfg.HeartbeatTimeout. It returns
// when ctx ends.
func (l *link) watch(ctx context.Context, cfg LinkConfig, send func()) {
	t := time.NewTicker(cfg.Heartbeat)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			if now.UnixNano()-l.lastSeen.Load() > int64(cfg.HeartbeatTimeout) {
				l.close()
				return
			}
			send()
		}
	}
}

// handshake authenticates nc (transport.Handshake) and makes it a link.
func handshake(nc net.Conn, cfg LinkConfig, me wire.Hello, dialer bool) (*link, error) {
	c, err := transport.Handshake(nc, transport.Config(cfg), me, dialer)
	if err != nil {
		return nil, err
	}
	return newLink(c), nil
}

func newLink(c *transport.Conn) *link {
	l := &link{nc: c.NC, fc: c.FC, peer: c.Peer}
	if rc, size, ok := transport.SendBuffer(c.Raw); ok {
		l.raw, l.sndbuf = rc, size
	}
	l.seen()
	return l
}

// dialLink dials addr, retrying until cfg.DialTimeout, and authenticates
// (transport.Dial).
func dialLink(ctx context.Context, addr string, cfg LinkConfig, me wire.Hello) (*link, error) {
	c, err := transport.Dial(ctx, addr, transport.Config(cfg), me)
	if err != nil {
		return nil, err
	}
	return newLink(c), nil
}

// splitRole splits a Hello role into the role and the link end it claims.
func splitRole(r string) (role, end string) {
	if i := strings.IndexByte(r, ':'); i >= 0 {
		return r[:i], r[i:]
	}
	return r, ""
}

// errNotAccepted is the cause logged for connections refused after the
// handshake (a role this rank does not take).
var errNotAccepted = errors.New("connection refused: unexpected role")

// errEvicted is a connection the accept gate closed to make room.
var errEvicted = errors.New("connection evicted: too many connections being authenticated")

// acceptGate bounds what one listener takes: a token bucket of rate
// connections per second (bursts of max), and at most max connections in
// their handshake at once. A connection over the rate is refused at once:
// it costs the listener one write and one close, no goroutine and no
// buffer. A connection over the pending bound evicts the oldest pending
// one (closed, so its handshake ends at once) and takes its place: a flood
// of silent connections cannot keep a legitimate peer, whose handshake
// takes a round trip, from being served.
type acceptGate struct {
	max  int
	rate float64
	mu   sync.Mutex
	// tokens and last are the bucket; pending holds *pendingConn, oldest
	// first.
	tokens  float64
	last    time.Time
	pending list.List
	freed   chan struct{} // a pending connection ended (lossy)
	// refused and evicted count the connections turned away.
	refused, evicted atomic.Uint64
}

type pendingConn struct {
	nc     net.Conn
	closed bool
}

// evictWait bounds how long the accept loop waits for an evicted
// handshake to end (it ends as soon as its goroutine sees the close).
const evictWait = 100 * time.Millisecond

func newAcceptGate(cfg LinkConfig, now time.Time) *acceptGate {
	return &acceptGate{
		max: cfg.MaxPendingHandshakes, rate: cfg.AcceptRate,
		tokens: float64(cfg.MaxPendingHandshakes), last: now, freed: make(chan struct{}, 1),
	}
}

// evictOldest closes the oldest pending connection, unless one evicted
// before has not ended yet (its place is about to free).
func (g *acceptGate) evictOldest() {
	var oldest *pendingConn
	for e := g.pending.Back(); e != nil; e = e.Prev() {
		pc := e.Value.(*pendingConn)
		if pc.closed {
			return
		}
		oldest = pc
	}
	if oldest != nil {
		oldest.closed = true
		oldest.nc.Close()
		g.evicted.Add(1)
	}
}

// admit decides on nc, accepted at now: it returns a release function,
// which the caller calls once nc's handshake ended and which reports
// whether the gate closed nc meanwhile (evicted, perhaps just after its
// handshake succeeded), or why nc is refused.
// At most max connections hold a release function at any moment.
func (g *acceptGate) admit(nc net.Conn, now time.Time) (release func() bool, why string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.tokens = min(float64(g.max), g.tokens+now.Sub(g.last).Seconds()*g.rate)
	g.last = now
	if g.tokens < 1 {
		g.refused.Add(1)
		return nil, fmt.Sprintf("%s more than %g connections a second", wire.BusyText, g.rate)
	}
	g.tokens--
	for g.pending.Len() >= g.max {
		g.evictOldest()
		g.mu.Unlock()
		t := time.NewTimer(evictWait)
		timedOut := false
		select {
		case <-g.freed:
		case <-t.C:
			timedOut = true
		}
		t.Stop()
		g.mu.Lock()
		if timedOut && g.pending.Len() >= g.max {
			g.refused.Add(1)
			return nil, fmt.Sprintf("%s %d connections already being authenticated", wire.BusyText, g.max)
		}
	}
	pc := &pendingConn{nc: nc}
	e := g.pending.PushBack(pc)
	return func() (evicted bool) {
		g.mu.Lock()
		g.pending.Remove(e)
		evicted = pc.closed
		g.mu.Unlock()
		select {
		case g.freed <- struct{}{}:
		default:
		}
		return evicted
	}, ""
}

// serveListener accepts connections from ln until it is closed, through
// a gate: each admitted connection is handed to handle in a goroutine
// started with spawn, which must call release once its handshake ended;
// each refused one is told why and closed at once (see acceptGate). Temporary accept
// errors (out of file descriptors) pause the loop instead of ending it.
func serveListener(ln net.Listener, cfg LinkConfig, log *slog.Logger, quit <-chan struct{},
	spawn func(func()), handle func(nc net.Conn, release func() bool)) {
	gate := newAcceptGate(cfg, time.Now())
	var pause time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			pause = min(max(2*pause, 5*time.Millisecond), time.Second)
			log.Warn("accept failed, pausing", "err", err, "pause", pause)
			t := time.NewTimer(pause)
			select {
			case <-quit:
				t.Stop()
				return
			case <-t.C:
			}
			continue
		}
		pause = 0
		transport.Tune(nc)
		release, why := gate.admit(nc, time.Now())
		if release == nil {
			_ = wire.Refuse(nc, why)
			nc.Close()
			if n := gate.refused.Load(); n&(n-1) == 0 { // 1, 2, 4, 8 …: no log flood
				log.Warn("refused connections", "remote", nc.RemoteAddr().String(), "why", why, "refused_so_far", n)
			}
			continue
		}
		spawn(func() { handle(nc, release) })
	}
}
