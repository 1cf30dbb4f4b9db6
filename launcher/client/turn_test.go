package client_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/qlaunch/qlaunch/kernels"
	"github.com/qlaunch/qlaunch/launcher/client"
	"github.com/qlaunch/qlaunch/launcher/launchertest"
	"github.com/qlaunch/qlaunch/launcher/wire"
)

// TestLoneWaiterReadsItsOwnResults: a caller submitting and waiting in a
// loop reads its results from the socket itself, not through the
// background reader.
func TestLoneWaiterReadsItsOwnResults(t *testing.T) {
	tr := launchertest.Start(t, launchertest.Shape{Workers: []int{1}})
	c := tr.Client()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	const rounds = 200
	own0, bg0 := client.ReadCounts(c)
	for i := range rounds {
		f, err := c.Submit(ctx, kernels.Task{Kernel: "echo", Args: []string{strconv.Itoa(i)}})
		if err != nil {
			t.Fatal(err)
		}
		v, err := c.Wait(ctx, f)
		if err != nil || string(v[0]) != strconv.Itoa(i) {
			t.Fatalf("round %d: %q %v", i, v, err)
		}
	}
	own, bg := client.ReadCounts(c)
	own, bg = own-own0, bg-bg0
	// Each round's result is one frame. The background reader takes the
	// turn only when the caller leaves it for idleHandOff (a descheduled
	// test on a loaded machine), and the caller takes it back.
	if own < rounds/2 || bg >= rounds/2 {
		t.Fatalf("%d round trips: the caller read %d frames, the background reader %d", rounds, own, bg)
	}
}

// TestConcurrentWaitersAndMaps: callers waiting at once, with Wait and
// Next, beside maps of several batches being written, each get every
// result of theirs, right and once.
func TestConcurrentWaitersAndMaps(t *testing.T) {
	tr := launchertest.Start(t, launchertest.Shape{Workers: []int{2, 2}})
	c := tr.Client()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	// Round trippers, one task at a time.
	for g := range 4 {
		wg.Go(func() {
			for i := range 100 {
				want := fmt.Sprintf("%d.%d", g, i)
				f, err := c.Submit(ctx, kernels.Task{Kernel: "echo", Args: []string{want}})
				if err != nil {
					errs <- err
					return
				}
				v, err := c.Wait(ctx, f)
				if err != nil || string(v[0]) != want {
					errs <- fmt.Errorf("submit %s: %q %v", want, v, err)
					return
				}
			}
		})
	}
	// Maps drained with Next.
	for g := range 2 {
		wg.Go(func() {
			ts := make([]kernels.Task, 500)
			for i := range ts {
				ts[i] = kernels.Task{Kernel: "echo", Args: []string{fmt.Sprintf("m%d.%d", g, i)}}
			}
			for range 5 {
				f, err := c.Map(ctx, ts)
				if err != nil {
					errs <- err
					return
				}
				seen := make([]bool, len(ts))
				for got := 0; got < len(ts); {
					rs, err := c.Next(ctx, f)
					if err != nil {
						errs <- fmt.Errorf("map %d: next after %d results: %v", g, got, err)
						return
					}
					for _, r := range rs {
						if r.Err != nil || seen[r.Index] || string(r.Value) != fmt.Sprintf("m%d.%d", g, r.Index) {
							errs <- fmt.Errorf("map %d: result %d: %q %v (seen before: %v)", g, r.Index, r.Value, r.Err, seen[r.Index])
							return
						}
						seen[r.Index] = true
					}
					got += len(rs)
				}
			}
		})
	}
	// A map of several batches (wire.MaxBatch each), written while its
	// first results come back.
	wg.Go(func() {
		payload := make([]byte, 64<<10)
		n := 4 * wire.MaxBatch / len(payload)
		ts := make([]kernels.Task, n)
		for i := range ts {
			p := make([]byte, len(payload))
			copy(p, strconv.Itoa(i))
			ts[i] = kernels.Task{Kernel: "echo", Payload: p}
		}
		f, err := c.Map(ctx, ts)
		if err != nil {
			errs <- err
			return
		}
		vals, err := c.Wait(ctx, f)
		if err != nil || len(vals) != n {
			errs <- fmt.Errorf("large map: %d results, %v", len(vals), err)
			return
		}
		for i, v := range vals {
			if string(v[:len(strconv.Itoa(i))]) != strconv.Itoa(i) || len(v) != len(payload) {
				errs <- fmt.Errorf("large map: result %d is wrong", i)
				return
			}
		}
	})
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := c.Futures(); n != 0 {
		t.Fatalf("the client holds %d futures after every one was drained", n)
	}
}

// recordSignal is a slog handler that signals each record's message.
type recordSignal chan string

func (h recordSignal) Enabled(context.Context, slog.Level) bool { return true }
func (h recordSignal) Handle(_ context.Context, r slog.Record) error {
	h <- r.Message
	return nil
}
func (h recordSignal) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h recordSignal) WithGroup(string) slog.Handler      { return h }

// TestReaderTakesOverWhenIdle: with no caller waiting, the background
// reader takes the turn and reads what comes (a task's log record, its
// result); a caller that waits again takes the turn back and reads its
// result itself.
func TestReaderTakesOverWhenIdle(t *testing.T) {
	logs := make(recordSignal, 16)
	say := kernels.Kernel{Name: "say", Func: func(_ context.Context, rt kernels.Runtime, args []string, _ []byte) ([]byte, error) {
		rt.Logger().Info(args[0])
		return []byte(args[0]), nil
	}}
	tr := launchertest.Start(t, launchertest.Shape{Workers: []int{1}}, launchertest.Options{Kernels: []kernels.Kernel{say}})
	c := tr.Client(client.Options{Logger: slog.New(logs)})
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()

	f, err := c.Submit(ctx, kernels.Task{Kernel: "say", Args: []string{"unwaited"}})
	if err != nil {
		t.Fatal(err)
	}
	// Nobody waits: only the background reader can read the log record.
	select {
	case msg := <-logs:
		if msg != "unwaited" {
			t.Fatalf("log record %q", msg)
		}
	case <-ctx.Done():
		t.Fatal("no reader took over: the task's log record was never read")
	}
	own, bg := client.ReadCounts(c)
	if own != 0 || bg == 0 {
		t.Fatalf("before any wait: the callers read %d frames, the background reader %d", own, bg)
	}
	if v, err := c.Wait(ctx, f); err != nil || string(v[0]) != "unwaited" {
		t.Fatalf("wait: %q %v", v, err)
	}
	// A lone caller takes the turn back from the background reader.
	for i := range 20 {
		own0, _ := client.ReadCounts(c)
		f, err := c.Submit(ctx, kernels.Task{Kernel: "say", Args: []string{strconv.Itoa(i)}})
		if err != nil {
			t.Fatal(err)
		}
		if v, err := c.Wait(ctx, f); err != nil || string(v[0]) != strconv.Itoa(i) {
			t.Fatalf("wait %d: %q %v", i, v, err)
		}
		if own, _ := client.ReadCounts(c); own > own0 {
			return
		}
	}
	t.Fatal("in 20 round trips the caller never read a frame itself")
}

// TestWaitInterruptedWhileReading: a caller reading in its turn returns
// when its context ends or its future is cancelled, and the turn passes
// on: a later wait still gets its result.
func TestWaitInterruptedWhileReading(t *testing.T) {
	tr := launchertest.Start(t, launchertest.Shape{Workers: []int{2}})
	c := tr.Client()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	slow, err := c.Submit(ctx, kernels.Task{Kernel: "sleep", Args: []string{"60000"}})
	if err != nil {
		t.Fatal(err)
	}
	short, stop := context.WithTimeout(ctx, 20*time.Millisecond)
	defer stop()
	if _, err := c.Wait(short, slow); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("wait past its context: %v", err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := c.Wait(ctx, slow)
		done <- err
	}()
	f, err := c.Submit(ctx, kernels.Task{Kernel: "echo", Args: []string{"after"}})
	if err != nil {
		t.Fatal(err)
	}
	if v, err := c.Wait(ctx, f); err != nil || string(v[0]) != "after" {
		t.Fatalf("wait beside a blocked one: %q %v", v, err)
	}
	if err := c.Cancel(slow); err != nil {
		t.Fatal(err)
	}
	if err := <-done; !errors.Is(err, kernels.ErrCancelled) {
		t.Fatalf("wait on a future cancelled meanwhile: %v", err)
	}
	f, err = c.Submit(ctx, kernels.Task{Kernel: "echo", Args: []string{"last"}})
	if err != nil {
		t.Fatal(err)
	}
	if v, err := c.Wait(ctx, f); err != nil || string(v[0]) != "last" {
		t.Fatalf("wait after a cancel: %q %v", v, err)
	}
}
