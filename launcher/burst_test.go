package launcher_test

import (
	"testing"
	"time"

	"github.com/qlaunch/qlaunch/kernels"
	"github.com/qlaunch/qlaunch/launcher"
	"github.com/qlaunch/qlaunch/launcher/transport"
	"github.com/qlaunch/qlaunch/launcher/wire"
)

// TestServerBurst: a worker rank that sends many small result frames in
// one write (as one under load does) has them reach the client in a few
// large frames, through a real server over real sockets; and a result
// that comes alone is not held back, though no heartbeat ticks (an hour
// apart here) to send what a burst held.
func TestServerBurst(t *testing.T) {
	reg, err := kernels.NewRegistry(kernels.Builtin()...)
	if err != nil {
		t.Fatal(err)
	}
	secret := testSecret(t)
	link := launcher.LinkConfig{Secret: secret, Heartbeat: time.Hour, HeartbeatTimeout: 2 * time.Hour}
	ln := localListener(t)
	addr := ln.Addr().String()
	go launcher.RunServer(t.Context(), launcher.ServerConfig{
		NodeConfig: launcher.NodeConfig{Host: "here", Registry: reg, Link: link},
		Listener:   ln, ExpectRanks: 2,
	})
	dial := func(h wire.Hello) *transport.Conn {
		c, err := transport.Dial(t.Context(), addr, transport.Config{Secret: secret, FailFast: true}, h)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.NC.Close() })
		return c
	}
	write := func(c *transport.Conn, frames ...[]byte) { // kind byte, then the body
		t.Helper()
		for _, f := range frames {
			if err := c.FC.WriteFrame(wire.Kind(f[0]), f[1:]); err != nil {
				t.Fatal(err)
			}
		}
		if err := c.FC.Flush(); err != nil { // one write for all
			t.Fatal(err)
		}
	}
	frame := func(k wire.Kind, body []byte) []byte { return append([]byte{byte(k)}, body...) }
	// next reads c's next frame of kind k, skipping others; a deadline
	// turns a frame that never comes into a failure.
	next := func(c *transport.Conn, k wire.Kind) []byte {
		t.Helper()
		c.NC.SetReadDeadline(time.Now().Add(30 * time.Second))
		for {
			got, b, err := c.FC.ReadFrame()
			if err != nil {
				t.Fatalf("waiting for a %v frame: %v", k, err)
			}
			if got == k {
				return b
			}
		}
	}
	records := func(b []byte) (ids []uint64) {
		recs := wire.NewRecords(b)
		for id, _, ok := recs.Next(); ok; id, _, ok = recs.Next() {
			ids = append(ids, id)
		}
		if err := recs.Err(); err != nil {
			t.Fatal(err)
		}
		return ids
	}

	worker := dial(wire.Hello{Role: "worker:child", Rank: 1, Host: "here"})
	write(worker, frame(wire.KindJoin, wire.AppendJoin(nil, &wire.Join{Ranks: 1, Slots: 2})))
	client := dial(wire.Hello{Role: "client", Rank: -1, Host: "here"})

	const n = 300
	var tasks []byte
	for id := range uint64(n) {
		tasks = wire.AppendTaskRecord(tasks, id+1, &wire.Task{Kernel: "noop"})
	}
	write(client, frame(wire.KindSubmit, tasks))
	var placed []uint64 // the server's ids of the tasks, as the worker got them
	for len(placed) < n {
		placed = append(placed, records(next(worker, wire.KindSubmit))...)
	}
	// The worker answers each task in a frame of its own, all in one write.
	ok := wire.AppendResult(nil, &wire.Result{Status: wire.ResultOK})
	results := make([][]byte, n)
	for i, id := range placed {
		results[i] = frame(wire.KindResult, wire.AppendRecord(nil, id, ok))
	}
	write(worker, results...)
	got, frames := map[uint64]bool{}, 0
	for len(got) < n {
		for _, id := range records(next(client, wire.KindResult)) {
			if got[id] {
				t.Fatalf("result %d twice", id)
			}
			got[id] = true
		}
		frames++
	}
	// One read of the server takes in most of the write: its frames but
	// the last of that read wait for the next (relay.Event.More).
	if frames > n/20 {
		t.Errorf("%d results in %d frames to the client, want at most %d: the burst was not coalesced", n, frames, n/20)
	}
	t.Logf("%d result frames from the worker reached the client in %d frames", n, frames)

	// A lone result is sent on at once.
	write(client, frame(wire.KindSubmit, wire.AppendTaskRecord(nil, n+1, &wire.Task{Kernel: "noop"})))
	id := records(next(worker, wire.KindSubmit))[0]
	write(worker, frame(wire.KindResult, wire.AppendRecord(nil, id, ok)))
	if ids := records(next(client, wire.KindResult)); len(ids) != 1 || ids[0] != n+1 {
		t.Fatalf("the lone result arrived as %v, want [%d]", ids, n+1)
	}
}
