// Package launchertest starts whole qlaunch trees inside a test process,
// over loopback TCP, in the manner of net/http/httptest and etcd-io/raft's
// rafttest: Start builds a server, managers and worker ranks of any shape
// (unbalanced included), returns once every rank has joined (the server's
// readiness event, never a sleep), and stops them all when the test ends.
// A test can kill a rank, drop the link to its parent, or freeze it (it
// stays connected but falls silent, like a hung process).
package launchertest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/qlaunch/qlaunch/kernels"
	"github.com/qlaunch/qlaunch/launcher"
	"github.com/qlaunch/qlaunch/launcher/client"
	"github.com/qlaunch/qlaunch/launcher/wire"
)

// Shape is one level of a tree: worker ranks (their slot counts) and
// sub-managers side by side. The top level is the server.
type Shape struct {
	Workers  []int
	Managers []Shape
}

// Ranks returns the number of ranks of the shape, its top included.
func (s Shape) Ranks() int {
	n := 1 + len(s.Workers)
	for _, m := range s.Managers {
		n += m.Ranks()
	}
	return n
}

// Options adjust a tree.
type Options struct {
	// Kernels are registered next to the built-in ones.
	Kernels []kernels.Kernel
	// Heartbeat and HeartbeatTimeout of every link (zero: defaults).
	Heartbeat, HeartbeatTimeout time.Duration
	// Wire options of every link (compression, frame limit).
	Wire wire.Options
	// Monitor, if set, is given to the server.
	Monitor *launcher.Monitor
	// TLS, if set, runs every link (clients' included) inside TLS.
	TLS *wire.TLS
}

// Tree is a running in-process tree.
type Tree struct {
	t      testing.TB
	Addr   string // the server's client address
	Secret wire.Secret
	Ranks  []*Rank // by rank number; 0 is the server
	opts   Options
	reg    *kernels.Registry
	wg     sync.WaitGroup
	stop   context.CancelFunc
}

// Rank is one rank of a tree.
type Rank struct {
	Rank   int
	Role   string // "server", "manager" or "worker"
	Parent int    // -1 for the server
	Slots  int
	Host   string

	cancel context.CancelFunc
	done   chan struct{}
	err    error
	mu     sync.Mutex
	conns  []*Conn // connections this rank dialled (its parent link first)
}

// Done is closed once the rank's Run function returned.
func (r *Rank) Done() <-chan struct{} { return r.done }

// Err is what the rank's Run function returned (valid after Done).
func (r *Rank) Err() error { return r.err }

// Conn is a connection a rank dialled, which a test can drop.
type Conn struct {
	net.Conn
}

// Start starts a tree of the given shape and returns once every rank has
// joined. Every rank is stopped, and waited for, when the test ends.
func Start(t testing.TB, shape Shape, opts ...Options) *Tree {
	t.Helper()
	var o Options
	if len(opts) > 0 {
		o = opts[0]
	}
	reg, err := kernels.NewRegistry(append(kernels.Builtin(), o.Kernels...)...)
	if err != nil {
		t.Fatalf("launchertest: registry: %v", err)
	}
	secret, err := wire.GenerateSecret()
	if err != nil {
		t.Fatalf("launchertest: secret: %v", err)
	}
	ctx, stop := context.WithCancel(context.Background())
	tr := &Tree{t: t, Secret: secret, opts: o, reg: reg, stop: stop}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("launchertest: %v", err)
	}
	tr.Addr = ln.Addr().String()
	ready := make(chan struct{})
	server := &Rank{Rank: 0, Role: "server", Parent: -1, Host: "host0"}
	tr.Ranks = append(tr.Ranks, server)
	tr.run(ctx, server, func(ctx context.Context) error {
		return launcher.RunServer(ctx, launcher.ServerConfig{
			NodeConfig: launcher.NodeConfig{Rank: 0, Host: server.Host, Registry: reg, Link: tr.link(server),
				Logger: tr.logger(), Monitor: o.Monitor},
			Listener: ln, ExpectRanks: shape.Ranks(), Ready: ready,
		})
	})
	tr.startLevel(ctx, shape, 0, tr.Addr)
	t.Cleanup(tr.Close)
	timer := time.NewTimer(30 * time.Second)
	defer timer.Stop()
	select {
	case <-ready:
	case <-server.done:
		t.Fatalf("launchertest: server stopped before ready: %v", server.err)
	case <-timer.C:
		t.Fatalf("launchertest: tree of %d ranks not ready after 30 s", shape.Ranks())
	}
	return tr
}

func (tr *Tree) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(tr.t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// node is the NodeConfig of rank r below the rank listening at parent.
func (tr *Tree) node(r *Rank, parent string) launcher.NodeConfig {
	return launcher.NodeConfig{Rank: r.Rank, Host: r.Host, Parent: parent, Registry: tr.reg, Link: tr.link(r), Logger: tr.logger()}
}

func (tr *Tree) link(r *Rank) launcher.LinkConfig {
	return launcher.LinkConfig{
		Secret: tr.Secret, Wire: tr.opts.Wire,
		Heartbeat: tr.opts.Heartbeat, HeartbeatTimeout: tr.opts.HeartbeatTimeout,
		DialTimeout: 20 * time.Second, TLS: tr.opts.TLS,
		Dial: func(ctx context.Context, addr string) (net.Conn, error) {
			var d net.Dialer
			nc, err := d.DialContext(ctx, "tcp", addr)
			if err != nil {
				return nil, err
			}
			c := &Conn{Conn: nc}
			r.mu.Lock()
			r.conns = append(r.conns, c)
			r.mu.Unlock()
			return c, nil
		},
	}
}

func (tr *Tree) run(ctx context.Context, r *Rank, fn func(context.Context) error) {
	ctx, r.cancel = context.WithCancel(ctx)
	r.done = make(chan struct{})
	tr.wg.Go(func() {
		defer close(r.done)
		r.err = fn(ctx)
	})
}

func (tr *Tree) startLevel(ctx context.Context, s Shape, parent int, parentAddr string) {
	for _, slots := range s.Workers {
		r := &Rank{Rank: len(tr.Ranks), Role: "worker", Parent: parent, Slots: slots}
		r.Host = fmt.Sprintf("host%d", r.Rank)
		tr.Ranks = append(tr.Ranks, r)
		tr.run(ctx, r, func(ctx context.Context) error {
			return launcher.RunWorker(ctx, launcher.WorkerConfig{Slots: slots, NodeConfig: tr.node(r, parentAddr)})
		})
	}
	for _, m := range s.Managers {
		r := &Rank{Rank: len(tr.Ranks), Role: "manager", Parent: parent}
		r.Host = fmt.Sprintf("host%d", r.Rank)
		tr.Ranks = append(tr.Ranks, r)
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			tr.t.Fatalf("launchertest: %v", err)
		}
		tr.run(ctx, r, func(ctx context.Context) error {
			return launcher.RunManager(ctx, launcher.ManagerConfig{NodeConfig: tr.node(r, parentAddr), Listeners: []net.Listener{ln}})
		})
		tr.startLevel(ctx, m, r.Rank, ln.Addr().String())
	}
}

// Client returns a client of the tree, closed when the test ends.
func (tr *Tree) Client(opts ...client.Options) *client.Client {
	tr.t.Helper()
	var o client.Options
	if len(opts) > 0 {
		o = opts[0]
	}
	o.Secret = tr.Secret
	if o.TLS == nil {
		o.TLS = tr.opts.TLS
	}
	if o.Wire == (wire.Options{}) {
		o.Wire = tr.opts.Wire
	}
	c, err := client.Dial(context.Background(), tr.Addr, o)
	if err != nil {
		tr.t.Fatalf("launchertest: client: %v", err)
	}
	tr.t.Cleanup(func() { c.Close() })
	return c
}

// Kill stops rank n abruptly: its connections close with no goodbye, as
// when its process dies, and it returns.
func (tr *Tree) Kill(n int) {
	r := tr.Ranks[n]
	r.mu.Lock()
	for _, c := range r.conns {
		c.Close()
	}
	r.mu.Unlock()
	r.cancel()
	<-r.done
}

// DropLink closes the connection rank n dialled to its parent.
func (tr *Tree) DropLink(n int) {
	r := tr.Ranks[n]
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.conns) > 0 {
		r.conns[0].Close()
	}
}

// Close stops the tree the way SIGINT to the server does and waits for
// every rank; a rank still running after 15 s fails the test.
func (tr *Tree) Close() {
	if tr.stop == nil {
		return
	}
	tr.Ranks[0].cancel()
	done := make(chan struct{})
	go func() { tr.wg.Wait(); close(done) }()
	timer := time.NewTimer(15 * time.Second)
	defer timer.Stop()
	select {
	case <-done:
	case <-timer.C:
		var running []int
		for _, r := range tr.Ranks {
			select {
			case <-r.done:
			default:
				running = append(running, r.Rank)
			}
		}
		tr.t.Errorf("launchertest: ranks %v still running 15 s after shutdown", running)
		tr.stop()
		<-done
	}
	tr.stop()
	tr.stop = nil
	for _, r := range tr.Ranks[1:] {
		if r.err != nil && !errors.Is(r.err, launcher.ErrShutdown) && !errors.Is(r.err, launcher.ErrParentLost) && !errors.Is(r.err, context.Canceled) {
			tr.t.Errorf("launchertest: rank %d (%s) returned %v", r.Rank, r.Role, r.err)
		}
	}
}
