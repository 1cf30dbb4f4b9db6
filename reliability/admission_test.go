package reliability_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/qlaunch/qlaunch/kernels"
	"github.com/qlaunch/qlaunch/reliability"
)

// admissionTasks is the size of the admission test's map: 10^7 in the
// long lane (QLAUNCH_SOAK=1, make reliability-long), 2·10^5 otherwise;
// the bound and its check are the same.
func admissionTasks() int {
	if os.Getenv("QLAUNCH_SOAK") == "1" {
		return 10_000_000
	}
	return 200_000
}

// TestAdmissionBound: a client maps many tiny tasks while both slots of
// the only worker rank run gated tasks, so nothing is answered. The server reads the
// client only while it has fewer than [runtime] max_client_tasks tasks in
// flight: the count it reports stays at the bound (plus at most one
// batch of 1 MiB) and its resident memory stays within a bound of its
// own, while the client's map waits. Once the gates open every task gets
// its result, under the same memory bound.
func TestAdmissionBound(t *testing.T) {
	t.Parallel()
	n := admissionTasks()
	const bound = 20_000
	rec := newRecord(t, fmt.Sprintf("admission: %d-task tiny map, worker busy, bound %d", n, bound))
	a := startAttached(t, "slots_per_rank = 2", fmt.Sprintf("[runtime]\nmax_client_tasks = %d\ncompression = \"none\"\n", bound))
	c := a.client()
	base, err := reliability.ReadMem(a.run.pid())
	if err != nil {
		t.Fatal(err)
	}
	g := newGates(t, a.dir, 2)
	gated := []kernels.Future{submit(t, c, reliability.GatedTask(a.dir, 0)), submit(t, c, reliability.GatedTask(a.dir, 1))}
	g.next()
	g.next()
	tasks := make([]kernels.Task, n)
	for i := range tasks {
		tasks[i] = kernels.Task{Kernel: "echo"}
	}
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Minute)
	defer cancel()
	// Map writes the map as it encodes it, so it waits while the server
	// does not read the client: it runs on the side, and returns once the
	// gates opened and the server read the rest.
	type mapped struct {
		f   kernels.Future
		err error
	}
	mapDone := make(chan mapped, 1)
	go func() {
		f, err := c.Map(ctx, tasks)
		mapDone <- mapped{f, err}
	}()
	// The server's tasks in flight reach the bound and stay there: the
	// client is no longer read. One batch of records (MaxBatch, 1 MiB)
	// may pass it: an echo record with no argument is a few bytes.
	const batchSlack = (1 << 20) / 8
	// Asked through another client: the paused one's frames wait unread.
	watcher := a.client()
	inFlight := func() int {
		st, err := watcher.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range st {
			if r.Rank == 0 {
				return r.Queued
			}
		}
		t.Fatal("no rank 0 in the status")
		return 0
	}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	deadline := time.Now().Add(startBound)
	for inFlight() < bound {
		if time.Now().After(deadline) {
			t.Fatalf("the server holds %d tasks after %v, want the bound %d", inFlight(), startBound, bound)
		}
		<-tick.C
	}
	peak, peakRSS := 0, 0
	for range 50 { // a second of samples at the bound
		q := inFlight()
		peak = max(peak, q)
		if q > bound+batchSlack {
			t.Fatalf("the server holds %d tasks in flight, over the bound %d plus one batch", q, bound)
		}
		m, err := reliability.ReadMem(a.run.pid())
		if err != nil {
			t.Fatal(err)
		}
		peakRSS = max(peakRSS, m.RSSKiB)
		<-tick.C
	}
	// The memory bound: the baseline plus 2 KiB per task in flight (an
	// entry and its share of buffers and maps; ~300 B measured) plus
	// 64 MiB for buffers of the links.
	limitKiB := base.RSSKiB + 2*(bound+batchSlack) + 64<<10
	if peakRSS > limitKiB {
		t.Errorf("server RSS %d KiB with %d tasks in flight, over the bound %d KiB (baseline %d KiB)", peakRSS, peak, limitKiB, base.RSSKiB)
	}
	// A map larger than the socket buffers hold is still being written:
	// the back-pressure reached the client.
	mapWaited := "no"
	select {
	case m := <-mapDone:
		mapDone <- m
	default:
		mapWaited = "yes"
	}
	// The rest of the map runs under the same bound: the server's RSS is
	// sampled until it ends.
	g.release(0)
	g.release(1)
	done := make(chan struct{})
	sampled := make(chan int)
	go func() {
		most := 0
		for {
			if m, err := reliability.ReadMem(a.run.pid()); err == nil {
				most = max(most, m.RSSKiB)
			}
			select {
			case <-done:
				sampled <- most
				return
			case <-tick.C:
			}
		}
	}()
	var m mapped
	select {
	case m = <-mapDone:
	case <-ctx.Done():
		t.Fatalf("the map was not written within the test's bound: %v", ctx.Err())
	}
	if m.err != nil {
		t.Fatal(m.err)
	}
	got, err := c.Wait(ctx, m.f)
	close(done)
	runRSS := <-sampled
	if err != nil {
		t.Fatalf("the map after the worker ran again: %v", err)
	}
	if len(got) != n {
		t.Fatalf("%d results, want %d", len(got), n)
	}
	for _, gf := range gated {
		if _, err := c.Wait(ctx, gf); err != nil {
			t.Fatalf("gated task: %v", err)
		}
	}
	if runRSS > limitKiB {
		t.Errorf("server RSS %d KiB while the map ran, over the bound %d KiB", runRSS, limitKiB)
	}
	peakRSS = max(peakRSS, runRSS)
	end, err := reliability.ReadMem(a.run.pid())
	if err != nil {
		t.Fatal(err)
	}
	rec.Memory = fmt.Sprintf("%d MiB at the bound (baseline %d MiB, limit %d MiB)", peakRSS>>10, base.RSSKiB>>10, limitKiB>>10)
	rec.Note = fmt.Sprintf("in flight at most %d (bound %d + one batch); client's Map still waiting at the bound: %s; all %d results once the gates opened; RSS at the end %d MiB",
		peak, bound, mapWaited, n, end.RSSKiB>>10)
	a.shutdown()
}
