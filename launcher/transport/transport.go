// Package transport is qlaunch's one link layer: how any end of a
// connection (a rank of the tree, or a client) configures, dials,
// tunes and authenticates it. Config holds every setting of a link and
// its defaults (WithDefaults); Dial connects with backoff, Handshake runs
// TLS and the job-secret handshake on a connection either end made, Tune
// sizes a socket's buffers. What travels on a link afterwards is the
// wire package's (wire.Conn, wire.Outbox); what a link means to a rank
// (heartbeats, loss) is the launcher's.
//
// Nothing here holds state between calls: a Conn belongs to whoever
// dialled or accepted it.
package transport

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"
	"time"
	"unicode"

	"github.com/qlaunch/qlaunch/launcher/wire"
	"github.com/qlaunch/qlaunch/topology"
)

// Config configures the connections of a rank or a client.
type Config struct {
	Secret wire.Secret
	Wire   wire.Options
	// DialTimeout bounds how long Dial keeps retrying to reach a peer;
	// zero means DefaultDialTimeout.
	DialTimeout time.Duration
	// FailFast makes Dial try again only while the peer answers that it
	// is busy (a listener shedding a flood): a refused connection or a
	// failed handshake fails at once. A client has nothing to wait for;
	// a rank waits for its parent to come up.
	FailFast bool
	// HandshakeTimeout bounds the authentication of one connection; zero
	// means DefaultHandshakeTimeout.
	HandshakeTimeout time.Duration
	// Heartbeat is the interval of liveness messages on idle links; zero
	// means DefaultHeartbeat. A peer silent for HeartbeatTimeout (zero:
	// 10 × Heartbeat) is taken as lost.
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
	// launcher/admission.go). Zero means the Default of each.
	MaxClientTasks int
	MaxClientBytes int64
	MaxQueuedTasks int
	MaxQueuedBytes int64
	// Dial, if set, replaces net.Dialer (a test seam: launchertest wraps
	// connections to drop or freeze them).
	Dial func(ctx context.Context, addr string) (net.Conn, error)
}

// Defaults of Config. Those a topology sets are the topology's defaults
// (an empty topology file and no topology at all mean the same); the
// compression threshold's is the wire's (wire.DefaultThreshold).
const (
	DefaultDialTimeout      = 30 * time.Second
	DefaultHandshakeTimeout = topology.DefaultHandshakeTimeout
	DefaultHeartbeat        = topology.DefaultHeartbeat
	// A listener serves at most fanout children and a few clients, so the
	// limits on incoming connections are far above what a job needs and
	// far below what exhausts a process.
	DefaultMaxPendingHandshakes = topology.DefaultMaxPendingHandshakes
	DefaultAcceptRate           = topology.DefaultAcceptRate // connections per second
	// DefaultMaxOutboxBytes bounds what a relay holds for one peer that
	// does not read.
	DefaultMaxOutboxBytes = topology.DefaultOutboxBytes
	// Admission bounds (Config.MaxClientTasks …), sized for a node of 24
	// GiB that the server shares with worker ranks: a task in flight
	// costs the server about 300 bytes besides its body, and every rank
	// below it holds it too, so the server's share of the node stays near
	// 2 GiB with all clients at the bounds.
	DefaultMaxClientTasks = topology.DefaultMaxClientTasks
	DefaultMaxClientBytes = topology.DefaultMaxClientBytes
	DefaultMaxQueuedTasks = topology.DefaultMaxQueuedTasks
	DefaultMaxQueuedBytes = topology.DefaultMaxQueuedBytes
)

// resultFraming is room left in a frame around a result's value: the
// record's id and length, the result's status, message, kernel and host.
const resultFraming = 1 << 10

// WithDefaults returns c with every zero setting at its default.
func (c Config) WithDefaults() Config {
	if c.DialTimeout <= 0 {
		c.DialTimeout = DefaultDialTimeout
	}
	if c.HandshakeTimeout <= 0 {
		c.HandshakeTimeout = DefaultHandshakeTimeout
	}
	if c.Heartbeat <= 0 {
		c.Heartbeat = DefaultHeartbeat
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

// SocketBuffer is the socket buffer size a link asks for, each way: with
// the kernel's autotuned default (16 KiB to start), maps of 1 MiB payloads
// ran at three quarters of the speed in process, the relay's reader
// stalling on every write (BenchmarkWorkloads/payload).
const SocketBuffer = 4 << 20

// Tune sets a TCP connection's options for a link: no Nagle delay (frames
// are batched by the writer already) and SocketBuffer each way. Other
// connections are left alone.
func Tune(nc net.Conn) {
	if tc, ok := nc.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
		_ = tc.SetReadBuffer(SocketBuffer)
		_ = tc.SetWriteBuffer(SocketBuffer)
	}
}

// Conn is one authenticated connection.
type Conn struct {
	NC   net.Conn // the connection, inside TLS when TLS is on
	Raw  net.Conn // the socket under NC
	FC   *wire.Conn
	Peer wire.Hello // what the peer said it is
}

// ErrNotQlaunch is wrapped by the error of a handshake whose peer
// answered in another protocol (an HTTP server, SSH, …).
var ErrNotQlaunch = errors.New("not a qlaunch peer")

// Handshake runs TLS (cfg.TLS) and the job-secret handshake on nc, as the
// end that dialled (dialer) or accepted it, within cfg.HandshakeTimeout
// (zero: the default). On failure nc is closed. A dialler whose peer
// answered in another protocol gets an error wrapping ErrNotQlaunch that
// names the protocol.
func Handshake(nc net.Conn, cfg Config, me wire.Hello, dialer bool) (*Conn, error) {
	timeout := cfg.HandshakeTimeout
	if timeout <= 0 {
		timeout = DefaultHandshakeTimeout
	}
	_ = nc.SetDeadline(time.Now().Add(timeout))
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
	var (
		fc    *wire.Conn
		first *firstBytes
		peer  wire.Hello
	)
	opts := cfg.Wire
	opts.SkipMAC = cfg.TLS != nil // TLS authenticates every record already
	if dialer {
		first = &firstBytes{r: nc}
		fc = wire.NewConn(sniffing(nc, first), opts)
		peer, err = wire.ClientHandshake(fc, cfg.Secret, me)
	} else {
		fc = wire.NewConn(nc, opts)
		peer, err = wire.ServerHandshake(fc, cfg.Secret, me)
	}
	if err != nil {
		nc.Close()
		if first != nil {
			if nq := first.notQlaunch(err); nq != nil {
				return nil, nq
			}
		}
		return nil, wire.TLSAlert(err)
	}
	_ = nc.SetDeadline(time.Time{})
	return &Conn{NC: nc, Raw: raw, FC: fc, Peer: peer}, nil
}

// Dial dials addr, tunes and authenticates the connection, trying again
// with backoff until cfg.DialTimeout (zero: the default) or ctx ends:
// while the peer is busy, and with FailFast off while it refuses or
// drops the connection. Its errors read "connect ADDR: …".
func Dial(ctx context.Context, addr string, cfg Config, me wire.Hello) (*Conn, error) {
	timeout := cfg.DialTimeout
	if timeout <= 0 {
		timeout = DefaultDialTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	dial := cfg.Dial
	if dial == nil {
		var d net.Dialer
		dial = func(ctx context.Context, addr string) (net.Conn, error) { return d.DialContext(ctx, "tcp", addr) }
	}
	var backoff time.Duration
	for {
		nc, err := dial(ctx, addr)
		if err != nil && cfg.FailFast {
			return nil, fmt.Errorf("connect %s: %w", addr, err)
		}
		if err == nil {
			Tune(nc)
			c, herr := Handshake(nc, cfg, me, true)
			if herr == nil {
				return c, nil
			}
			if !retryable(herr, cfg.FailFast) {
				return nil, fmt.Errorf("connect %s: %w", addr, herr)
			}
			err = herr
		}
		backoff = dialBackoff(backoff, nc != nil)
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("connect %s: %w (last: %v)", addr, ctx.Err(), err)
		case <-t.C:
		}
	}
}

// The waits of Dial between tries double from a floor up to maxBackoff. A
// peer that refused the connection is not listening yet: it is starting,
// as the dialling rank is, and will listen within a process start, so the
// floor is small (a rank that started first waited 10 ms then 20 ms, most
// of its parent's start). A peer that answered but was busy, or dropped
// the connection, sheds a flood of connections: trying it again soon would
// add to the flood.
const (
	refusedBackoff = 50 * time.Microsecond
	busyBackoff    = 10 * time.Millisecond
	maxBackoff     = 500 * time.Millisecond
)

// dialBackoff is the wait after a failed try that waited last before it;
// answered says whether the peer accepted the connection.
func dialBackoff(last time.Duration, answered bool) time.Duration {
	floor := refusedBackoff
	if answered {
		floor = busyBackoff
	}
	return min(max(2*last, floor), maxBackoff)
}

// retryable reports whether a failed handshake may succeed when tried
// again: the peer was busy, or (unless failFast) closed or reset the
// connection before answering (a listener shedding a flood). A refusal of
// our proof, of our version or of our TLS is final.
func retryable(err error, failFast bool) bool {
	switch {
	case errors.Is(err, wire.ErrBusy):
		return true
	case failFast, errors.Is(err, wire.ErrAuth), errors.Is(err, wire.ErrVersion), errors.Is(err, wire.ErrTLS), errors.Is(err, wire.ErrRefused), errors.Is(err, ErrNotQlaunch):
		return false
	}
	return errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET)
}

// sniffing returns nc with its reads going through first. Only reads
// do: a TCP connection's writes stay its own, writev included (the
// embedded *net.TCPConn brings net.Buffers' fast path along).
func sniffing(nc net.Conn, first *firstBytes) io.ReadWriter {
	if tc, ok := nc.(*net.TCPConn); ok {
		return sniffTCP{tc, first}
	}
	return struct {
		io.Reader
		io.Writer
	}{first, nc}
}

type sniffTCP struct {
	*net.TCPConn
	first *firstBytes
}

func (s sniffTCP) Read(p []byte) (int, error) { return s.first.Read(p) }

// firstBytes reads through r and keeps the first bytes read, so that a
// failed handshake can say what answered.
type firstBytes struct {
	r   io.Reader
	buf [16]byte
	n   int
}

func (f *firstBytes) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	if f.n < len(f.buf) {
		f.n += copy(f.buf[f.n:], p[:n])
	}
	return n, err
}

// what names the protocol the first bytes read belong to, or "" when
// nothing was read.
func (f *firstBytes) what() string {
	b := f.buf[:f.n]
	switch {
	case len(b) == 0:
		return ""
	case bytes.HasPrefix(b, []byte("HTTP/")):
		return "HTTP"
	case bytes.HasPrefix(b, []byte("SSH-")):
		return "SSH"
	case len(b) >= 3 && (b[0] == 0x15 || b[0] == 0x16) && b[1] == 3:
		return "TLS"
	}
	printable := strings.Map(func(r rune) rune {
		if r < 0x80 && unicode.IsPrint(r) {
			return r
		}
		return -1
	}, string(b))
	if len(printable) == len(b) {
		return fmt.Sprintf("%q", b)
	}
	return fmt.Sprintf("bytes % x", b)
}

// notQlaunch returns an error wrapping ErrNotQlaunch when the failed
// handshake's peer answered in another protocol, or nil.
func (f *firstBytes) notQlaunch(err error) error {
	if !errors.Is(err, wire.ErrBadFrame) && !errors.Is(err, wire.ErrFrameTooLarge) && !errors.Is(err, wire.ErrVersion) {
		return nil
	}
	w := f.what()
	if w == "" || w == "TLS" {
		return nil // TLS is told apart by the wire's own check (wire.TLSAlert)
	}
	return &notQlaunchError{answered: w}
}

// notQlaunchError is a peer that answered in another protocol.
type notQlaunchError struct{ answered string }

func (e *notQlaunchError) Error() string {
	return fmt.Sprintf("%v (it answered %s)", ErrNotQlaunch, e.answered)
}

func (e *notQlaunchError) Unwrap() error { return ErrNotQlaunch }

// Answered returns what a peer that is not qlaunch answered ("HTTP",
// "SSH", its first bytes), if err says so.
func Answered(err error) (string, bool) {
	var nq *notQlaunchError
	if errors.As(err, &nq) {
		return nq.answered, true
	}
	return "", false
}

// FromTopology is the one translation of a topology's [runtime] settings
// (with any command-line flags already written over them) into a link's:
// every rank of every mode, and a client with topology.Default(), gets
// its link settings here. Zero settings stay zero (WithDefaults fills
// them); the secret, TLS and dial timeout are the caller's.
func FromTopology(r topology.Runtime) (Config, error) {
	c := Config{
		Heartbeat: r.Heartbeat, HeartbeatTimeout: r.HeartbeatTimeout, HandshakeTimeout: r.HandshakeTimeout,
		MaxPendingHandshakes: r.MaxPendingHandshakes, AcceptRate: float64(r.AcceptRate),
		MaxOutboxBytes: r.OutboxBytes, OutboxStall: r.OutboxStall, MaxResultBytes: r.MaxResultBytes,
		MaxClientTasks: r.MaxClientTasks, MaxClientBytes: r.MaxClientBytes,
		MaxQueuedTasks: r.MaxQueuedTasks, MaxQueuedBytes: r.MaxQueuedBytes,
	}
	if err := c.Wire.Compression.UnmarshalText([]byte(r.Compression)); err != nil {
		return c, fmt.Errorf("compression: %w", err)
	}
	c.Wire.Threshold = r.CompressThreshold // 0: the wire's default
	return c, nil
}
