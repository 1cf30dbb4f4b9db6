package launcher

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
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
	return c
}

// link is one authenticated connection.
type link struct {
	nc       net.Conn
	fc       *wire.Conn
	peer     wire.Hello
	lastSeen atomic.Int64
	once     sync.Once
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
	fc := wire.NewConn(nc, cfg.Wire)
	_ = nc.SetDeadline(time.Now().Add(cfg.HandshakeTimeout))
	var peer wire.Hello
	var err error
	if dialer {
		peer, err = wire.ClientHandshake(fc, cfg.Secret, me)
	} else {
		peer, err = wire.ServerHandshake(fc, cfg.Secret, me)
	}
	if err != nil {
		nc.Close()
		return nil, err
	}
	_ = nc.SetDeadline(time.Time{})
	l := &link{nc: nc, fc: fc, peer: peer}
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
			}
			l, err := handshake(nc, cfg, me, true)
			if err != nil {
				return nil, fmt.Errorf("connect %s: %w", addr, err)
			}
			return l, nil
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
