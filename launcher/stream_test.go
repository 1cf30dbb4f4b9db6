package launcher_test

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/qlaunch/qlaunch/kernels"
	"github.com/qlaunch/qlaunch/launcher/launchertest"
)

// TestResultsStream: 20 tasks of 40 ms on one slot go to the rank in
// batches, but each result reaches the client within 100 ms of its kernel
// returning, not when its batch is done.
func TestResultsStream(t *testing.T) {
	const n, nap, bound = 20, 40 * time.Millisecond, 100 * time.Millisecond
	var mu sync.Mutex
	finished := make([]time.Time, n)
	napK := kernel("nap", func(ctx context.Context, _ kernels.Runtime, args []string, _ []byte) ([]byte, error) {
		i, _ := strconv.Atoi(args[0])
		select {
		case <-time.After(nap):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		mu.Lock()
		finished[i] = time.Now()
		mu.Unlock()
		return nil, nil
	})
	tr := launchertest.Start(t, launchertest.Shape{Workers: []int{1}}, launchertest.Options{Kernels: []kernels.Kernel{napK}})
	c := tr.Client()
	ctx := ctxT(t)
	ts := make([]kernels.Task, n)
	for i := range ts {
		ts[i] = kernels.Task{Kernel: "nap", Args: []string{strconv.Itoa(i)}}
	}
	f, err := c.Map(ctx, ts)
	if err != nil {
		t.Fatal(err)
	}
	arrived := make([]time.Time, n)
	for got := 0; got < n; {
		rs, err := c.Next(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		now := time.Now()
		for _, r := range rs {
			if r.Err != nil {
				t.Fatalf("task %d: %v", r.Index, r.Err)
			}
			arrived[r.Index] = now
			got++
		}
	}
	mu.Lock()
	defer mu.Unlock()
	for i := range n {
		if d := arrived[i].Sub(finished[i]); d > bound {
			t.Errorf("task %d: result arrived %v after its kernel returned, want at most %v", i, d.Round(time.Millisecond), bound)
		}
	}
}
