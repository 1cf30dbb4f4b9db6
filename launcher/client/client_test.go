package client_test

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/qlaunch/qlaunch/kernels"
	"github.com/qlaunch/qlaunch/launcher/client"
	"github.com/qlaunch/qlaunch/launcher/launchertest"
	"github.com/qlaunch/qlaunch/launcher/wire"
)

func TestClientLifecycle(t *testing.T) {
	tr := launchertest.Start(t, launchertest.Shape{Workers: []int{1}})
	c := tr.Client()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()

	if _, err := c.Wait(ctx, kernels.Future{ID: 99, N: 1}); !errors.Is(err, kernels.ErrUnknownFuture) {
		t.Fatalf("wait on a future never issued: %v", err)
	}
	if err := c.Cancel(kernels.Future{ID: 99, N: 1}); !errors.Is(err, kernels.ErrUnknownFuture) {
		t.Fatalf("cancel of a future never issued: %v", err)
	}
	f, err := c.Submit(ctx, kernels.Task{Kernel: "echo", Args: []string{"x"}})
	if err != nil {
		t.Fatal(err)
	}
	if v, err := c.Wait(ctx, f); err != nil || string(v[0]) != "x" {
		t.Fatalf("echo: %q %v", v, err)
	}
	// A wait already returned: Next has nothing more.
	if _, err := c.Next(ctx, f); !errors.Is(err, kernels.ErrNoMoreResults) {
		t.Fatalf("next after wait: %v", err)
	}
	// A wait interrupted by its context returns the context's error, and
	// the future can still be waited on.
	g, _ := c.Submit(ctx, kernels.Task{Kernel: "sleep", Args: []string{"60000"}})
	short, stop := context.WithCancel(ctx)
	stop()
	if _, err := c.Wait(short, g); !errors.Is(err, context.Canceled) {
		t.Fatalf("wait with a cancelled context: %v", err)
	}
	// Closing fails waits and later calls with ErrClosed; twice is harmless.
	done := make(chan error, 1)
	go func() {
		_, err := c.Wait(ctx, g)
		done <- err
	}()
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; !errors.Is(err, client.ErrClosed) {
		t.Fatalf("wait interrupted by close: %v", err)
	}
	if _, err := c.Submit(ctx, kernels.Task{Kernel: "noop"}); !errors.Is(err, client.ErrClosed) {
		t.Fatalf("submit after close: %v", err)
	}
	if _, err := c.Status(ctx); !errors.Is(err, client.ErrClosed) {
		t.Fatalf("status after close: %v", err)
	}
}

func TestDialNoServer(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if _, err := client.Dial(ctx, "127.0.0.1:1", client.Options{}); err == nil {
		t.Fatal("dial to a closed port succeeded")
	}
}

// TestMapLargerThanFrameLimit maps 40 payloads of about 1 MiB each (well
// over the frame limit, here 16 MiB, in total) to echo, which returns
// them: both the task batches going down and the result batches coming up
// must be cut into frames, and every result must come back exactly once.
func TestMapLargerThanFrameLimit(t *testing.T) {
	tr := launchertest.Start(t, launchertest.Shape{Workers: []int{2}}, launchertest.Options{Wire: wire.Options{MaxFrame: 16 << 20}})
	c := tr.Client()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	const n, size = 40, 1 << 20
	base := make([]byte, size+n)
	for i := range base {
		base[i] = byte(i * i >> 5)
	}
	ts := make([]kernels.Task, n)
	for i := range ts {
		// Task i carries size+i bytes, so each result names its task.
		ts[i] = kernels.Task{Kernel: "echo", Payload: base[:size+i]}
	}
	f, err := c.Map(ctx, ts)
	if err != nil {
		t.Fatal(err)
	}
	seen := make([]int, n)
	for taken := 0; taken < n; {
		rs, err := c.Next(ctx, f)
		if err != nil {
			t.Fatalf("after %d results: %v", taken, err)
		}
		for _, r := range rs {
			if r.Err != nil {
				t.Fatalf("task %d: %v", r.Index, r.Err)
			}
			if !bytes.Equal(r.Value, base[:size+r.Index]) {
				t.Fatalf("task %d returned %d bytes, want its own %d", r.Index, len(r.Value), size+r.Index)
			}
			seen[r.Index]++
		}
		taken += len(rs)
	}
	for i, k := range seen {
		if k != 1 {
			t.Errorf("task %d: %d results, want 1", i, k)
		}
	}
	if _, err := c.Next(ctx, f); !errors.Is(err, kernels.ErrNoMoreResults) {
		t.Errorf("next after every result: %v, want ErrNoMoreResults", err)
	}
	st := c.Stats()
	if st.FramesOut < n/4 {
		t.Errorf("client sent %d frames for %d MiB of tasks, want them cut near wire.MaxBatch", st.FramesOut, n)
	}
}

// TestMapTaskTooLarge: a task whose encoding exceeds the frame limit is
// refused by Map, and the connection stays usable.
func TestMapTaskTooLarge(t *testing.T) {
	tr := launchertest.Start(t, launchertest.Shape{Workers: []int{1}}, launchertest.Options{Wire: wire.Options{MaxFrame: 1 << 20}})
	c := tr.Client()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	_, err := c.Map(ctx, []kernels.Task{{Kernel: "echo"}, {Kernel: "echo", Payload: make([]byte, 1<<20)}})
	if !errors.Is(err, wire.ErrFrameTooLarge) {
		t.Fatalf("map of a task over the frame limit: %v, want ErrFrameTooLarge", err)
	}
	f, err := c.Submit(ctx, kernels.Task{Kernel: "echo", Args: []string{"ok"}})
	if err != nil {
		t.Fatal(err)
	}
	if v, err := c.Wait(ctx, f); err != nil || string(v[0]) != "ok" {
		t.Fatalf("echo after the refused map: %q %v", v, err)
	}
}
