package client_test

import (
	"context"
	"errors"
	"runtime"
	"testing"
	"time"

	"github.com/qlaunch/qlaunch/kernels"
	"github.com/qlaunch/qlaunch/launcher/launchertest"
)

func heapInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

// TestLongLivedClientStaysFlat: 10⁵ maps drained with Next and 10⁴
// cancelled futures leave the client's futures table empty and its heap
// where it was (2·10⁴ maps under the race detector: raceEnabled).
func TestLongLivedClientStaysFlat(t *testing.T) {
	const cancels, window = 10_000, 1000
	maps := 100_000
	if raceEnabled {
		maps = 20_000
	}
	tr := launchertest.Start(t, launchertest.Shape{Workers: []int{2}})
	c := tr.Client()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	task := []kernels.Task{{Kernel: "echo", Args: []string{"x"}}}
	drain := func(n int) {
		fs := make([]kernels.Future, 0, window)
		for done := 0; done < n; done += window {
			fs = fs[:0]
			for range window {
				f, err := c.Map(ctx, task)
				if err != nil {
					t.Fatal(err)
				}
				fs = append(fs, f)
			}
			for _, f := range fs {
				rs, err := c.Next(ctx, f)
				if err != nil || len(rs) != 1 || string(rs[0].Value) != "x" {
					t.Fatalf("next: %v %v", rs, err)
				}
			}
		}
	}
	drain(window) // warm up: buffers, maps at their working size
	base := heapInUse()
	drain(maps)
	if n := c.Futures(); n != 0 {
		t.Fatalf("after %d maps drained with Next the client holds %d futures, want 0", maps, n)
	}
	// The last result taken, Next and Wait say so.
	f, _ := c.Map(ctx, task)
	if _, err := c.Next(ctx, f); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Next(ctx, f); !errors.Is(err, kernels.ErrNoMoreResults) {
		t.Fatalf("next after the last result: %v", err)
	}
	if _, err := c.Wait(ctx, f); !errors.Is(err, kernels.ErrNoMoreResults) {
		t.Fatalf("wait after next took every result: %v", err)
	}
	for range cancels {
		f, err := c.Submit(ctx, kernels.Task{Kernel: "sleep", Args: []string{"60000"}})
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Cancel(f); err != nil {
			t.Fatal(err)
		}
	}
	if n := c.Futures(); n != 0 {
		t.Fatalf("after %d cancellations the client holds %d futures, want 0", cancels, n)
	}
	if _, err := c.Wait(ctx, f); !errors.Is(err, kernels.ErrNoMoreResults) {
		t.Fatalf("wait on a future drained long ago: %v", err)
	}
	// A recent cancellation is still reported as one.
	g, _ := c.Submit(ctx, kernels.Task{Kernel: "sleep", Args: []string{"60000"}})
	c.Cancel(g)
	if _, err := c.Wait(ctx, g); !errors.Is(err, kernels.ErrCancelled) {
		t.Fatalf("wait after cancel: %v", err)
	}
	// The runtime is still responsive: the cancellations were handled.
	drain(window)
	if grew := int64(heapInUse()) - int64(base); grew > 4<<20 {
		t.Fatalf("client heap grew by %d KiB over %d maps and %d cancellations, want under 4 MiB", grew>>10, maps, cancels)
	}
}
