package reliability_test

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/qlaunch/qlaunch/kernels"
	"github.com/qlaunch/qlaunch/reliability"
)

// TestResultsStream: a client maps 20 gated tasks to the one slot of a
// worker rank below a manager, so the rank holds them as one batch and
// runs them one after another. The test opens one gate at a time and
// waits for that task's result before it opens the next: each result
// must reach the client while every later task of the batch is still
// held at its gate (a rank that reported a batch only when it was done
// would never answer, and the wait would end at its bound). Each task
// writes when it finished (date +%s%N, this machine's clock); the row
// gives how long after that its result reached the client, against the
// issue's 100 ms, which is reported and not asserted (it is wall time on
// a shared machine).
func TestResultsStream(t *testing.T) {
	t.Parallel()
	const n, spec = 20, 100 * time.Millisecond
	rec := newRecord(t, fmt.Sprintf("results stream: %d gated tasks, 1 slot, one gate open at a time", n))
	r := newTree(t)
	r.flat(1)
	g := newGates(t, r.dir, n)
	c := r.client()
	tasks := make([]kernels.Task, n)
	for i := range tasks {
		tasks[i] = reliability.StampedGatedTask(r.dir, i)
	}
	f, err := c.Map(t.Context(), tasks)
	if err != nil {
		t.Fatal(err)
	}
	var lat []time.Duration
	for k := range n {
		started := g.next()
		g.release(started.index)
		ctx, cancel := context.WithTimeout(t.Context(), startBound)
		rs, err := c.Next(ctx, f)
		arrived := time.Now()
		cancel()
		if err != nil {
			t.Fatalf("result %d of %d (task %d released, %d still at their gates): %v\n%s", k+1, n, started.index, n-1-k, err, r.logs())
		}
		if len(rs) != 1 || rs[0].Index != started.index || rs[0].Err != nil {
			t.Fatalf("after opening gate %d only: results %+v, want task %d's alone", started.index, rs, started.index)
		}
		idx, ns, ok := strings.Cut(strings.TrimSpace(string(rs[0].Value)), " ")
		finished, err := strconv.ParseInt(ns, 10, 64)
		if !ok || idx != strconv.Itoa(started.index) || err != nil {
			t.Fatalf("task %d's output %q, want its index and when it finished", started.index, rs[0].Value)
		}
		lat = append(lat, arrived.Sub(time.Unix(0, finished)))
	}
	slices.Sort(lat)
	median, worst := lat[len(lat)/2], lat[len(lat)-1]
	within := 0
	for _, d := range lat {
		if d <= spec {
			within++
		}
	}
	t.Logf("finish to client: median %v, max %v; %d of %d within %v", median, worst, within, n, spec)
	rec.Detection = "median " + ms(median) + ", max " + ms(worst)
	rec.Note = fmt.Sprintf("each result came while every later task was still gated; %d of %d within the spec's %v (measured, not asserted)",
		within, n, spec)
	rec.Left = strconv.Itoa(len(r.shutdown()))
}
