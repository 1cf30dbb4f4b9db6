package launcher_test

import (
	"context"
	"encoding/binary"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/qlaunch/qlaunch/kernels"
	"github.com/qlaunch/qlaunch/launcher"
	"github.com/qlaunch/qlaunch/launcher/launchertest"
	"github.com/qlaunch/qlaunch/launcher/wire"
)

// rawPeer is the far end of one authenticated connection, driven frame by
// frame: a parent of a live worker rank, or a client of a server.
type rawPeer struct {
	t  testing.TB
	nc net.Conn
	fc *wire.Conn
}

// localListener listens on a free loopback port until the test ends.
func localListener(t testing.TB) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

func testSecret(t testing.TB) wire.Secret {
	s, err := wire.NewSecret([]byte("edge-test-secret-0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// liveRank starts a worker rank of one slot with an "echo" kernel that
// dials a listener of the test, and returns the parent's end of its link
// once it joined, and the rank's result channel.
func liveRank(t testing.TB) (*rawPeer, <-chan error) {
	t.Helper()
	ln := localListener(t)
	reg, err := kernels.NewRegistry(kernels.Kernel{Name: "echo", Func: func(_ context.Context, _ kernels.Runtime, args []string, _ []byte) ([]byte, error) {
		return []byte(strings.Join(args, " ")), nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	sec := testSecret(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- launcher.RunWorker(ctx, launcher.WorkerConfig{NodeConfig: launcher.NodeConfig{
			Rank: 7, Host: "edge", Parent: ln.Addr().String(), Registry: reg,
			Link: launcher.LinkConfig{Secret: sec, Heartbeat: time.Hour},
		}})
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			t.Error("worker rank still running 20 s after its context ended")
		}
	})
	nc, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	fc := wire.NewConn(nc, wire.Options{})
	if _, err := wire.ServerHandshake(fc, sec, wire.Hello{Role: "manager", Rank: 0, Host: "test"}); err != nil {
		t.Fatal(err)
	}
	p := &rawPeer{t: t, nc: nc, fc: fc}
	if k, _ := p.next(); k != wire.KindJoin {
		t.Fatalf("first frame from the rank: %v, want a join", k)
	}
	return p, done
}

// next returns the next frame, failing the test after 20 s.
func (p *rawPeer) next() (wire.Kind, []byte) {
	p.t.Helper()
	_ = p.nc.SetReadDeadline(time.Now().Add(20 * time.Second))
	k, b, err := p.fc.ReadFrame()
	if err != nil {
		p.t.Fatalf("reading from the peer: %v", err)
	}
	return k, b
}

func (p *rawPeer) send(k wire.Kind, b []byte) {
	p.t.Helper()
	if err := p.fc.WriteFrame(k, b); err != nil {
		p.t.Fatal(err)
	}
	if err := p.fc.Flush(); err != nil {
		p.t.Fatal(err)
	}
}

// results reads frames until results for n distinct ids came in.
func (p *rawPeer) results(n int) map[uint64]wire.Result {
	p.t.Helper()
	got := make(map[uint64]wire.Result, n)
	for range 1000 {
		if len(got) >= n {
			return got
		}
		k, b := p.next()
		if k != wire.KindResult {
			continue
		}
		recs := wire.NewRecords(b)
		for {
			id, body, ok := recs.Next()
			if !ok {
				break
			}
			var r wire.Result
			if err := wire.DecodeResult(body, &r); err != nil {
				p.t.Fatalf("result %d: %v", id, err)
			}
			r.Value = append([]byte(nil), r.Value...)
			got[id] = r
		}
		if err := recs.Err(); err != nil {
			p.t.Fatal(err)
		}
	}
	p.t.Fatalf("%d results after 1000 frames, want %d", len(got), n)
	return nil
}

func taskBody(kernel string, args ...string) []byte {
	return wire.AppendTask(nil, &wire.Task{Kernel: kernel, Args: args})
}

// missingArg is the body of an echo task that says it has two arguments
// and carries one.
func missingArg() []byte {
	var b []byte
	b = binary.AppendVarint(b, 0)
	b = binary.AppendVarint(b, -1)
	b = binary.AppendUvarint(b, 4)
	b = append(b, "echo"...)
	b = binary.AppendUvarint(b, 2)
	b = binary.AppendUvarint(b, 1)
	return append(b, 'x')
}

func TestWorkerPoisonRecordFailsOnlyItsTask(t *testing.T) {
	p, done := liveRank(t)
	var batch []byte
	batch = wire.AppendRecord(batch, 1, taskBody("echo", "before"))
	batch = wire.AppendRecord(batch, 2, missingArg())
	batch = wire.AppendRecord(batch, 3, taskBody("echo", "after"))
	p.send(wire.KindSubmit, batch)
	rs := p.results(3)
	if r := rs[1]; r.Status != wire.ResultOK || string(r.Value) != "before" {
		t.Errorf("task before the poison: %+v", r)
	}
	if r := rs[2]; r.Status != wire.ResultError || r.Kernel != "echo" || r.Rank != 7 || !strings.Contains(r.Message, "malformed message body") {
		t.Errorf("poison task: %+v, want an error result naming the kernel, the rank and the decoding error", r)
	}
	if r := rs[3]; r.Status != wire.ResultOK || string(r.Value) != "after" {
		t.Errorf("task after the poison: %+v", r)
	}
	// The rank lives: a later task on it succeeds.
	p.send(wire.KindSubmit, wire.AppendRecord(nil, 4, taskBody("echo", "later")))
	if r := p.results(1)[4]; r.Status != wire.ResultOK || string(r.Value) != "later" {
		t.Fatalf("task after the poison batch: %+v", r)
	}
	select {
	case err := <-done:
		t.Fatalf("rank ended: %v", err)
	default:
	}
}

// FuzzWorkerTaskRecord sends arbitrary bytes as a task body to a live
// worker rank, followed by a good task: the rank must answer both (the
// first with a result of any status) and go on.
func FuzzWorkerTaskRecord(f *testing.F) {
	f.Add(taskBody("echo", "a", "b"))
	f.Add(missingArg())
	f.Add(taskBody("nope"))
	f.Add([]byte{})
	f.Add([]byte{0x80})
	f.Add(append(taskBody("echo"), 0))
	p, done := liveRank(f)
	id := uint64(0)
	f.Fuzz(func(t *testing.T, body []byte) {
		p.t = t
		id += 2
		var batch []byte
		batch = wire.AppendRecord(batch, id, body)
		batch = wire.AppendRecord(batch, id+1, taskBody("echo", "ok"))
		p.send(wire.KindSubmit, batch)
		rs := p.results(2)
		if _, ok := rs[id]; !ok {
			t.Fatalf("no result for the fuzzed record: %+v", rs)
		}
		if r := rs[id+1]; r.Status != wire.ResultOK || string(r.Value) != "ok" {
			t.Fatalf("good task after the fuzzed one: %+v", r)
		}
		// CheckTask, the server's test, passes exactly the records the
		// rank could run or name an unknown kernel for.
		if wire.CheckTask(body) == nil && rs[id].Status != wire.ResultOK && !strings.Contains(rs[id].Message, "unknown kernel") {
			t.Fatalf("record passed CheckTask but failed at the rank: %+v", rs[id])
		}
		select {
		case err := <-done:
			t.Fatalf("rank ended: %v", err)
		default:
		}
	})
}

// TestServerRefusesMalformedRecord: a client's task record that does not
// decode is answered with an error result by the server and never
// forwarded; the client's other tasks and its connection go on.
func TestServerRefusesMalformedRecord(t *testing.T) {
	tr := launchertest.Start(t, launchertest.Shape{Workers: []int{1}})
	nc, err := net.Dial("tcp", tr.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	fc := wire.NewConn(nc, wire.Options{})
	if _, err := wire.ClientHandshake(fc, tr.Secret, wire.Hello{Role: "client", Rank: -1, Host: "test"}); err != nil {
		t.Fatal(err)
	}
	p := &rawPeer{t: t, nc: nc, fc: fc}
	long := strings.Repeat("k", wire.MaxKernelName+1)
	var batch []byte
	batch = wire.AppendRecord(batch, 1, missingArg())
	batch = wire.AppendRecord(batch, 2, taskBody("echo", "fine"))
	batch = wire.AppendRecord(batch, 3, taskBody(""))
	batch = wire.AppendRecord(batch, 4, taskBody(long))
	batch = wire.AppendRecord(batch, 5, taskBody("ec\x00ho"))
	p.send(wire.KindSubmit, batch)
	rs := p.results(5)
	for id, want := range map[uint64]string{1: "task arg", 3: "empty name", 4: "name of 257 bytes", 5: "control character"} {
		r := rs[id]
		if r.Status != wire.ResultError || !strings.Contains(r.Message, "refused by the server") || !strings.Contains(r.Message, want) {
			t.Errorf("record %d: %+v, want an error result saying %q", id, r, want)
		}
	}
	if r := rs[2]; r.Status != wire.ResultOK || string(r.Value) != "fine" {
		t.Errorf("good record of the batch: %+v", r)
	}
	p.send(wire.KindSubmit, wire.AppendRecord(nil, 6, taskBody("echo", "later")))
	if r := p.results(1)[6]; r.Status != wire.ResultOK || string(r.Value) != "later" {
		t.Fatalf("a later task of the same client: %+v", r)
	}
}
