package launcher_test

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"testing"

	"github.com/qlaunch/qlaunch/kernels"
	"github.com/qlaunch/qlaunch/launcher"
	"github.com/qlaunch/qlaunch/launcher/client"
	"github.com/qlaunch/qlaunch/launcher/launchertest"
	"github.com/qlaunch/qlaunch/launcher/wire"
)

// gate is a kernel "gate" that reports where it starts, then waits for
// release and returns its payload; runs counts its runs by payload.
type gate struct {
	started chan int
	release chan struct{}
	mu      sync.Mutex
	runs    map[string]int
}

func (g *gate) kernels() []kernels.Kernel {
	return []kernels.Kernel{kernel("gate", func(ctx context.Context, rt kernels.Runtime, _ []string, in []byte) ([]byte, error) {
		g.mu.Lock()
		g.runs[string(in)]++
		g.mu.Unlock()
		g.started <- rt.Rank()
		select {
		case <-g.release:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		return []byte(strconv.Itoa(rt.Rank())), nil
	})}
}

// waitStatus asks for the tree's status until ok accepts it (bounded).
func waitStatus(t *testing.T, c *client.Client, what string, ok func(map[int]wire.RankStatus) bool) map[int]wire.RankStatus {
	t.Helper()
	var last map[int]wire.RankStatus
	for range 5000 {
		rows, err := c.Status(ctxT(t))
		if err != nil {
			t.Fatal(err)
		}
		last = make(map[int]wire.RankStatus)
		for _, r := range rows {
			last[r.Rank] = r
		}
		if ok(last) {
			return last
		}
	}
	t.Fatalf("status never showed %s; last %+v", what, last)
	return nil
}

func TestDrainMidMapHandsBackQueuedTasks(t *testing.T) {
	g := &gate{started: make(chan int, 100), release: make(chan struct{}), runs: make(map[string]int)}
	tr := launchertest.Start(t, launchertest.Shape{Workers: []int{1, 1}}, launchertest.Options{Kernels: g.kernels()})
	c := tr.Client()
	ctx := ctxT(t)
	const n = 10
	ts := make([]kernels.Task, n)
	for i := range ts {
		ts[i] = kernels.Task{Kernel: "gate", Payload: []byte(strconv.Itoa(i))}
	}
	f, err := c.Map(ctx, ts)
	if err != nil {
		t.Fatal(err)
	}
	a := recv(t, g.started, "a first task")
	b := recv(t, g.started, "a second task")
	if a == b {
		t.Fatalf("both first tasks on rank %d, want one per rank", a)
	}
	// Both ranks hold their share: a batch running, the rest queued.
	before := waitStatus(t, c, "tasks queued on both ranks", func(s map[int]wire.RankStatus) bool {
		return s[a].Queued >= 2 && s[b].Queued >= 2
	})
	qa, qb := before[a].Queued, before[b].Queued
	if err := c.Drain([]int{a}); err != nil {
		t.Fatal(err)
	}
	// a handed its queued tasks back; they wait on b.
	waitStatus(t, c, "rank a's queue handed to rank b", func(s map[int]wire.RankStatus) bool {
		return s[a].Queued == 0 && s[b].Queued == qa+qb
	})
	close(g.release)
	vals, err := c.Wait(ctx, f)
	if err != nil {
		t.Fatalf("map after the drain: %v", err)
	}
	onA := 0
	for _, v := range vals {
		if string(v) == strconv.Itoa(a) {
			onA++
		}
	}
	if onA != n/2-qa {
		t.Fatalf("%d tasks ran on the drained rank %d, want %d: its share less the %d it handed back", onA, a, n/2-qa, qa)
	}
	g.mu.Lock()
	for i := range n {
		if r := g.runs[strconv.Itoa(i)]; r != 1 {
			t.Errorf("task %d ran %d times, want exactly once", i, r)
		}
	}
	g.mu.Unlock()
	select {
	case <-tr.Ranks[a].Done():
	case <-ctx.Done():
		t.Fatal("the drained rank did not leave")
	}
	if err := tr.Ranks[a].Err(); !errors.Is(err, launcher.ErrDrained) || !errors.Is(err, launcher.ErrShutdown) {
		t.Fatalf("drained rank returned %v, want ErrDrained (a clean stop)", err)
	}
	s := waitStatus(t, c, "rank a drained", func(s map[int]wire.RankStatus) bool { return s[a].State == wire.RankDrained })
	if s[b].State != wire.RankJoined {
		t.Fatalf("rank b: %+v, want joined", s[b])
	}
	// The job goes on with the rest of the tree.
	if got := mustRun(t, c, "fanout", "4", "2"); got != "16" {
		t.Fatalf("after the drain: fanout 4 2 = %q", got)
	}
}

func TestDrainManagerDrainsItsSubtree(t *testing.T) {
	tr := launchertest.Start(t, launchertest.Shape{Managers: []launchertest.Shape{{Workers: []int{1}}, {Workers: []int{1}}}})
	c := tr.Client()
	ctx := ctxT(t)
	// Ranks: 0 server, 1 manager, 2 its worker, 3 manager, 4 its worker.
	if tr.Ranks[1].Role != "manager" || tr.Ranks[2].Parent != 1 {
		t.Fatalf("unexpected tree: %+v %+v", tr.Ranks[1], tr.Ranks[2])
	}
	if err := c.Drain([]int{1}); err != nil {
		t.Fatal(err)
	}
	for _, r := range []int{1, 2} {
		select {
		case <-tr.Ranks[r].Done():
		case <-ctx.Done():
			t.Fatalf("rank %d did not leave", r)
		}
		if err := tr.Ranks[r].Err(); !errors.Is(err, launcher.ErrDrained) {
			t.Fatalf("rank %d returned %v, want ErrDrained", r, err)
		}
	}
	s := waitStatus(t, c, "the manager drained", func(s map[int]wire.RankStatus) bool { return s[1].State == wire.RankDrained })
	if s[3].State != wire.RankJoined || s[4].State != wire.RankJoined {
		t.Fatalf("the other subtree: %+v %+v, want joined", s[3], s[4])
	}
	if got := mustRun(t, c, "fanout", "4", "2"); got != "16" {
		t.Fatalf("after the drain: fanout 4 2 = %q", got)
	}
}
