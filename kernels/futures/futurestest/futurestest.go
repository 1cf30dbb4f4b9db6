// Package futurestest is the contract test of futures (package
// kernels/futures): Run checks that a runtime's Submit, Map, Wait, Next
// and Cancel keep the one contract, against real tasks. Each runtime
// that hands out futures (the client, the worker's in-task runtime,
// kerneltest) runs it from its own tests with a constructor that starts
// it with Kernels registered.
package futurestest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/qlaunch/qlaunch/kernels"
)

// Runtime is what the contract speaks of: kernels.Runtime's futures
// calls, which the client has too.
type Runtime interface {
	Map(ctx context.Context, ts []kernels.Task) (kernels.Future, error)
	Wait(ctx context.Context, f kernels.Future) ([][]byte, error)
	Next(ctx context.Context, f kernels.Future) ([]kernels.Result, error)
	Cancel(f kernels.Future) error
}

// Counter is implemented by a runtime that says how many futures it holds
// (Table.Len); Run then checks that drained and cancelled ones are freed.
type Counter interface {
	Futures() int
}

// Kernel names of Kernels.
const (
	Echo = "futurestest.echo" // returns its payload
	Fail = "futurestest.fail" // fails with its payload as the message
	Hold = "futurestest.hold" // returns once its context ends
	Root = "futurestest.root" // InTask's kernel
)

// InTask returns the kernel (named Root) through which an in-task runtime
// is put under Run: it sends the kernels.Runtime it runs with to rts and
// returns once its context ends. The constructor starts it as a task,
// takes its runtime from rts, and cancels it when the test ends.
func InTask(rts chan<- kernels.Runtime) kernels.Kernel {
	return kernels.Kernel{Name: Root, Func: func(ctx context.Context, rt kernels.Runtime, _ []string, _ []byte) ([]byte, error) {
		select {
		case rts <- rt:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		<-ctx.Done()
		return nil, nil
	}}
}

// Kernels returns the kernels Run submits; the runtime under test must
// have them registered.
func Kernels() []kernels.Kernel {
	return []kernels.Kernel{
		{Name: Echo, Func: func(_ context.Context, _ kernels.Runtime, _ []string, p []byte) ([]byte, error) {
			return append([]byte(nil), p...), nil
		}},
		{Name: Fail, Func: func(_ context.Context, _ kernels.Runtime, _ []string, p []byte) ([]byte, error) {
			return nil, errors.New(string(p))
		}},
		{Name: Hold, Func: func(ctx context.Context, _ kernels.Runtime, _ []string, _ []byte) ([]byte, error) {
			<-ctx.Done()
			return nil, ctx.Err()
		}},
	}
}

// Gate is the kernel name of a task that returns "gate" once its check
// opens the gate, or its context ends.
const Gate = "futurestest.gate"

func gate(g <-chan struct{}) kernels.Kernel {
	return kernels.Kernel{Name: Gate, Func: func(ctx context.Context, _ kernels.Runtime, _ []string, _ []byte) ([]byte, error) {
		select {
		case <-g:
			return []byte("gate"), nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}}
}

// bound is how long any one check may take before it fails (a hang is a
// failure, not a timeout of the whole test binary).
const bound = time.Minute

func echoes(n int) []kernels.Task {
	ts := make([]kernels.Task, n)
	for i := range ts {
		ts[i] = kernels.Task{Kernel: Echo, Payload: []byte(strconv.Itoa(i))}
	}
	return ts
}

// Run checks the contract against the runtime newRuntime returns; it is
// called once per subtest with the kernels that subtest submits (Kernels
// and its own), which the runtime must have registered; the runtime is
// the caller's to stop (with t.Cleanup).
func Run(t *testing.T, newRuntime func(t *testing.T, ks []kernels.Kernel) Runtime) {
	checks := []struct {
		name string
		fn   func(t *testing.T, ctx context.Context, rt Runtime, openGate func())
	}{
		{"WaitInOrderThenFreed", waitInOrder},
		{"NextEachOnceThenFreed", nextEachOnce},
		{"NextThenWait", nextThenWait},
		{"FirstErrorUnwrapped", firstError},
		{"Cancel", cancel},
		{"UnknownFuture", unknown},
		{"WaitContextEnds", waitContext},
		{"ManyDrainedStayFlat", manyFlat},
	}
	for _, c := range checks {
		t.Run(c.name, func(t *testing.T) {
			g := make(chan struct{})
			var once sync.Once
			open := func() { once.Do(func() { close(g) }) }
			t.Cleanup(open)
			rt := newRuntime(t, append(Kernels(), gate(g)))
			ctx, stop := context.WithTimeout(context.Background(), bound)
			defer stop()
			c.fn(t, ctx, rt, open)
		})
	}
}

// held returns the runtime's count of futures, or -1 if it keeps none.
func held(rt Runtime) int {
	if c, ok := rt.(Counter); ok {
		return c.Futures()
	}
	return -1
}

func wantHeld(t *testing.T, rt Runtime, want int, when string) {
	t.Helper()
	if got := held(rt); got >= 0 && got != want {
		t.Errorf("%s: the runtime holds %d futures, want %d", when, got, want)
	}
}

func wantDrained(t *testing.T, ctx context.Context, rt Runtime, f kernels.Future) {
	t.Helper()
	if vs, err := rt.Wait(ctx, f); !errors.Is(err, kernels.ErrNoMoreResults) {
		t.Errorf("Wait on a drained future: %q, %v; want ErrNoMoreResults", vs, err)
	}
	if rs, err := rt.Next(ctx, f); !errors.Is(err, kernels.ErrNoMoreResults) {
		t.Errorf("Next on a drained future: %v, %v; want ErrNoMoreResults", rs, err)
	}
}

func waitInOrder(t *testing.T, ctx context.Context, rt Runtime, _ func()) {
	base := held(rt)
	f, err := rt.Map(ctx, echoes(100))
	if err != nil {
		t.Fatal(err)
	}
	if f.N != 100 {
		t.Fatalf("future of %d results, want 100", f.N)
	}
	vs, err := rt.Wait(ctx, f)
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range vs {
		if string(v) != strconv.Itoa(i) {
			t.Fatalf("value %d = %q", i, v)
		}
	}
	wantHeld(t, rt, base, "after Wait")
	wantDrained(t, ctx, rt, f)
	// Cancelling a drained future does nothing.
	if err := rt.Cancel(f); err != nil {
		t.Errorf("Cancel after Wait: %v, want nil", err)
	}
}

func nextEachOnce(t *testing.T, ctx context.Context, rt Runtime, _ func()) {
	base := held(rt)
	const n = 100
	f, err := rt.Map(ctx, echoes(n))
	if err != nil {
		t.Fatal(err)
	}
	seen := make([]bool, n)
	for got := 0; got < n; {
		rs, err := rt.Next(ctx, f)
		if err != nil {
			t.Fatalf("Next after %d results: %v", got, err)
		}
		if len(rs) == 0 {
			t.Fatal("Next returned no result and no error")
		}
		for _, r := range rs {
			if r.Index < 0 || r.Index >= n || seen[r.Index] {
				t.Fatalf("result %d out of range or returned twice", r.Index)
			}
			if r.Err != nil || string(r.Value) != strconv.Itoa(r.Index) {
				t.Fatalf("result %d = %q, %v", r.Index, r.Value, r.Err)
			}
			seen[r.Index] = true
			got++
		}
	}
	wantHeld(t, rt, base, "after Next took the last result")
	wantDrained(t, ctx, rt, f)
}

func nextThenWait(t *testing.T, ctx context.Context, rt Runtime, openGate func()) {
	f, err := rt.Map(ctx, append(echoes(2), kernels.Task{Kernel: Gate}))
	if err != nil {
		t.Fatal(err)
	}
	for taken := 0; taken < 2; {
		rs, err := rt.Next(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rs {
			if r.Index == 2 {
				t.Fatal("Next returned the gated task's result before the gate opened")
			}
		}
		taken += len(rs)
	}
	openGate()
	vs, err := rt.Wait(ctx, f)
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprintf("%s", vs); got != "[0 1 gate]" {
		t.Errorf("Wait after a Next: %s, want every value, those taken too", got)
	}
	wantDrained(t, ctx, rt, f)
}

func firstError(t *testing.T, ctx context.Context, rt Runtime, _ func()) {
	ts := []kernels.Task{
		{Kernel: Echo, Payload: []byte("ok")},
		{Kernel: Fail, Payload: []byte("first failure")},
		{Kernel: Fail, Payload: []byte("second failure")},
	}
	f, err := rt.Map(ctx, ts)
	if err != nil {
		t.Fatal(err)
	}
	_, waitErr := rt.Wait(ctx, f)
	if waitErr == nil {
		t.Fatal("Wait over a failed task returned no error")
	}
	g, err := rt.Map(ctx, ts)
	if err != nil {
		t.Fatal(err)
	}
	byIndex := make([]error, len(ts))
	for got := 0; got < len(ts); {
		rs, err := rt.Next(ctx, g)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rs {
			byIndex[r.Index] = r.Err
			got++
		}
	}
	if byIndex[0] != nil || byIndex[1] == nil || byIndex[2] == nil {
		t.Fatalf("Next's errors by index: %v", byIndex)
	}
	// Wait returns the error of the lowest index, as Next reports it:
	// not wrapped, not the other.
	if waitErr.Error() != byIndex[1].Error() {
		t.Errorf("Wait's error %q, want the first by index as Next reports it, %q", waitErr, byIndex[1])
	}
	wantDrained(t, ctx, rt, f)
	wantDrained(t, ctx, rt, g)
}

func cancel(t *testing.T, ctx context.Context, rt Runtime, _ func()) {
	base := held(rt)
	f, err := rt.Map(ctx, []kernels.Task{{Kernel: Hold}, {Kernel: Hold}})
	if err != nil {
		t.Fatal(err)
	}
	if err := rt.Cancel(f); err != nil {
		t.Fatal(err)
	}
	wantHeld(t, rt, base, "after Cancel")
	if _, err := rt.Wait(ctx, f); !errors.Is(err, kernels.ErrCancelled) {
		t.Errorf("Wait on a cancelled future: %v, want ErrCancelled", err)
	}
	if _, err := rt.Next(ctx, f); !errors.Is(err, kernels.ErrCancelled) {
		t.Errorf("Next on a cancelled future: %v, want ErrCancelled", err)
	}
	if err := rt.Cancel(f); err != nil {
		t.Errorf("second Cancel: %v, want nil", err)
	}
	// The runtime goes on: the held tasks were stopped, their slots free.
	g, err := rt.Map(ctx, echoes(4))
	if err != nil {
		t.Fatal(err)
	}
	if vs, err := rt.Wait(ctx, g); err != nil || len(vs) != 4 {
		t.Fatalf("after a cancel: %q, %v", vs, err)
	}
	wantHeld(t, rt, base, "after Cancel and a Wait")
}

func unknown(t *testing.T, ctx context.Context, rt Runtime, _ func()) {
	made := kernels.Future{ID: 1<<62 + 7, N: 1}
	if _, err := rt.Wait(ctx, made); !errors.Is(err, kernels.ErrUnknownFuture) {
		t.Errorf("Wait on a made-up future: %v, want ErrUnknownFuture", err)
	}
	if _, err := rt.Next(ctx, made); !errors.Is(err, kernels.ErrUnknownFuture) {
		t.Errorf("Next on a made-up future: %v, want ErrUnknownFuture", err)
	}
	if err := rt.Cancel(made); !errors.Is(err, kernels.ErrUnknownFuture) {
		t.Errorf("Cancel of a made-up future: %v, want ErrUnknownFuture", err)
	}
	f, err := rt.Map(ctx, echoes(1))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rt.Wait(ctx, kernels.Future{ID: f.ID, N: 2}); !errors.Is(err, kernels.ErrUnknownFuture) {
		t.Errorf("Wait with the wrong N: %v, want ErrUnknownFuture", err)
	}
	if _, err := rt.Wait(ctx, f); err != nil {
		t.Fatal(err)
	}
}

func waitContext(t *testing.T, ctx context.Context, rt Runtime, _ func()) {
	f, err := rt.Map(ctx, []kernels.Task{{Kernel: Hold}})
	if err != nil {
		t.Fatal(err)
	}
	ended, stop := context.WithCancel(ctx)
	stop()
	if _, err := rt.Wait(ended, f); !errors.Is(err, context.Canceled) {
		t.Errorf("Wait with an ended context: %v, want context.Canceled", err)
	}
	if _, err := rt.Next(ended, f); !errors.Is(err, context.Canceled) {
		t.Errorf("Next with an ended context: %v, want context.Canceled", err)
	}
	// The future is still there to cancel.
	base := held(rt)
	if err := rt.Cancel(f); err != nil {
		t.Fatal(err)
	}
	if base >= 0 {
		wantHeld(t, rt, base-1, "after cancelling the held future")
	}
}

// manyFlat drains 1000 maps with Next and cancels 1000 more: the runtime
// holds no more futures than before.
func manyFlat(t *testing.T, ctx context.Context, rt Runtime, _ func()) {
	base := held(rt)
	for i := range 1000 {
		f, err := rt.Map(ctx, echoes(2))
		if err != nil {
			t.Fatal(err)
		}
		var idx []int
		for len(idx) < 2 {
			rs, err := rt.Next(ctx, f)
			if err != nil {
				t.Fatalf("map %d: %v", i, err)
			}
			for _, r := range rs {
				idx = append(idx, r.Index)
			}
		}
		slices.Sort(idx)
		if idx[0] != 0 || idx[1] != 1 {
			t.Fatalf("map %d: indices %v", i, idx)
		}
		g, err := rt.Map(ctx, []kernels.Task{{Kernel: Hold}})
		if err != nil {
			t.Fatal(err)
		}
		if err := rt.Cancel(g); err != nil {
			t.Fatal(err)
		}
	}
	wantHeld(t, rt, base, "after 1000 maps drained by Next and 1000 cancelled")
}
