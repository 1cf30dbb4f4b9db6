package launcher_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/qlaunch/qlaunch/kernels"
	"github.com/qlaunch/qlaunch/launcher"
	"github.com/qlaunch/qlaunch/launcher/client"
	"github.com/qlaunch/qlaunch/launcher/launchertest"
)

// entries sums the tasks every rank of the tree holds: relays' scheduler
// entries (their status row's Queued) and worker ranks' queued and
// running tasks.
func entries(t *testing.T, c *client.Client) int {
	t.Helper()
	rows, err := c.Status(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, r := range rows {
		n += r.Queued + r.Busy
	}
	return n
}

// settles waits, bounded, until the tree holds no task entry and the
// server's monitor none either.
func settles(t *testing.T, c *client.Client, mon *launcher.Monitor, what string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		s, err := mon.Stats()
		if err != nil {
			t.Fatal(err)
		}
		n := entries(t, c)
		if n == 0 && s.Held == 0 && s.InFlight == 0 {
			return
		}
		if time.Now().After(deadline) {
			rows, _ := c.Status(ctxT(t))
			for _, r := range rows {
				t.Logf("rank %d %s queued %d busy %d", r.Rank, r.Role, r.Queued, r.Busy)
			}
			t.Fatalf("%s: %d entries left in the tree (server: %d held, %d in flight)", what, n, s.Held, s.InFlight)
		}
		<-tick.C
	}
}

// arrived waits, bounded, until the tree holds n task entries at least
// (the map reached the server and was placed).
func arrived(t *testing.T, c *client.Client, n int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for entries(t, c) < n {
		if time.Now().After(deadline) {
			t.Fatalf("the map did not reach the tree: %d entries, want %d", entries(t, c), n)
		}
		<-tick.C
	}
}

// TestCancelledTasksLeaveNoEntries: tasks cancelled by their client, or
// dropped with a client that went away, release their entries at every
// level of a tree (server, managers, worker ranks).
func TestCancelledTasksLeaveNoEntries(t *testing.T) {
	mon := launcher.NewMonitor()
	tr := launchertest.Start(t, launchertest.Shape{Managers: []launchertest.Shape{{Workers: []int{2, 1}}, {Workers: []int{2}}}},
		launchertest.Options{Monitor: mon})
	obs := tr.Client()
	settles(t, obs, mon, "baseline")
	const n = 20000
	ts := make([]kernels.Task, n)
	for i := range ts {
		ts[i] = kernels.Task{Kernel: "sleep", Args: []string{"60000"}}
	}
	// Cancelled by the client.
	c := tr.Client()
	f, err := c.Map(ctxT(t), ts)
	if err != nil {
		t.Fatal(err)
	}
	arrived(t, obs, n)
	if err := c.Cancel(f); err != nil {
		t.Fatal(err)
	}
	settles(t, obs, mon, "after Cancel")
	// Dropped with a client that goes away.
	c2 := tr.Client()
	if _, err := c2.Map(context.Background(), ts); err != nil {
		t.Fatal(err)
	}
	arrived(t, obs, n)
	c2.Close()
	settles(t, obs, mon, "after the client left")
	// Failed tasks too.
	fails := make([]kernels.Task, 1000)
	for i := range fails {
		fails[i] = kernels.Task{Kernel: "fail", Args: []string{"no"}}
	}
	ff, err := c.Map(ctxT(t), fails)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Wait(ctxT(t), ff); err == nil {
		t.Fatal("failing tasks succeeded")
	}
	settles(t, obs, mon, "after failed tasks")
	if got := mustRun(t, obs, "echo", "still"); got != "still" {
		t.Fatal(got)
	}
}

// TestNoSlotLeftAfterLosses: ranks that nothing replaces (as under srun)
// take their slots with them; once none is left anywhere in a two-level
// tree, a held retryable task and every new task fail at once, naming a
// lost rank, instead of waiting.
func TestNoSlotLeftAfterLosses(t *testing.T) {
	tr := launchertest.Start(t, launchertest.Shape{Managers: []launchertest.Shape{{Workers: []int{1}}}})
	c := tr.Client()
	if got := mustRun(t, c, "echo", "before"); got != "before" {
		t.Fatal(got)
	}
	ctx := ctxT(t)
	f, err := c.Submit(ctx, kernels.Task{Kernel: "sleep", Args: []string{"60000"}})
	if err != nil {
		t.Fatal(err)
	}
	arrived(t, c, 1)
	worker := 0
	for i, r := range tr.Ranks {
		if r.Role == "worker" {
			worker = i
		}
	}
	tr.Kill(worker)
	check := func(err error, what string) {
		t.Helper()
		var te *client.TaskError
		if !errors.As(err, &te) || !te.Lost || te.Rank != worker || !strings.Contains(err.Error(), "no worker slot is left") {
			t.Fatalf("%s: %v, want a no-slot error naming rank %d", what, err, worker)
		}
	}
	_, err = c.Wait(ctx, f)
	check(err, "the retryable task of the lost rank")
	t0 := time.Now()
	f, err = c.Submit(ctx, kernels.Task{Kernel: "echo", Args: []string{"late"}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Wait(ctx, f)
	check(err, "a later task")
	if d := time.Since(t0); d > time.Second {
		t.Errorf("the later task failed after %v, want at once", d)
	}
}
