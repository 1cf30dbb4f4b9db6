package launcher_test

import (
	"context"
	"errors"
	"io"
	"net"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/qlaunch/qlaunch/kernels"
	"github.com/qlaunch/qlaunch/launcher"
	"github.com/qlaunch/qlaunch/launcher/client"
	"github.com/qlaunch/qlaunch/launcher/launchertest"
	"github.com/qlaunch/qlaunch/launcher/wire"
)

// probe is a kernel "block" that reports when it starts (with its rank)
// and when its context is cancelled, and otherwise blocks.
type probe struct {
	started   chan int
	cancelled chan int
}

func newProbe() *probe { return &probe{started: make(chan int, 100), cancelled: make(chan int, 100)} }

func (p *probe) kernels() []kernels.Kernel {
	return []kernels.Kernel{
		kernel("block", func(ctx context.Context, rt kernels.Runtime, _ []string, _ []byte) ([]byte, error) {
			p.started <- rt.Rank()
			<-ctx.Done()
			p.cancelled <- rt.Rank()
			return nil, ctx.Err()
		}),
	}
}

func recv(t *testing.T, ch <-chan int, what string) int {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(30 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
		return 0
	}
}

func blocks(n int) []kernels.Task {
	ts := make([]kernels.Task, n)
	for i := range ts {
		ts[i] = kernels.Task{Kernel: "block"}
	}
	return ts
}

func TestWorkerRankDies(t *testing.T) {
	p := newProbe()
	tr := launchertest.Start(t, launchertest.Shape{Workers: []int{1, 1}}, launchertest.Options{Kernels: p.kernels()})
	c := tr.Client()
	ctx := ctxT(t)
	f, err := c.Map(ctx, blocks(2))
	if err != nil {
		t.Fatal(err)
	}
	a, b := recv(t, p.started, "first block"), recv(t, p.started, "second block")
	if a == b {
		t.Fatalf("both blocks on rank %d, want one per rank", a)
	}
	tr.Kill(a)
	rs, err := c.Next(ctx, f)
	if err != nil {
		t.Fatal(err)
	}
	var te *client.TaskError
	if len(rs) != 1 || !errors.As(rs[0].Err, &te) || !te.Lost || te.Rank != a || te.Host != tr.Ranks[a].Host || !errors.Is(rs[0].Err, client.ErrRankLost) {
		t.Fatalf("after killing rank %d: results %+v, want one lost-rank error naming it", a, rs)
	}
	if err := c.Cancel(f); err != nil {
		t.Fatal(err)
	}
	recv(t, p.cancelled, "the surviving block's cancellation")
	// The job goes on with the rest of the tree.
	if got := mustRun(t, c, "fanout", "4", "2"); got != "16" {
		t.Fatalf("after the loss: fanout 4 2 = %q", got)
	}
}

func TestClientDisconnectCancelsItsTasks(t *testing.T) {
	p := newProbe()
	tr := launchertest.Start(t, launchertest.Shape{Workers: []int{2}}, launchertest.Options{Kernels: p.kernels()})
	c := tr.Client()
	if _, err := c.Map(ctxT(t), blocks(2)); err != nil {
		t.Fatal(err)
	}
	recv(t, p.started, "block 1")
	recv(t, p.started, "block 2")
	c.Close()
	recv(t, p.cancelled, "block 1 cancelled")
	recv(t, p.cancelled, "block 2 cancelled")
	// Another client still runs work.
	if got := mustRun(t, tr.Client(), "echo", "still here"); got != "still here" {
		t.Fatal(got)
	}
}

func TestCancelReachesDescendantsOnOtherRanks(t *testing.T) {
	p := newProbe()
	ks := append(p.kernels(), kernel("parent", func(ctx context.Context, rt kernels.Runtime, _ []string, _ []byte) ([]byte, error) {
		f, err := rt.Map(ctx, blocks(4))
		if err != nil {
			return nil, err
		}
		_, err = rt.Wait(ctx, f)
		return nil, err
	}))
	tr := launchertest.Start(t, launchertest.Shape{Workers: []int{2, 2}}, launchertest.Options{Kernels: ks})
	c := tr.Client()
	ctx := ctxT(t)
	f, _ := c.Submit(ctx, kernels.Task{Kernel: "parent"})
	// Two blocks start next to the parent; the idle rank takes work from
	// the busy one.
	ranks := map[int]int{}
	for range 3 {
		ranks[recv(t, p.started, "a block")]++
	}
	if len(ranks) != 2 {
		t.Fatalf("blocks ran on ranks %v, want both ranks", ranks)
	}
	if err := c.Cancel(f); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		recv(t, p.cancelled, "a block's cancellation")
	}
	if _, err := c.Wait(ctx, f); !errors.Is(err, kernels.ErrCancelled) {
		t.Fatalf("wait on cancelled: %v", err)
	}
	if got := mustRun(t, c, "fanout", "3", "2"); got != "9" {
		t.Fatal(got)
	}
}

func TestManagerLinkDropped(t *testing.T) {
	p := newProbe()
	shape := launchertest.Shape{Workers: []int{1}, Managers: []launchertest.Shape{{Workers: []int{1}}}}
	tr := launchertest.Start(t, shape, launchertest.Options{Kernels: p.kernels()})
	c := tr.Client()
	ctx := ctxT(t)
	f, _ := c.Map(ctx, blocks(2))
	r1, r2 := recv(t, p.started, "block"), recv(t, p.started, "block")
	const manager = 2 // rank 1 is the server's worker, 2 the manager, 3 its worker
	if r1+r2 != 1+3 {
		t.Fatalf("blocks on ranks %d and %d, want 1 and 3", r1, r2)
	}
	tr.DropLink(manager)
	rs, err := c.Next(ctx, f)
	var te *client.TaskError
	if err != nil || len(rs) != 1 || !errors.As(rs[0].Err, &te) || !te.Lost || te.Rank != manager {
		t.Fatalf("after dropping the manager's link: %+v %v", rs, err)
	}
	recv(t, p.cancelled, "the block under the lost manager stops")
	<-tr.Ranks[manager].Done()
	<-tr.Ranks[3].Done()
	_ = c.Cancel(f)
	if got := mustRun(t, c, "echo", "on"); got != "on" {
		t.Fatal(got)
	}
}

func TestBadConnectionsAreRefused(t *testing.T) {
	tr := launchertest.Start(t, launchertest.Shape{Workers: []int{1}})
	// Garbage bytes: the server closes the connection.
	nc, err := net.Dial("tcp", tr.Addr)
	if err != nil {
		t.Fatal(err)
	}
	nc.Write([]byte("GET / HTTP/1.0\r\n\r\n\x00\x01\x02garbage"))
	if _, err := io.ReadAll(nc); err != nil {
		t.Logf("read after garbage: %v", err)
	}
	nc.Close()
	// A wrong secret: refused with ErrAuth.
	other, _ := wire.GenerateSecret()
	if _, err := client.Dial(ctxT(t), tr.Addr, client.Options{Secret: other}); !errors.Is(err, wire.ErrAuth) {
		t.Fatalf("wrong secret: %v, want ErrAuth", err)
	}
	// An authenticated client that sends what clients may not send (a
	// shutdown) is dropped; it cannot stop the runtime.
	nc, err = net.Dial("tcp", tr.Addr)
	if err != nil {
		t.Fatal(err)
	}
	fc := wire.NewConn(nc, wire.Options{})
	if _, err := wire.ClientHandshake(fc, tr.Secret, wire.Hello{Role: "client"}); err != nil {
		t.Fatal(err)
	}
	fc.WriteFrame(wire.KindShutdown, wire.AppendText(nil, "stop"))
	fc.Flush()
	for {
		if _, _, err := fc.ReadFrame(); err != nil {
			break
		}
	}
	nc.Close()
	// Nothing else was disturbed.
	if got := mustRun(t, tr.Client(), "fanout", "5", "2"); got != "25" {
		t.Fatal(got)
	}
}

func TestShutdownStopsEveryRank(t *testing.T) {
	shape := launchertest.Shape{Workers: []int{1}, Managers: []launchertest.Shape{{Workers: []int{1, 1}}, {Managers: []launchertest.Shape{{Workers: []int{1}}}}}}
	tr := launchertest.Start(t, shape)
	c := tr.Client()
	ctx := ctxT(t)
	f, _ := c.Map(ctx, []kernels.Task{{Kernel: "sleep", Args: []string{"60000"}}, {Kernel: "sleep", Args: []string{"60000"}}})
	tr.Close()
	for _, r := range tr.Ranks {
		if !errors.Is(r.Err(), launcher.ErrShutdown) {
			t.Errorf("rank %d (%s) returned %v, want ErrShutdown", r.Rank, r.Role, r.Err())
		}
	}
	if _, err := c.Wait(ctx, f); err == nil {
		t.Fatal("wait succeeded after the runtime stopped")
	}
}

func TestRetryableTaskRunsAgainAfterRankLoss(t *testing.T) {
	p := newProbe()
	var attempts atomic.Int32
	ks := append(p.kernels(), kernels.Kernel{Name: "once", Retryable: true, Func: func(ctx context.Context, rt kernels.Runtime, _ []string, _ []byte) ([]byte, error) {
		if attempts.Add(1) == 1 {
			p.started <- rt.Rank()
			<-ctx.Done()
			return nil, ctx.Err()
		}
		return []byte("second attempt on rank " + strconv.Itoa(rt.Rank())), nil
	}})
	tr := launchertest.Start(t, launchertest.Shape{Workers: []int{1, 1}}, launchertest.Options{Kernels: ks})
	c := tr.Client()
	ctx := ctxT(t)
	f, _ := c.Submit(ctx, kernels.Task{Kernel: "once"})
	a := recv(t, p.started, "first attempt")
	tr.Kill(a)
	vs, err := c.Wait(ctx, f)
	other := 3 - a
	if err != nil || string(vs[0]) != "second attempt on rank "+strconv.Itoa(other) {
		t.Fatalf("retryable task after losing rank %d: %q %v", a, vs, err)
	}
}
