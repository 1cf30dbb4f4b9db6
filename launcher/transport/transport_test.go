package transport

import (
	"context"
	"errors"
	"net"
	"net/http"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/qlaunch/qlaunch/launcher/wire"
	"github.com/qlaunch/qlaunch/topology"
)

func secret(t *testing.T) wire.Secret {
	t.Helper()
	s, err := wire.GenerateSecret()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// serve accepts connections on a loopback listener and answers each with
// answer, in its own goroutine, until the test ends.
func serve(t *testing.T, answer func(nc net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			go answer(nc)
		}
	}()
	return ln.Addr().String()
}

// qlaunchPeer answers as a qlaunch server with secret s.
func qlaunchPeer(s wire.Secret) func(net.Conn) {
	return func(nc net.Conn) {
		Tune(nc)
		c, err := Handshake(nc, Config{Secret: s}, wire.Hello{Role: "server", Rank: 0, Host: "srv"}, false)
		if err != nil {
			return
		}
		// Echo one frame, so that the dialler can check the link works.
		k, b, err := c.FC.ReadFrame()
		if err == nil && c.FC.WriteFrame(k, b) == nil {
			_ = c.FC.Flush()
		}
		_, _, _ = c.FC.ReadFrame() // until the dialler closes
		c.NC.Close()
	}
}

// counting wraps net.Dialer, counting the attempts; the first fail of
// them are refused without dialling.
func counting(attempts *atomic.Int32, fail int32) func(context.Context, string) (net.Conn, error) {
	var d net.Dialer
	return func(ctx context.Context, addr string) (net.Conn, error) {
		if attempts.Add(1) <= fail {
			return nil, &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
		}
		return d.DialContext(ctx, "tcp", addr)
	}
}

func TestDialHandshakesAndCarriesFrames(t *testing.T) {
	s := secret(t)
	addr := serve(t, qlaunchPeer(s))
	var attempts atomic.Int32
	c, err := Dial(t.Context(), addr, Config{Secret: s, Dial: counting(&attempts, 2)}, wire.Hello{Role: "worker:child", Rank: 3, Host: "w"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.NC.Close()
	if attempts.Load() != 3 {
		t.Errorf("%d attempts, want 3: a refused dial is tried again", attempts.Load())
	}
	if c.Peer.Role != "server" || c.Peer.Host != "srv" {
		t.Errorf("peer %+v", c.Peer)
	}
	if err := c.FC.WriteFrame(wire.KindHeartbeat, nil); err != nil {
		t.Fatal(err)
	}
	if err := c.FC.Flush(); err != nil {
		t.Fatal(err)
	}
	if k, _, err := c.FC.ReadFrame(); err != nil || k != wire.KindHeartbeat {
		t.Fatalf("echo: %v, %v", k, err)
	}
	if _, _, ok := SendBuffer(c.Raw); !ok {
		t.Error("the socket under a loopback link is not known")
	}
}

func TestFailFastTriesARefusedDialOnce(t *testing.T) {
	var attempts atomic.Int32
	_, err := Dial(t.Context(), "127.0.0.1:1", Config{Secret: secret(t), FailFast: true, Dial: counting(&attempts, 1)}, wire.Hello{Role: "client"})
	if !errors.Is(err, syscall.ECONNREFUSED) || attempts.Load() != 1 {
		t.Fatalf("Dial: %v after %d attempts; want connection refused after 1", err, attempts.Load())
	}
}

func TestWrongSecretIsFinal(t *testing.T) {
	addr := serve(t, qlaunchPeer(secret(t)))
	var attempts atomic.Int32
	_, err := Dial(t.Context(), addr, Config{Secret: secret(t), Dial: counting(&attempts, 0)}, wire.Hello{Role: "worker:child"})
	if !errors.Is(err, wire.ErrAuth) || attempts.Load() != 1 {
		t.Fatalf("Dial: %v after %d attempts; want ErrAuth after 1", err, attempts.Load())
	}
}

func TestBusyIsTriedAgainEvenFailingFast(t *testing.T) {
	s := secret(t)
	var served atomic.Int32
	addr := serve(t, func(nc net.Conn) {
		if served.Add(1) == 1 {
			_ = wire.Refuse(nc, wire.BusyText+" try later")
			nc.Close()
			return
		}
		qlaunchPeer(s)(nc)
	})
	c, err := Dial(t.Context(), addr, Config{Secret: s, FailFast: true}, wire.Hello{Role: "client"})
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	c.NC.Close()
	if served.Load() != 2 {
		t.Fatalf("%d connections, want 2 (busy, then served)", served.Load())
	}
}

func TestNotQlaunchIsNamedAndFinal(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{ReadHeaderTimeout: time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	var attempts atomic.Int32
	_, err = Dial(t.Context(), ln.Addr().String(), Config{Secret: secret(t), Dial: counting(&attempts, 0)}, wire.Hello{Role: "worker:child"})
	answered, ok := Answered(err)
	if !errors.Is(err, ErrNotQlaunch) || !ok || answered != "HTTP" || attempts.Load() != 1 {
		t.Fatalf("Dial: %v (answered %q) after %d attempts; want ErrNotQlaunch, HTTP, 1 attempt", err, answered, attempts.Load())
	}
}

func TestDialGivesUpAtTheTimeout(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	var attempts atomic.Int32
	dial := func(ctx context.Context, addr string) (net.Conn, error) {
		if attempts.Add(1) == 3 {
			cancel() // the caller gives up meanwhile
		}
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	}
	_, err := Dial(ctx, "127.0.0.1:1", Config{Secret: secret(t), Dial: dial}, wire.Hello{Role: "worker:child"})
	if !errors.Is(err, context.Canceled) || attempts.Load() != 3 {
		t.Fatalf("Dial: %v after %d attempts; want context.Canceled after 3", err, attempts.Load())
	}
}

// TestDefaultsAreTheTopologys: a link configured from no topology at all
// (a client, a manual-mode rank) and one from an empty topology file get
// the same settings: the defaults live in one place.
func TestDefaultsAreTheTopologys(t *testing.T) {
	r := topology.Default().Runtime
	d := Config{}.WithDefaults()
	if d.Heartbeat != r.Heartbeat || d.HandshakeTimeout != r.HandshakeTimeout ||
		d.MaxPendingHandshakes != r.MaxPendingHandshakes || d.AcceptRate != float64(r.AcceptRate) ||
		d.MaxOutboxBytes != r.OutboxBytes {
		t.Errorf("link defaults %+v differ from the topology's %+v", d, r)
	}
	if r.CompressThreshold != 0 || d.Wire.Threshold != 0 {
		t.Errorf("compression threshold: topology %d, link %d; want 0 for both (the wire's default, %d)", r.CompressThreshold, d.Wire.Threshold, wire.DefaultThreshold)
	}
}
