package launcher

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

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

// LinkConfig configures the connections of a rank.
type LinkConfig struct {
	Secret wire.Secret
	Wire   wire.Options
	// DialTimeout bounds how long a rank keeps retrying to reach its
	// parent (or a child it dials); zero means 30 s.
	DialTimeout time.Duration
	// HandshakeTimeout bounds the authentication of one connection; zero
	// means 10 s.
	HandshakeTimeout time.Duration
	// Heartbeat is the interval of liveness messages on idle links; zero
	// means 1 s. A peer silent for HeartbeatTimeout (zero: 10 × Heartbeat)
	// is taken as lost.
	Heartbeat        time.Duration
	HeartbeatTimeout time.Duration
	// TLS, if set, runs every connection inside TLS (wire.LoadTLS); the
	// job-secret handshake still runs inside it. Nil is plain TCP.
	TLS *wire.TLS
	// MaxPendingHandshakes bounds the connections one listener
	// authenticates at once: one more evicts (closes) the oldest of them.
	// Zero means DefaultMaxPendingHandshakes.
	MaxPendingHandshakes int
	// AcceptRate bounds the connections one listener takes per second,
	// with bursts of up to MaxPendingHandshakes; more are refused at once
	// (a "busy" error frame, then closed). Zero means DefaultAcceptRate.
	AcceptRate float64
	// MaxOutboxBytes bounds the bytes a relay holds for one peer, queued
	// and not yet written: a peer that does not read (stopped, or stuck)
	// is dropped, with a log line, once its queue passes the bound, or
	// once one write to it has been blocked for OutboxStall. Zero means
	// DefaultMaxOutboxBytes and HeartbeatTimeout.
	MaxOutboxBytes int64
	OutboxStall    time.Duration
	// MaxResultBytes bounds the value of one task's result as a worker
	// rank sends it: a larger one fails its task with an error giving
	// its size and the bound, and the rank goes on. Zero, or more than
	// the frame limit allows, means the frame limit (Wire.MaxFrame) less
	// 1 KiB for the record's framing.
	MaxResultBytes int
	// MaxClientTasks and MaxClientBytes bound the tasks one client has in
	// flight through a relay (submitted, not yet answered) and their body
	// bytes; MaxQueuedTasks and MaxQueuedBytes bound those of all clients
	// together. A client at a bound is not read until its load is back
	// under 7/8 of it, so its submissions wait (admission control, see
	// admission.go). Zero means the Default of each.
	MaxClientTasks int
	MaxClientBytes int64
	MaxQueuedTasks int
	MaxQueuedBytes int64
	// Dial, if set, replaces net.Dialer (a test seam: launchertest wraps
	// connections to drop or freeze them).
	Dial func(ctx context.Context, addr string) (net.Conn, error)
}

func (c LinkConfig) withDefaults() LinkConfig {
	if c.DialTimeout <= 0 {
		c.DialTimeout = 30 * time.Second
	}
	if c.HandshakeTimeout <= 0 {
		c.HandshakeTimeout = 10 * time.Second
	}
	if c.Heartbeat <= 0 {
		c.Heartbeat = time.Second
	}
	if c.HeartbeatTimeout <= 0 {
		c.HeartbeatTimeout = 10 * c.Heartbeat
	}
	if c.MaxPendingHandshakes <= 0 {
		c.MaxPendingHandshakes = DefaultMaxPendingHandshakes
	}
	if c.AcceptRate <= 0 {
		c.AcceptRate = DefaultAcceptRate
	}
	if c.Wire.Decode == nil { // shared by the rank's connections
		c.Wire.Decode = wire.NewDecodeLimit(wire.DefaultDecodeSlots)
	}
	if c.MaxOutboxBytes <= 0 {
		c.MaxOutboxBytes = DefaultMaxOutboxBytes
	}
	if c.OutboxStall <= 0 {
		c.OutboxStall = c.HeartbeatTimeout
	}
	if c.MaxClientTasks <= 0 {
		c.MaxClientTasks = DefaultMaxClientTasks
	}
	if c.MaxClientBytes <= 0 {
		c.MaxClientBytes = DefaultMaxClientBytes
	}
	if c.MaxQueuedTasks <= 0 {
		c.MaxQueuedTasks = DefaultMaxQueuedTasks
	}
	if c.MaxQueuedBytes <= 0 {
		c.MaxQueuedBytes = DefaultMaxQueuedBytes
	}
	maxFrame := c.Wire.MaxFrame
	if maxFrame <= 0 {
		maxFrame = wire.DefaultMaxFrame
	}
	if c.MaxResultBytes <= 0 || c.MaxResultBytes > maxFrame-resultFraming {
		c.MaxResultBytes = maxFrame - resultFraming
	}
	return c
}

// Defaults of LinkConfig's limits on incoming connections. A listener
// serves at most fanout children and a few clients, so the limits are far
// above what a job needs and far below what exhausts a process.
const (
	DefaultMaxPendingHandshakes = 128
	DefaultAcceptRate           = 1000 // connections per second
	// DefaultMaxOutboxBytes bounds what a relay holds for one peer that
	// does not read.
	DefaultMaxOutboxBytes = 256 << 20
	// Admission bounds (LinkConfig.MaxClientTasks …), sized for a node
	// of 24 GiB that the server shares with worker ranks: a task in
	// flight costs the server about 300 bytes besides its body, and
	// every rank below it holds it too, so the server's share of the
	// node stays near 2 GiB with all clients at the bounds.
	DefaultMaxClientTasks = 1 << 20   // 1,048,576 tasks
	DefaultMaxClientBytes = 512 << 20 // of task bodies
	DefaultMaxQueuedTasks = 4 << 20
	DefaultMaxQueuedBytes = 1 << 30
)

// resultFraming is room left in a frame around a result's value: the
// record's id and length, the result's status, message, kernel and host.
const resultFraming = 1 << 10

// linkBuffer is the socket buffer size a link asks for, each way: with
// the kernel's autotuned default (16 KiB to start), maps of 1 MiB payloads
// ran at three quarters of the speed in process, the relay's reader
// stalling on every write (BenchmarkWorkloads/payload).
const linkBuffer = 4 << 20

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
}

// room reports whether n more bytes fit in the socket's send buffer, so
// that writing them cannot block however slowly the peer reads. Linux's
// buffer accounting counts overhead besides the payload: half the
// reported size is taken as room for payload.
func (l *link) room(n int64) bool {
	if l.raw == nil {
		return false
	}
	q, ok := unsent(l.raw)
	return ok && int64(q)+n < int64(l.sndbuf/2)
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

func handshake(nc net.Conn, cfg LinkConfig, me wire.Hello, dialer bool) (*link, error) {
	_ = nc.SetDeadline(time.Now().Add(cfg.HandshakeTimeout))
	raw := nc
	var err error
	if dialer {
		nc, err = cfg.TLS.Dial(nc)
	} else {
		nc, err = cfg.TLS.Accept(nc)
	}
	if err != nil {
		raw.Close()
		return nil, err
	}
	opts := cfg.Wire
	opts.SkipMAC = cfg.TLS != nil // TLS authenticates every record already
	fc := wire.NewConn(nc, opts)
	var peer wire.Hello
	if dialer {
		peer, err = wire.ClientHandshake(fc, cfg.Secret, me)
	} else {
		peer, err = wire.ServerHandshake(fc, cfg.Secret, me)
	}
	if err != nil {
		nc.Close()
		return nil, wire.TLSAlert(err)
	}
	_ = nc.SetDeadline(time.Time{})
	l := &link{nc: nc, fc: fc, peer: peer}
	if rc, size, ok := sendBuffer(raw); ok {
		l.raw, l.sndbuf = rc, size
	}
	l.seen()
	return l, nil
}

// dialLink dials addr, retrying until cfg.DialTimeout, and authenticates.
func dialLink(ctx context.Context, addr string, cfg LinkConfig, me wire.Hello) (*link, error) {
	cfg = cfg.withDefaults()
	ctx, cancel := context.WithTimeout(ctx, cfg.DialTimeout)
	defer cancel()
	dial := cfg.Dial
	if dial == nil {
		var d net.Dialer
		dial = func(ctx context.Context, addr string) (net.Conn, error) { return d.DialContext(ctx, "tcp", addr) }
	}
	backoff := 10 * time.Millisecond
	for {
		nc, err := dial(ctx, addr)
		if err == nil {
			if tc, ok := nc.(*net.TCPConn); ok {
				_ = tc.SetNoDelay(true)
				_ = tc.SetReadBuffer(linkBuffer)
				_ = tc.SetWriteBuffer(linkBuffer)
			}
			l, herr := handshake(nc, cfg, me, true)
			if herr == nil {
				return l, nil
			}
			if !retryable(herr) {
				return nil, fmt.Errorf("connect %s: %w", addr, herr)
			}
			err = herr
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("connect %s: %w (last: %v)", addr, ctx.Err(), err)
		case <-t.C:
		}
		backoff = min(2*backoff, 500*time.Millisecond)
	}
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

// retryable reports whether a failed handshake may succeed when tried
// again: the peer was busy, or closed or reset the connection before
// answering (a listener shedding a flood). A refusal of our proof, of our
// version or of our TLS is final.
func retryable(err error) bool {
	switch {
	case errors.Is(err, wire.ErrBusy):
		return true
	case errors.Is(err, wire.ErrAuth), errors.Is(err, wire.ErrVersion), errors.Is(err, wire.ErrTLS), errors.Is(err, wire.ErrRefused):
		return false
	}
	return errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET)
}

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
		if tc, ok := nc.(*net.TCPConn); ok {
			_ = tc.SetNoDelay(true)
			_ = tc.SetReadBuffer(linkBuffer)
			_ = tc.SetWriteBuffer(linkBuffer)
		}
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
