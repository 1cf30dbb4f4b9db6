package launcher_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/qlaunch/qlaunch/kernels"
	"github.com/qlaunch/qlaunch/launcher"
	"github.com/qlaunch/qlaunch/launcher/launchertest"
)

// TestRelayRecyclesLargeTaskBuffers: the server and a manager give the
// read buffers of large task batches back to their connections once every
// body in them was written on and no task kept for a retry refers to them
// (wire.Conn.Recycle): the server's Recycled count grows, and every
// payload reaches its kernel intact although later batches are read into
// recycled buffers while earlier ones are still queued or kept. Each
// task's kernel returns the SHA-256 of its payload, so a buffer reused too
// early would show as a wrong sum. Retryable tasks (kept by the scheduler
// until they finish) and others (let go once written), of 1 MiB (a frame
// each), 300 KiB (several large records per frame) and 10 KiB (copied
// into batches, the frame kept only for retries), travel in two maps at
// once, so frames queue behind each other at every hop.
func TestRelayRecyclesLargeTaskBuffers(t *testing.T) {
	sum := func(_ context.Context, _ kernels.Runtime, _ []string, p []byte) ([]byte, error) {
		s := sha256.Sum256(p)
		return s[:], nil
	}
	mon := launcher.NewMonitor()
	tr := launchertest.Start(t, launchertest.Shape{Managers: []launchertest.Shape{{Workers: []int{2, 1}}}}, launchertest.Options{
		Kernels: []kernels.Kernel{
			{Name: "sum-retry", Func: sum, Retryable: true},
			{Name: "sum-once", Func: sum},
		},
		Monitor: mon,
	})
	c := tr.Client()
	rng := rand.NewChaCha8([32]byte{16})
	random := func(n int) []byte {
		b := make([]byte, n)
		_, _ = rng.Read(b)
		return b
	}
	for _, size := range []int{1 << 20, 300 << 10, 10 << 10} {
		for _, kernel := range []string{"sum-retry", "sum-once"} {
			t.Run(fmt.Sprintf("%s/%d", kernel, size), func(t *testing.T) {
				ctx := ctxT(t)
				before := recycled(t, mon)
				for round := range 2 {
					var maps [2][]kernels.Task
					var futures [2]kernels.Future
					for m := range maps {
						n := max(4, (4<<20)/size)
						for range n {
							maps[m] = append(maps[m], kernels.Task{Kernel: kernel, Payload: random(size)})
						}
						f, err := c.Map(ctx, maps[m])
						if err != nil {
							t.Fatal(err)
						}
						futures[m] = f
					}
					for m, f := range futures {
						vals, err := c.Wait(ctx, f)
						if err != nil {
							t.Fatal(err)
						}
						for i, task := range maps[m] {
							want := sha256.Sum256(task.Payload)
							if string(vals[i]) != string(want[:]) {
								t.Fatalf("round %d, map %d, task %d: the kernel saw another payload than the one sent", round, m, i)
							}
						}
					}
				}
				if after := recycled(t, mon); after <= before {
					t.Fatalf("the server recycled no read buffer: Recycled %d before, %d after", before, after)
				}
			})
		}
	}
}

func recycled(t *testing.T, mon *launcher.Monitor) uint64 {
	t.Helper()
	s, err := mon.Stats()
	if err != nil {
		t.Fatal(err)
	}
	return s.Wire.Recycled
}

// TestRelayKeepsQueuedTaskBuffers: a task batch's read buffer is not
// recycled while a frame carrying one of its bodies is still queued for a
// child that does not read. The kernels (not retryable, so the scheduler
// keeps no body) block until every task was placed: the worker rank's
// reader runs one itself and stops reading, the server's socket to it
// fills, and later 1 MiB frames wait in its outbox while the server reads
// on from the client. Once the kernels go on, every payload must reach
// its kernel as sent.
func TestRelayKeepsQueuedTaskBuffers(t *testing.T) {
	gate := make(chan struct{})
	sum := func(ctx context.Context, _ kernels.Runtime, _ []string, p []byte) ([]byte, error) {
		select {
		case <-gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		s := sha256.Sum256(p)
		return s[:], nil
	}
	mon := launcher.NewMonitor()
	tr := launchertest.Start(t, launchertest.Shape{Workers: []int{1}}, launchertest.Options{
		Kernels: []kernels.Kernel{{Name: "sum-gated", Func: sum}},
		Monitor: mon,
	})
	c := tr.Client()
	ctx := ctxT(t)
	rng := rand.NewChaCha8([32]byte{17})
	const n = 24
	ts := make([]kernels.Task, n)
	for i := range ts {
		ts[i] = kernels.Task{Kernel: "sum-gated", Payload: make([]byte, 1<<20)}
		_, _ = rng.Read(ts[i].Payload)
	}
	f, err := c.Map(ctx, ts)
	if err != nil {
		t.Fatal(err)
	}
	placed(t, mon, n)
	close(gate)
	vals, err := c.Wait(ctx, f)
	if err != nil {
		t.Fatal(err)
	}
	for i, task := range ts {
		want := sha256.Sum256(task.Payload)
		if string(vals[i]) != string(want[:]) {
			t.Fatalf("task %d: the kernel saw another payload than the one sent", i)
		}
	}
}

// placed waits, bounded, until the server has placed n tasks.
func placed(t *testing.T, mon *launcher.Monitor, n int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		s, err := mon.Stats()
		if err != nil {
			t.Fatal(err)
		}
		if s.InFlight >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the server placed %d tasks, want %d", s.InFlight, n)
		}
		<-tick.C
	}
}
