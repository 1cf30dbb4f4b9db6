package reliability_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/qlaunch/qlaunch/kernels"
	"github.com/qlaunch/qlaunch/launcher/wire"
	"github.com/qlaunch/qlaunch/reliability"
)

// handshakeTimeout is the runtime's bound on a connection's handshake
// (launcher.LinkConfig's default; --handshake-timeout sets it).
const handshakeTimeout = 10 * time.Second

// recorder keeps what is written through a connection.
type recorder struct {
	net.Conn
	w bytes.Buffer
}

func (r *recorder) Write(p []byte) (int, error) { r.w.Write(p); return r.Conn.Write(p) }

func frame(kind wire.Kind, length uint32, payload []byte) []byte {
	b := binary.BigEndian.AppendUint32(nil, length)
	return append(append(b, byte(kind), 0), payload...)
}

// markerSubmit is a submit frame whose task would create dir/pwned-NAME
// if it ever ran.
func markerSubmit(dir, name string) []byte {
	wt := wire.Task{Kernel: "exec", Args: []string{"--", "sh", "-c", "touch " + filepath.Join(dir, "pwned-"+name)}, LogDepth: -1}
	body := wire.AppendRecord(nil, 1, wire.AppendTask(nil, &wt))
	return frame(wire.KindSubmit, uint32(len(body)), body)
}

// closedWithin reads nc until the peer closes it and returns how long that
// took, or fails after bound.
func closedWithin(t *testing.T, nc net.Conn, bound time.Duration) time.Duration {
	t.Helper()
	t0 := time.Now()
	nc.SetReadDeadline(t0.Add(bound))
	_, err := io.Copy(io.Discard, nc)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("connection still open after %v", bound)
	}
	return time.Since(t0)
}

// TestHostileInput sends malformed, foreign and replayed input to the
// server and to both ports of a manager: each connection is closed, the
// runtime goes on, and no unauthenticated task runs.
func TestHostileInput(t *testing.T) {
	t.Parallel()
	rec := newRecord(t, "hostile frames, versions, replays")
	r := newTree(t)
	r.flat(1)
	args := r.procs[0].cmd.Args
	var mport, wport string
	for i, a := range args[:len(args)-1] {
		switch a {
		case "-p":
			mport = args[i+1]
		case "-w":
			wport = args[i+1]
		}
	}
	// A legitimate handshake, recorded to be replayed.
	nc, err := net.Dial("tcp", r.serverAddr)
	if err != nil {
		t.Fatal(err)
	}
	capture := &recorder{Conn: nc}
	if _, err := wire.ClientHandshake(wire.NewConn(capture, wire.Options{}), r.secret, wire.Hello{Role: "client", Rank: -1}); err != nil {
		t.Fatal(err)
	}
	nc.Close()
	replay := capture.w.Bytes()
	other, _ := wire.GenerateSecret()
	hello := func(v uint16) []byte {
		// A hello of version v: version | 32-byte nonce | role | rank | host.
		b := binary.BigEndian.AppendUint16(nil, v)
		b = append(b, bytes.Repeat([]byte{7}, 32)...)
		b = append(b, 6)
		b = append(b, "client"...)
		b = binary.AppendVarint(b, -1)
		return append(b, 0)
	}
	type hostile struct {
		name string
		send func(t *testing.T, nc net.Conn)
	}
	raw := func(parts ...[]byte) func(*testing.T, net.Conn) {
		return func(t *testing.T, nc net.Conn) { nc.Write(bytes.Join(parts, nil)) }
	}
	shake := func(s wire.Secret, v uint16, want error) func(*testing.T, net.Conn) {
		return func(t *testing.T, nc net.Conn) {
			_, err := wire.ClientHandshake(wire.NewConn(nc, wire.Options{}), s, wire.Hello{Version: v, Role: "client", Rank: -1})
			if !errors.Is(err, want) {
				t.Errorf("handshake: %v, want %v", err, want)
			}
			if v == wire.ProtocolVersion+1 && err != nil && !bytes.Contains([]byte(err.Error()), fmt.Appendf(nil, "version %d", wire.ProtocolVersion)) {
				t.Errorf("version error %q does not name our version", err)
			}
		}
	}
	cases := []hostile{
		{"oversize-4GiB", raw(frame(wire.KindHello, 0xffffffff, nil))},
		{"oversize-handshake", raw(frame(wire.KindHello, 4097, bytes.Repeat([]byte{1}, 4097)))},
		{"truncated", raw(frame(wire.KindHello, 100, make([]byte, 10)))},
		{"bad-kind", raw(frame(0xee, 1, []byte{0}))},
		{"bad-flags", raw([]byte{0, 0, 0, 1, byte(wire.KindHello), 0x80, 0})},
		{"submit-first", raw(nil)},
		{"hello-then-submit", raw(frame(wire.KindHello, uint32(len(hello(1))), hello(1)))},
		{"version-next", shake(r.secret, wire.ProtocolVersion+1, wire.ErrVersion)},
		{"version-0xffff", raw(frame(wire.KindHello, uint32(len(hello(0xffff))), hello(0xffff)))},
		{"wrong-secret", shake(other, 0, wire.ErrAuth)},
		{"replayed-handshake", raw(replay)},
	}
	var worst time.Duration
	var mu sync.Mutex
	for _, target := range []struct{ name, addr string }{
		{"server", r.serverAddr}, {"manager", "127.0.0.1:" + mport}, {"manager-worker-port", "127.0.0.1:" + wport},
	} {
		for _, c := range cases {
			t.Run(target.name+"/"+c.name, func(t *testing.T) {
				nc, err := net.Dial("tcp", target.addr)
				if err != nil {
					t.Fatal(err)
				}
				defer nc.Close()
				c.send(t, nc)
				// Whatever came before, a task follows; it must never run.
				nc.Write(markerSubmit(r.dir, target.name+"-"+c.name))
				if tc, ok := nc.(*net.TCPConn); ok && c.name == "truncated" {
					tc.CloseWrite()
				}
				d := closedWithin(t, nc, handshakeTimeout+2*time.Second)
				mu.Lock()
				worst = max(worst, d)
				mu.Unlock()
			})
		}
	}
	// A legitimate task still runs and creates its marker; no other did.
	c := r.client()
	ctx, cancel := context.WithTimeout(t.Context(), startBound)
	defer cancel()
	f, _ := c.Submit(ctx, kernels.Task{Kernel: "exec", Args: []string{"--", "sh", "-c", "touch " + filepath.Join(r.dir, "legit")}})
	if _, err := c.Wait(ctx, f); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(r.dir, "legit")); err != nil {
		t.Fatalf("the authenticated task left no marker: %v", err)
	}
	pwned, _ := filepath.Glob(filepath.Join(r.dir, "pwned-*"))
	if len(pwned) != 0 {
		t.Errorf("unauthenticated tasks ran: %v", pwned)
	}
	rec.Detection = "closed in ≤ " + ms(worst)
	rec.Note = fmt.Sprintf("%d hostile connections on 3 ports closed; %d unauthenticated tasks ran", 3*len(cases), len(pwned))
	left := r.shutdown()
	rec.Left = strconv.Itoa(len(left))
}

// TestFloodAndSlowSender opens 2,000 connections at once to the server,
// then a peer sends its hello one byte per second: a legitimate client is
// served during the flood, the server holds at most --max-handshakes of
// the flood's connections, the slow peer is dropped at the handshake
// deadline (--handshake-timeout), and the server's file descriptors
// return to their baseline.
func TestFloodAndSlowSender(t *testing.T) {
	t.Parallel()
	rec := newRecord(t, "2,000-connection flood + 1 B/s sender")
	const flood, maxPending, slowTimeout = 2000, 32, 3 * time.Second
	r := newTree(t)
	// At most maxPending connections in their handshake at once per
	// listener (one more evicts the oldest); the rate is left high so that
	// the flood's connections all reach the pending bound.
	r.linkArgs = []string{"--max-handshakes", strconv.Itoa(maxPending), "--accept-rate", "100000", "--handshake-timeout", slowTimeout.String()}
	r.flat(1)
	spid := r.server.pid()
	base, err := reliability.ReadMem(spid)
	if err != nil {
		t.Fatal(err)
	}

	// The flood: every connection dialled at once and held open, silent.
	conns := make([]net.Conn, flood)
	var wg sync.WaitGroup
	for i := range conns {
		wg.Go(func() {
			d := net.Dialer{Timeout: startBound}
			if nc, err := d.Dial("tcp", r.serverAddr); err == nil {
				conns[i] = nc
			}
		})
	}
	wg.Wait()
	opened := 0
	for _, nc := range conns {
		if nc != nil {
			opened++
		}
	}
	// A legitimate client, meanwhile.
	t0 := time.Now()
	legit := r.client()
	stillServes(t, legit)
	served := time.Since(t0)
	legit.Close()
	peak, err := reliability.ReadMem(spid)
	if err != nil {
		t.Fatal(err)
	}
	for _, nc := range conns {
		if nc != nil {
			nc.Close()
		}
	}
	// The slow sender, once the flood is over (the flood would evict it):
	// a valid hello, one byte a second.
	slow, err := net.Dial("tcp", r.serverAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	slowDone := make(chan time.Duration, 1)
	go func() {
		t0 := time.Now()
		slow.SetReadDeadline(t0.Add(handshakeTimeout + 5*time.Second))
		io.Copy(io.Discard, slow)
		slowDone <- time.Since(t0)
	}()
	stopSlow := make(chan struct{})
	var slowWG sync.WaitGroup
	slowWG.Go(func() {
		msg := frame(wire.KindHello, 40, bytes.Repeat([]byte{1}, 40))
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for _, b := range msg {
			if _, err := slow.Write([]byte{b}); err != nil {
				return
			}
			select {
			case <-tick.C:
			case <-stopSlow:
				return
			}
		}
	})
	defer func() { close(stopSlow); slowWG.Wait() }()
	select {
	case d := <-slowDone:
		if d < slowTimeout-time.Second || d > slowTimeout+2*time.Second {
			t.Errorf("slow sender dropped after %v, want at the %v handshake deadline", d, slowTimeout)
		}
		rec.Detection = "slow sender dropped after " + ms(d)
	case <-time.After(slowTimeout + 10*time.Second):
		t.Fatal("the slow sender was never dropped")
	}
	// The server's descriptors return to the baseline.
	deadline := time.Now().Add(exitBound)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	var now reliability.Mem
	for {
		now, err = reliability.ReadMem(spid)
		if err != nil {
			t.Fatal(err)
		}
		if now.FDs <= base.FDs || time.Now().After(deadline) {
			break
		}
		<-tick.C
	}
	if now.FDs > base.FDs {
		t.Errorf("server fds: %d before the flood, %d after it ended", base.FDs, now.FDs)
	}
	// The flood's connections are evicted as soon as more arrive: the
	// server held at most maxPending of them (plus the legitimate client
	// and the slow sender) when sampled after the flood.
	if peak.FDs > base.FDs+maxPending+2 {
		t.Errorf("server fds under the flood: %d, baseline %d; want at most %d more (--max-handshakes)", peak.FDs, base.FDs, maxPending+2)
	}
	if opened < flood*9/10 {
		t.Errorf("only %d of %d flood connections opened", opened, flood)
	}
	const maxThreads, maxGrowthKiB = 64, 64 << 10
	if peak.Threads > maxThreads || peak.RSSKiB-base.RSSKiB > maxGrowthKiB {
		t.Errorf("server under the flood: %d threads, RSS %d → %d KiB; want at most %d threads and %d KiB growth",
			peak.Threads, base.RSSKiB, peak.RSSKiB, maxThreads, maxGrowthKiB)
	}
	rec.Memory = fmt.Sprintf("server RSS %d→%d KiB, threads %d→%d, fds %d→%d→%d", base.RSSKiB, peak.RSSKiB, base.Threads, peak.Threads, base.FDs, peak.FDs, now.FDs)
	rec.Note = fmt.Sprintf("%d/%d opened; legit client served in %s; --max-handshakes %d: server fds ≤ baseline+%d", opened, flood, ms(served), maxPending, peak.FDs-base.FDs)
	left := r.shutdown()
	rec.Left = strconv.Itoa(len(left))
}
