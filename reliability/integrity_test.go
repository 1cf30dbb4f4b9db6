package reliability_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/qlaunch/qlaunch/kernels"
	"github.com/qlaunch/qlaunch/launcher/wire"
)

// onPathRelay is a TCP relay between a client and the server that lets
// the handshake's two client frames (hello, auth) through untouched and
// then alters the client's stream: inject writes a frame of its own
// before the client's next bytes; otherwise the next frame's payload gets
// one bit flipped (its last byte, or with flipMiddle its middle one). It
// reports when the server closed its side.
type onPathRelay struct {
	ln         net.Listener
	inject     []byte
	flipMiddle bool
	altered    chan time.Time // when the altered bytes went to the server
	closedAt   chan time.Time // when the server closed the connection
}

func startOnPathRelay(t *testing.T, server string, inject []byte, flipMiddle bool) *onPathRelay {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &onPathRelay{ln: ln, inject: inject, flipMiddle: flipMiddle, altered: make(chan time.Time, 1), closedAt: make(chan time.Time, 1)}
	t.Cleanup(func() { ln.Close() })
	go func() {
		cc, err := ln.Accept()
		if err != nil {
			return
		}
		defer cc.Close()
		sc, err := net.Dial("tcp", server)
		if err != nil {
			return
		}
		defer sc.Close()
		go func() {
			io.Copy(cc, sc)
			r.closedAt <- time.Now()
			cc.Close()
		}()
		r.forward(cc, sc)
	}()
	return r
}

func (r *onPathRelay) forward(client, server net.Conn) {
	in := bufio.NewReader(client)
	readFrame := func(tag int) ([]byte, error) {
		head := make([]byte, 6)
		if _, err := io.ReadFull(in, head); err != nil {
			return nil, err
		}
		body := make([]byte, int(binary.BigEndian.Uint32(head))+tag)
		if _, err := io.ReadFull(in, body); err != nil {
			return nil, err
		}
		return append(head, body...), nil
	}
	for range 2 { // hello, auth
		f, err := readFrame(0)
		if err != nil {
			return
		}
		if _, err := server.Write(f); err != nil {
			return
		}
	}
	if r.inject != nil {
		server.Write(r.inject)
	} else {
		f, err := readFrame(16) // the client's first frame after the handshake, with its MAC
		if err != nil {
			return
		}
		at := len(f) - 17 // the payload's last byte
		if r.flipMiddle {
			at = len(f) / 2
		}
		f[at] ^= 0x01
		server.Write(f)
	}
	r.altered <- time.Now()
	io.Copy(server, in)
}

// TestInjectedFrame: on a connection without TLS, an on-path relay that
// injects a frame after the handshake (a task that would create a file)
// or flips one bit of a frame the client sent is refused, also in the
// middle of a large frame (a task with 200 KiB of random input, which
// does not compress). The server drops
// the connection with a log line that says the frame failed its integrity
// check, no altered task runs, and the runtime serves another client.
func TestInjectedFrame(t *testing.T) {
	t.Parallel()
	rec := newRecord(t, "frame injected or altered after the handshake (no TLS)")
	r := newTree(t)
	r.flat(1)
	var worst time.Duration
	for _, tc := range []struct {
		name   string
		inject bool
		large  bool
	}{{"inject", true, false}, {"flip", false, false}, {"flip-large", false, true}} {
		t.Run(tc.name, func(t *testing.T) {
			var inject []byte
			if tc.inject {
				// A whole submit frame, with a tag of zeros where a MAC
				// would be.
				inject = append(markerSubmit(r.dir, "injected"), make([]byte, 16)...)
			}
			relay := startOnPathRelay(t, r.serverAddr, inject, tc.large)
			nc, err := net.Dial("tcp", relay.ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			fc := wire.NewConn(nc, wire.Options{})
			nc.SetDeadline(time.Now().Add(startBound))
			if _, err := wire.ClientHandshake(fc, r.secret, wire.Hello{Role: "client", Rank: -1, Host: "behind-a-relay"}); err != nil {
				t.Fatal(err)
			}
			// A genuine task whose bytes the relay alters in the flip case
			// (its exec command line, last byte of the frame).
			wt := wire.Task{Kernel: "exec", Args: []string{"--", "touch", filepath.Join(r.dir, "pwned-"+tc.name)}, LogDepth: -1}
			if tc.large {
				wt.Payload = make([]byte, 200<<10)
				rand.Read(wt.Payload)
			}
			if err := fc.WriteFrame(wire.KindSubmit, wire.AppendTaskRecord(nil, 1, &wt)); err != nil {
				t.Fatal(err)
			}
			if err := fc.Flush(); err != nil {
				t.Fatal(err)
			}
			var sent, closed time.Time
			select {
			case sent = <-relay.altered:
			case <-time.After(startBound):
				t.Fatal("the relay saw no handshake")
			}
			select {
			case closed = <-relay.closedAt:
			case <-time.After(startBound):
				t.Fatalf("the server kept the connection %v after the altered frame\n%s", startBound, r.logs())
			}
			worst = max(worst, closed.Sub(sent))
			// The client learns it too: its next read ends.
			for range 100 {
				if _, _, err := fc.ReadFrame(); err != nil {
					break
				}
			}
		})
	}
	// The server said why, once per connection.
	deadline := time.Now().Add(exitBound)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for strings.Count(r.server.out.String(), "failed its integrity check") < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("the server logged no integrity failure for all three connections:\n%s", r.logs())
		}
		<-tick.C
	}
	// The runtime still serves a direct client; neither altered task ran.
	c := r.client()
	ctx, cancel := context.WithTimeout(t.Context(), startBound)
	defer cancel()
	f, _ := c.Submit(ctx, kernels.Task{Kernel: "exec", Args: []string{"--", "touch", filepath.Join(r.dir, "legit")}})
	if _, err := c.Wait(ctx, f); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(r.dir, "legit")); err != nil {
		t.Fatalf("the genuine task left no marker: %v", err)
	}
	pwned, _ := filepath.Glob(filepath.Join(r.dir, "pwned-*"))
	if len(pwned) != 0 {
		t.Errorf("altered tasks ran: %v", pwned)
	}
	rec.Detection = "closed in ≤ " + ms(worst)
	rec.Note = fmt.Sprintf("an injected frame and a flipped bit (in a small frame, and in the middle of a 200 KiB one) refused (ErrIntegrity, logged); %d altered tasks ran", len(pwned))
	rec.Left = fmt.Sprint(len(r.shutdown()))
}

// TestPoisonRecord: a submit frame whose first task record does not decode
// (its body cut short: a client bug or a version mismatch) fails that task
// only, with an error result saying why; the next record of the same
// frame runs, and so do later tasks.
func TestPoisonRecord(t *testing.T) {
	t.Parallel()
	rec := newRecord(t, "poison task record (body cut short) among good ones")
	a := startAttached(t, "", "")
	nc, err := net.Dial("tcp", a.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(startBound))
	fc := wire.NewConn(nc, wire.Options{})
	if _, err := wire.ClientHandshake(fc, a.secret, wire.Hello{Role: "client", Rank: -1, Host: "poison"}); err != nil {
		t.Fatal(err)
	}
	good := wire.AppendTask(nil, &wire.Task{Kernel: "echo", Args: []string{"fine"}, LogDepth: -1})
	poison := good[:len(good)-3]
	batch := wire.AppendRecord(nil, 1, poison)
	batch = wire.AppendRecord(batch, 2, good)
	if err := fc.WriteFrame(wire.KindSubmit, batch); err != nil {
		t.Fatal(err)
	}
	if err := fc.Flush(); err != nil {
		t.Fatal(err)
	}
	got := map[uint64]wire.Result{}
	for len(got) < 2 {
		k, b, err := fc.ReadFrame()
		if err != nil {
			t.Fatalf("after %d results: %v", len(got), err)
		}
		if k != wire.KindResult {
			continue
		}
		recs := wire.NewRecords(b)
		for id, body, ok := recs.Next(); ok; id, body, ok = recs.Next() {
			var r wire.Result
			if err := wire.DecodeResult(body, &r); err != nil {
				t.Fatal(err)
			}
			r.Value = bytes.Clone(r.Value)
			got[id] = r
		}
	}
	if r := got[1]; r.Status != wire.ResultError || !strings.Contains(r.Message, "refused") {
		t.Errorf("the poison record's result: status %d, %q; want an error saying it was refused", r.Status, r.Message)
	}
	if r := got[2]; r.Status != wire.ResultOK || string(r.Value) != "fine" {
		t.Errorf("the good record's result: status %d, %q %q", r.Status, r.Value, r.Message)
	}
	// The runtime, its worker rank included, runs the next task.
	c := a.client()
	ctx, cancel := context.WithTimeout(t.Context(), startBound)
	defer cancel()
	f, _ := c.Submit(ctx, kernels.Task{Kernel: "echo", Args: []string{"after"}})
	if _, err := c.Wait(ctx, f); err != nil {
		t.Fatalf("a task after the poison record: %v", err)
	}
	rec.Note = fmt.Sprintf("poison record: %q; the good one beside it and a later task ran", got[1].Message)
	a.shutdown()
}
