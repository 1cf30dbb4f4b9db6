package launcher

import (
	"context"
	"io"
	"log/slog"
	"net"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/qlaunch/qlaunch/kernels"
	"github.com/qlaunch/qlaunch/launcher/client"
	"github.com/qlaunch/qlaunch/launcher/wire"
)

// TestAcceptGateRate: the bucket holds a burst of MaxPendingHandshakes and
// refills at AcceptRate; a connection over it is refused as busy.
func TestAcceptGateRate(t *testing.T) {
	t0 := time.Unix(1000, 0)
	g := newAcceptGate(LinkConfig{MaxPendingHandshakes: 4, AcceptRate: 10}, t0)
	for _, c := range []struct {
		at   time.Duration
		want bool
	}{
		{0, true}, {0, true}, {0, true}, {0, true}, {0, false}, // burst of 4
		{50 * time.Millisecond, false}, // half a token
		{100 * time.Millisecond, true}, // one token
		{100 * time.Millisecond, false},
		{time.Second, true}, {time.Second, true}, {time.Second, true}, {time.Second, true}, {time.Second, false},
	} {
		release, why := g.admit(nil, t0.Add(c.at))
		if (release != nil) != c.want {
			t.Fatalf("at %v: admitted %v (%q), want %v", c.at, release != nil, why, c.want)
		}
		if release != nil {
			release()
		} else if !strings.HasPrefix(why, wire.BusyText) {
			t.Fatalf("refusal %q does not start with %q", why, wire.BusyText)
		}
	}
	if got := g.refused.Load(); got != 4 {
		t.Fatalf("refused %d, want 4", got)
	}
}

// TestServeListenerPendingBound floods a real listener with silent
// connections: at no moment do more than MaxPendingHandshakes handshakes
// run, each connection over the bound evicts the oldest, and every
// handshake goroutine ends.
func TestServeListenerPendingBound(t *testing.T) {
	const limit, flood = 8, 300
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var inFlight, peak atomic.Int64
	started := make(chan struct{}, flood)
	quit := make(chan struct{})
	var wg sync.WaitGroup
	cfg := LinkConfig{MaxPendingHandshakes: limit, AcceptRate: 1e9}.withDefaults()
	wg.Go(func() {
		serveListener(ln, cfg, slog.New(slog.DiscardHandler), quit, wg.Go, func(nc net.Conn, release func() bool) {
			n := inFlight.Add(1)
			for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
			}
			started <- struct{}{}
			io.Copy(io.Discard, nc) // a silent peer: until evicted or closed
			inFlight.Add(-1)
			release()
			nc.Close()
		})
	})
	conns := make([]net.Conn, 0, flood)
	for range flood {
		nc, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, nc)
	}
	for range flood {
		<-started
	}
	// Every connection but the last limit was evicted: its read ends.
	evicted := 0
	for _, nc := range conns[:flood-limit] {
		nc.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := nc.Read(make([]byte, 1)); err == io.EOF {
			evicted++
		}
	}
	if evicted != flood-limit || peak.Load() > limit {
		t.Fatalf("%d evicted, peak %d handshakes; want %d and at most %d", evicted, peak.Load(), flood-limit, limit)
	}
	for _, nc := range conns {
		nc.Close()
	}
	ln.Close()
	close(quit)
	wg.Wait()
	if n := inFlight.Load(); n != 0 {
		t.Fatalf("%d handshakes still running", n)
	}
	t.Logf("peak %d handshakes of %d connections; %d evicted", peak.Load(), flood, evicted)
}

// handshakeGoroutines counts the goroutines inside handshake.
func handshakeGoroutines() int {
	buf := make([]byte, 1<<22)
	buf = buf[:runtime.Stack(buf, true)]
	n := 0
	for g := range strings.SplitSeq(string(buf), "\n\n") {
		if strings.Contains(g, "launcher.handshake(") {
			n++
		}
	}
	return n
}

// TestServerFloodBound floods a server with silent connections and a few
// garbage ones while a client connects: the handshake goroutines never
// exceed the bound, the client is served, and the goroutines end.
func TestServerFloodBound(t *testing.T) {
	const limit, flood = 16, 400
	secret, err := wire.GenerateSecret()
	if err != nil {
		t.Fatal(err)
	}
	reg, err := kernels.NewRegistry(kernels.Builtin()...)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	link := LinkConfig{Secret: secret, MaxPendingHandshakes: limit, AcceptRate: 1e9}
	ctx, cancel := context.WithCancel(t.Context())
	ready := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		RunServer(ctx, ServerConfig{NodeConfig: NodeConfig{Registry: reg, Link: link}, Listener: ln, ExpectRanks: 2, Ready: ready})
	})
	wg.Go(func() {
		RunWorker(ctx, WorkerConfig{NodeConfig: NodeConfig{Rank: 1, Parent: ln.Addr().String(), Registry: reg, Link: link}})
	})
	<-ready
	base := runtime.NumGoroutine()
	var peak atomic.Int64
	sample := func() {
		if n := int64(handshakeGoroutines()); n > peak.Load() {
			peak.Store(n)
		}
	}
	conns := make([]net.Conn, 0, flood)
	for i := range flood {
		nc, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, nc)
		if i%8 == 0 {
			sample()
		}
	}
	c, err := client.Dial(t.Context(), ln.Addr().String(), client.Options{Secret: secret})
	if err != nil {
		t.Fatalf("client during the flood: %v", err)
	}
	f, err := c.Submit(t.Context(), kernels.Task{Kernel: "echo", Args: []string{"served"}})
	if err != nil {
		t.Fatal(err)
	}
	if v, err := c.Wait(t.Context(), f); err != nil || string(v[0]) != "served" {
		t.Fatalf("task during the flood: %q, %v", v, err)
	}
	sample()
	if p := peak.Load(); p > limit {
		t.Fatalf("%d handshake goroutines at once, limit %d", p, limit)
	}
	for _, nc := range conns {
		nc.Close()
	}
	c.Close()
	// The flood's goroutines end: back to the baseline, within a bound.
	deadline := time.Now().Add(10 * time.Second)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for handshakeGoroutines() > 0 || runtime.NumGoroutine() > base+4 {
		if time.Now().After(deadline) {
			t.Fatalf("%d handshake goroutines, %d goroutines (baseline %d) 10 s after the flood", handshakeGoroutines(), runtime.NumGoroutine(), base)
		}
		<-tick.C
	}
	t.Logf("peak %d handshake goroutines during a %d-connection flood (limit %d)", peak.Load(), flood, limit)
	cancel()
	wg.Wait()
}
