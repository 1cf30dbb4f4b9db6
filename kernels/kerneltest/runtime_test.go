package kerneltest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/qlaunch/qlaunch/kernels"
	"github.com/qlaunch/qlaunch/kernels/kerneltest"
)

// eventTimeout bounds every wait for an event; reaching it is a failure.
const eventTimeout = 10 * time.Second

func newRuntime(t testing.TB, slots int, extra []kernels.Kernel, opts ...kerneltest.Option) *kerneltest.Runtime {
	t.Helper()
	reg, err := kernels.NewRegistry(append(kernels.Builtin(), extra...)...)
	if err != nil {
		t.Fatal(err)
	}
	return kerneltest.New(reg, slots, opts...)
}

// recv waits for one value from ch, failing the test after eventTimeout.
func recv[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(eventTimeout):
		t.Fatalf("no %s after %v", what, eventTimeout)
		panic("unreachable")
	}
}

func run(t *testing.T, rt *kerneltest.Runtime, kernel string, args ...string) (string, error) {
	t.Helper()
	out, err := rt.Run(t.Context(), kernels.Task{Kernel: kernel, Args: args})
	return string(out), err
}

// treeKernel maps width children down to depth 0, counting leaves. On odd
// depths it collects with Next, on even depths with Wait. It counts the
// kernels running (holding a slot) in running and keeps the highest count
// in peak.
func treeKernel(running, peak *atomic.Int64) kernels.Kernel {
	enter := func() {
		n := running.Add(1)
		for {
			m := peak.Load()
			if n <= m || peak.CompareAndSwap(m, n) {
				return
			}
		}
	}
	leave := func() { running.Add(-1) }
	return kernels.Kernel{Name: "tree", Usage: "WIDTH DEPTH", Func: func(ctx context.Context, rt kernels.Runtime, args []string, _ []byte) ([]byte, error) {
		enter()
		defer leave()
		width, _ := strconv.Atoi(args[0])
		depth, _ := strconv.Atoi(args[1])
		if depth == 0 {
			return []byte("1"), nil
		}
		ts := make([]kernels.Task, width)
		for i := range ts {
			ts[i] = kernels.Task{Kernel: "tree", Args: []string{args[0], strconv.Itoa(depth - 1)}}
		}
		f, err := rt.Map(ctx, ts)
		if err != nil {
			return nil, err
		}
		var vals [][]byte
		leave()
		if depth%2 == 1 {
			for taken := 0; taken < width; {
				rs, err := rt.Next(ctx, f)
				if err != nil {
					enter()
					return nil, err
				}
				for _, r := range rs {
					if r.Err != nil {
						enter()
						return nil, r.Err
					}
					vals = append(vals, r.Value)
				}
				taken += len(rs)
			}
		} else {
			vals, err = rt.Wait(ctx, f)
		}
		enter()
		if err != nil {
			return nil, err
		}
		sum := 0
		for _, v := range vals {
			n, _ := strconv.Atoi(string(v))
			sum += n
		}
		return []byte(strconv.Itoa(sum)), nil
	}}
}

func TestForkJoinStress(t *testing.T) {
	for _, slots := range []int{1, 2} {
		for _, c := range []struct{ width, depth int }{
			{1, 60}, {2, 9}, {5, 4}, {40, 2}, {300, 1},
		} {
			t.Run(fmt.Sprintf("slots=%d/width=%d/depth=%d", slots, c.width, c.depth), func(t *testing.T) {
				var running, peak atomic.Int64
				rt := newRuntime(t, slots, []kernels.Kernel{treeKernel(&running, &peak)})
				got, err := run(t, rt, "tree", strconv.Itoa(c.width), strconv.Itoa(c.depth))
				if err != nil {
					t.Fatal(err)
				}
				leaves, tasks := 1, int64(1)
				for range c.depth {
					leaves *= c.width
					tasks += int64(leaves)
				}
				if want := strconv.Itoa(leaves); got != want {
					t.Errorf("result %s, want %s", got, want)
				}
				if p := peak.Load(); p > int64(slots) || p < 1 {
					t.Errorf("%d kernels ran at once on %d slots", p, slots)
				}
				st := rt.Stats()
				if st.MaxRunning > slots || st.MaxRunning < 1 {
					t.Errorf("Stats().MaxRunning = %d on %d slots", st.MaxRunning, slots)
				}
				if st.Tasks != tasks {
					t.Errorf("Stats().Tasks = %d, want %d", st.Tasks, tasks)
				}
			})
		}
	}
}

// TestExecution ports the BQSKit runtime's test_execution.
func TestExecution(t *testing.T) {
	pair := kernels.Kernel{Name: "pair", Func: func(ctx context.Context, rt kernels.Runtime, args []string, _ []byte) ([]byte, error) {
		i, _ := strconv.Atoi(args[0])
		f, err := rt.Map(ctx, []kernels.Task{
			{Kernel: "echo", Args: []string{strconv.Itoa(2 * i)}},
			{Kernel: "echo", Args: []string{strconv.Itoa(2*i + 1)}},
		})
		if err != nil {
			return nil, err
		}
		vals, err := rt.Wait(ctx, f)
		if err != nil {
			return nil, err
		}
		return bytes.Join(vals, []byte(",")), nil
	}}
	mapper := kernels.Kernel{Name: "map", Func: func(ctx context.Context, rt kernels.Runtime, args []string, _ []byte) ([]byte, error) {
		n, _ := strconv.Atoi(args[1])
		ts := make([]kernels.Task, n)
		for i := range ts {
			ts[i] = kernels.Task{Kernel: args[0], Args: []string{strconv.Itoa(i)}}
		}
		f, err := rt.Map(ctx, ts)
		if err != nil {
			return nil, err
		}
		vals, err := rt.Wait(ctx, f)
		if err != nil {
			return nil, err
		}
		return bytes.Join(vals, []byte(" ")), nil
	}}
	replace := kernels.Kernel{Name: "replace", Func: func(ctx context.Context, rt kernels.Runtime, _ []string, payload []byte) ([]byte, error) {
		f, err := rt.Submit(ctx, kernels.Task{Kernel: "echo", Payload: append(payload, "+child"...)})
		if err != nil {
			return nil, err
		}
		vals, err := rt.Wait(ctx, f)
		if err != nil {
			return nil, err
		}
		return vals[0], nil
	}}
	identity := func(n int) string {
		s := make([]string, n)
		for i := range s {
			s[i] = strconv.Itoa(i)
		}
		return strings.Join(s, " ")
	}
	pairs := func(n int) string {
		s := make([]string, n)
		for i := range s {
			s[i] = fmt.Sprintf("%d,%d", 2*i, 2*i+1)
		}
		return strings.Join(s, " ")
	}
	for _, slots := range []int{1, 2} {
		rt := newRuntime(t, slots, []kernels.Kernel{pair, mapper, replace})
		t.Run(fmt.Sprintf("slots=%d/identity", slots), func(t *testing.T) {
			got, err := run(t, rt, "map", "echo", "10")
			if err != nil || got != identity(10) {
				t.Errorf("got %q, %v; want %q", got, err, identity(10))
			}
		})
		t.Run(fmt.Sprintf("slots=%d/two-level", slots), func(t *testing.T) {
			got, err := run(t, rt, "map", "pair", "1000")
			if err != nil || got != pairs(1000) {
				t.Errorf("got %.60q…, %v; want %.60q…", got, err, pairs(1000))
			}
		})
		t.Run(fmt.Sprintf("slots=%d/result-replaces-input", slots), func(t *testing.T) {
			out, err := rt.Run(t.Context(), kernels.Task{Kernel: "replace", Payload: []byte("circuit")})
			if err != nil || string(out) != "circuit+child" {
				t.Errorf("got %q, %v; want %q", out, err, "circuit+child")
			}
		})
		t.Run(fmt.Sprintf("slots=%d/reused", slots), func(t *testing.T) {
			for i := range 2 {
				got, err := run(t, rt, "fanout", "3", "2")
				if err != nil || got != "9" {
					t.Errorf("job %d: got %q, %v; want 9", i, got, err)
				}
			}
		})
		t.Run(fmt.Sprintf("slots=%d/two-jobs-at-once", slots), func(t *testing.T) {
			var wg sync.WaitGroup
			var got [2]string
			var errs [2]error
			wg.Go(func() { got[0], errs[0] = run(t, rt, "map", "echo", "50") })
			wg.Go(func() { got[1], errs[1] = run(t, rt, "map", "pair", "50") })
			wg.Wait()
			if errs[0] != nil || got[0] != identity(50) {
				t.Errorf("job 0: got %q, %v", got[0], errs[0])
			}
			if errs[1] != nil || got[1] != pairs(50) {
				t.Errorf("job 1: got %q, %v", got[1], errs[1])
			}
		})
	}
}

// gates is a set of kernels "gate NAME" that block until the test opens
// NAME, then return NAME.
type gates struct {
	mu sync.Mutex
	ch map[string]chan struct{}
}

func (g *gates) get(name string) chan struct{} {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.ch == nil {
		g.ch = make(map[string]chan struct{})
	}
	c, ok := g.ch[name]
	if !ok {
		c = make(chan struct{})
		g.ch[name] = c
	}
	return c
}

func (g *gates) open(name string) { close(g.get(name)) }

func (g *gates) kernel() kernels.Kernel {
	return kernels.Kernel{Name: "gate", Func: func(ctx context.Context, _ kernels.Runtime, args []string, _ []byte) ([]byte, error) {
		select {
		case <-g.get(args[0]):
			return []byte(args[0]), nil
		case <-ctx.Done():
			return nil, context.Cause(ctx)
		}
	}}
}

// arrivals returns a result hook sending the Args[0] of every finished
// task of the given kernels, and the channel it sends on.
func arrivals(names ...string) (kerneltest.Option, <-chan string) {
	ch := make(chan string, 64)
	return kerneltest.WithResultHook(func(t kernels.Task, _ kernels.Result) {
		if slices.Contains(names, t.Kernel) && len(t.Args) > 0 {
			ch <- t.Args[0]
		}
	}), ch
}

func fmtResults(rs []kernels.Result) string {
	var s []string
	for _, r := range rs {
		if r.Err != nil {
			s = append(s, fmt.Sprintf("%d:error(%v)", r.Index, r.Err))
		} else {
			s = append(s, fmt.Sprintf("%d:%s", r.Index, r.Value))
		}
	}
	return strings.Join(s, " ")
}

// TestNext ports the BQSKit runtime's test_next.
func TestNext(t *testing.T) {
	t.Run("no-repeat-no-loss-wait-after", func(t *testing.T) {
		var g gates
		hook, arrived := arrivals("gate", "echo")
		steps := make(chan string, 8)
		root := kernels.Kernel{Name: "root", Func: func(ctx context.Context, rt kernels.Runtime, _ []string, _ []byte) ([]byte, error) {
			f, err := rt.Map(ctx, []kernels.Task{
				{Kernel: "echo", Args: []string{"a"}},
				{Kernel: "gate", Args: []string{"b"}},
				{Kernel: "gate", Args: []string{"c"}},
			})
			if err != nil {
				return nil, err
			}
			if a := <-arrived; a != "a" {
				return nil, fmt.Errorf("first arrival %q, want a", a)
			}
			rs, err := rt.Next(ctx, f)
			steps <- fmt.Sprintf("next %s %v", fmtResults(rs), err)
			g.open("b")
			<-arrived
			g.open("c")
			<-arrived // b and c are both in before Next
			rs, err = rt.Next(ctx, f)
			steps <- fmt.Sprintf("next %s %v", fmtResults(rs), err)
			_, err = rt.Next(ctx, f)
			steps <- fmt.Sprintf("next %v", errors.Is(err, kernels.ErrNoMoreResults))
			// Next took the last result: the future is freed.
			_, err = rt.Wait(ctx, f)
			steps <- fmt.Sprintf("wait %v", errors.Is(err, kernels.ErrNoMoreResults))
			_, err = rt.Next(ctx, f)
			steps <- fmt.Sprintf("next %v", errors.Is(err, kernels.ErrNoMoreResults))
			return nil, nil
		}}
		rt := newRuntime(t, 4, []kernels.Kernel{root, g.kernel()}, hook)
		if _, err := run(t, rt, "root"); err != nil {
			t.Fatal(err)
		}
		close(steps)
		var got []string
		for s := range steps {
			got = append(got, s)
		}
		want := []string{
			"next 0:a <nil>",
			"next 1:b 2:c <nil>",
			"next true",
			"wait true",
			"next true",
		}
		if !slices.Equal(got, want) {
			t.Errorf("steps:\n got %q\nwant %q", got, want)
		}
	})
	t.Run("one-slot-collects-all", func(t *testing.T) {
		root := kernels.Kernel{Name: "root", Func: func(ctx context.Context, rt kernels.Runtime, _ []string, _ []byte) ([]byte, error) {
			ts := make([]kernels.Task, 20)
			for i := range ts {
				ts[i] = kernels.Task{Kernel: "echo", Args: []string{strconv.Itoa(i)}}
			}
			f, err := rt.Map(ctx, ts)
			if err != nil {
				return nil, err
			}
			seen := make([]string, len(ts))
			for range len(ts) + 1 {
				rs, err := rt.Next(ctx, f)
				if errors.Is(err, kernels.ErrNoMoreResults) {
					break
				}
				if err != nil {
					return nil, err
				}
				for _, r := range rs {
					if seen[r.Index] != "" {
						return nil, fmt.Errorf("index %d returned twice", r.Index)
					}
					seen[r.Index] = string(r.Value)
				}
			}
			return []byte(strings.Join(seen, " ")), nil
		}}
		rt := newRuntime(t, 1, []kernels.Kernel{root})
		got, err := run(t, rt, "root")
		want := "0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19"
		if err != nil || got != want {
			t.Errorf("got %q, %v; want %q", got, err, want)
		}
	})
	t.Run("errors-and-empty", func(t *testing.T) {
		root := kernels.Kernel{Name: "root", Func: func(ctx context.Context, rt kernels.Runtime, _ []string, _ []byte) ([]byte, error) {
			var out []string
			f, _ := rt.Map(ctx, []kernels.Task{
				{Kernel: "echo", Args: []string{"ok"}},
				{Kernel: "fail", Args: []string{"second"}},
				{Kernel: "fail", Args: []string{"third"}},
			})
			_, err := rt.Wait(ctx, f)
			out = append(out, fmt.Sprintf("wait: %v", err))
			_, err = rt.Wait(ctx, f)
			out = append(out, fmt.Sprintf("wait again: %v", errors.Is(err, kernels.ErrNoMoreResults)))
			f, _ = rt.Submit(ctx, kernels.Task{Kernel: "fail", Args: []string{"alone"}})
			rs, err := rt.Next(ctx, f)
			out = append(out, fmt.Sprintf("next: %s %v", fmtResults(rs), err))
			f, _ = rt.Map(ctx, nil)
			vals, err := rt.Wait(ctx, f)
			out = append(out, fmt.Sprintf("empty wait: %d %v", len(vals), err))
			_, err = rt.Next(ctx, f)
			out = append(out, fmt.Sprintf("empty next: %v", errors.Is(err, kernels.ErrNoMoreResults)))
			return []byte(strings.Join(out, "\n")), nil
		}}
		rt := newRuntime(t, 1, []kernels.Kernel{root})
		got, err := run(t, rt, "root")
		want := "wait: second\nwait again: true\nnext: 0:error(alone) <nil>\nempty wait: 0 <nil>\nempty next: true"
		if err != nil || got != want {
			t.Errorf("got\n%s\n%v\nwant\n%s", got, err, want)
		}
	})
}

// blocker returns a kernel "block" that reports its start on started and
// the cause of its context's end on stopped.
func blocker(started chan<- struct{}, stopped chan<- error) kernels.Kernel {
	return kernels.Kernel{Name: "block", Func: func(ctx context.Context, _ kernels.Runtime, _ []string, _ []byte) ([]byte, error) {
		started <- struct{}{}
		<-ctx.Done()
		stopped <- context.Cause(ctx)
		return nil, context.Cause(ctx)
	}}
}

// submitWait returns a kernel NAME that submits CHILD and returns what
// waiting on it gives.
func submitWait(name, child string) kernels.Kernel {
	return kernels.Kernel{Name: name, Func: func(ctx context.Context, rt kernels.Runtime, _ []string, _ []byte) ([]byte, error) {
		f, err := rt.Submit(ctx, kernels.Task{Kernel: child})
		if err != nil {
			return nil, err
		}
		vals, err := rt.Wait(ctx, f)
		if err != nil {
			return nil, err
		}
		return vals[0], nil
	}}
}

// TestCancel ports the BQSKit runtime's test_cancel and checks that
// cancellation reaches descendants.
func TestCancel(t *testing.T) {
	t.Run("descendants", func(t *testing.T) {
		started := make(chan struct{}, 1)
		stopped := make(chan error, 1)
		results := make(chan error, 2)
		root := kernels.Kernel{Name: "root", Func: func(ctx context.Context, rt kernels.Runtime, _ []string, _ []byte) ([]byte, error) {
			f, err := rt.Submit(ctx, kernels.Task{Kernel: "middle"})
			if err != nil {
				return nil, err
			}
			<-started // the grandchild runs
			if err := rt.Cancel(f); err != nil {
				return nil, err
			}
			_, err = rt.Wait(ctx, f)
			results <- err
			_, err = rt.Next(ctx, f)
			results <- err
			return nil, err
		}}
		rt := newRuntime(t, 3, []kernels.Kernel{root, submitWait("middle", "block"), blocker(started, stopped)})
		_, err := run(t, rt, "root")
		if !errors.Is(err, kernels.ErrCancelled) {
			t.Errorf("Run: %v, want ErrCancelled", err)
		}
		if err := recv(t, results, "Wait result"); !errors.Is(err, kernels.ErrCancelled) {
			t.Errorf("Wait on a cancelled future: %v, want ErrCancelled", err)
		}
		if err := recv(t, results, "Next result"); !errors.Is(err, kernels.ErrCancelled) {
			t.Errorf("Next on a cancelled future: %v, want ErrCancelled", err)
		}
		if cause := recv(t, stopped, "grandchild stop"); !errors.Is(cause, kernels.ErrCancelled) {
			t.Errorf("grandchild's context ended with %v, want ErrCancelled", cause)
		}
	})
	t.Run("sleep", func(t *testing.T) {
		root := kernels.Kernel{Name: "root", Func: func(ctx context.Context, rt kernels.Runtime, _ []string, _ []byte) ([]byte, error) {
			f, err := rt.Submit(ctx, kernels.Task{Kernel: "sleep", Args: []string{"3600000"}})
			if err != nil {
				return nil, err
			}
			if err := rt.Cancel(f); err != nil {
				return nil, err
			}
			_, err = rt.Wait(ctx, f)
			return nil, err
		}}
		rt := newRuntime(t, 2, []kernels.Kernel{root})
		if _, err := run(t, rt, "root"); !errors.Is(err, kernels.ErrCancelled) {
			t.Errorf("Run: %v, want ErrCancelled", err)
		}
	})
	t.Run("before-start", func(t *testing.T) {
		root := kernels.Kernel{Name: "root", Func: func(ctx context.Context, rt kernels.Runtime, _ []string, _ []byte) ([]byte, error) {
			f, err := rt.Map(ctx, slices.Repeat([]kernels.Task{{Kernel: "noop"}}, 5))
			if err != nil {
				return nil, err
			}
			rt.Cancel(f)
			_, err = rt.Wait(ctx, f)
			return nil, err
		}}
		rt := newRuntime(t, 1, []kernels.Kernel{root})
		if _, err := run(t, rt, "root"); !errors.Is(err, kernels.ErrCancelled) {
			t.Errorf("Run: %v, want ErrCancelled", err)
		}
		if n := rt.Stats().Tasks; n != 1 {
			t.Errorf("%d kernels ran, want 1 (the root; its cancelled children never start)", n)
		}
	})
	t.Run("parent-returns", func(t *testing.T) {
		started := make(chan struct{}, 1)
		stopped := make(chan error, 1)
		root := kernels.Kernel{Name: "root", Func: func(ctx context.Context, rt kernels.Runtime, _ []string, _ []byte) ([]byte, error) {
			if _, err := rt.Submit(ctx, kernels.Task{Kernel: "block"}); err != nil {
				return nil, err
			}
			<-started
			return []byte("done"), nil
		}}
		rt := newRuntime(t, 2, []kernels.Kernel{root, blocker(started, stopped)})
		if got, err := run(t, rt, "root"); err != nil || got != "done" {
			t.Fatalf("got %q, %v", got, err)
		}
		// Run returned, so the orphan has stopped already.
		select {
		case cause := <-stopped:
			if cause == nil {
				t.Error("orphan's context ended without a cause")
			}
		default:
			t.Error("Run returned before the orphan child stopped")
		}
	})
	t.Run("run-context", func(t *testing.T) {
		started := make(chan struct{}, 1)
		stopped := make(chan error, 1)
		rt := newRuntime(t, 1, []kernels.Kernel{submitWait("root", "block"), blocker(started, stopped)})
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() {
			_, err := rt.Run(ctx, kernels.Task{Kernel: "root"})
			done <- err
		}()
		recv(t, started, "grandchild start")
		cancel()
		if err := recv(t, done, "Run's return"); !errors.Is(err, context.Canceled) {
			t.Errorf("Run: %v, want context.Canceled", err)
		}
		if cause := recv(t, stopped, "child stop"); !errors.Is(cause, context.Canceled) {
			t.Errorf("child's context ended with %v", cause)
		}
	})
}

// TestFuture ports the BQSKit runtime's test_future: a future is valid only
// in the task that made it.
func TestFuture(t *testing.T) {
	use := kernels.Kernel{Name: "use", Func: func(ctx context.Context, rt kernels.Runtime, args []string, _ []byte) ([]byte, error) {
		id, _ := strconv.ParseUint(args[0], 10, 64)
		_, err := rt.Wait(ctx, kernels.Future{ID: id, N: 1})
		return nil, err
	}}
	root := kernels.Kernel{Name: "root", Func: func(ctx context.Context, rt kernels.Runtime, _ []string, _ []byte) ([]byte, error) {
		f, err := rt.Submit(ctx, kernels.Task{Kernel: "noop"})
		if err != nil {
			return nil, err
		}
		if _, err := rt.Wait(ctx, kernels.Future{ID: f.ID, N: 2}); !errors.Is(err, kernels.ErrUnknownFuture) {
			return nil, fmt.Errorf("wrong N: %v", err)
		}
		if err := rt.Cancel(kernels.Future{ID: 1 << 60, N: 1}); !errors.Is(err, kernels.ErrUnknownFuture) {
			return nil, fmt.Errorf("made-up future: %v", err)
		}
		g, err := rt.Submit(ctx, kernels.Task{Kernel: "use", Args: []string{strconv.FormatUint(f.ID, 10)}})
		if err != nil {
			return nil, err
		}
		_, err = rt.Wait(ctx, g)
		return nil, err
	}}
	rt := newRuntime(t, 1, []kernels.Kernel{use, root})
	if _, err := run(t, rt, "root"); !errors.Is(err, kernels.ErrUnknownFuture) {
		t.Errorf("Run: %v, want ErrUnknownFuture", err)
	}
}

// TestCache ports the BQSKit runtime's test_cache.
func TestCache(t *testing.T) {
	put := kernels.Kernel{Name: "put", Func: func(_ context.Context, rt kernels.Runtime, args []string, _ []byte) ([]byte, error) {
		rt.Cache().Put(args[0], args[1])
		return nil, nil
	}}
	get := kernels.Kernel{Name: "get", Func: func(_ context.Context, rt kernels.Runtime, args []string, _ []byte) ([]byte, error) {
		v, ok := rt.Cache().Get(args[0])
		if !ok {
			return nil, fmt.Errorf("no %q in the cache", args[0])
		}
		return []byte(v.(string)), nil
	}}
	rt := newRuntime(t, 2, []kernels.Kernel{put, get})
	if _, err := run(t, rt, "put", "k", "v"); err != nil {
		t.Fatal(err)
	}
	if got, err := run(t, rt, "get", "k"); err != nil || got != "v" {
		t.Errorf("got %q, %v; want v", got, err)
	}
	if v, ok := rt.Cache().Get("k"); !ok || v != "v" {
		t.Errorf("Runtime.Cache: %v %v", v, ok)
	}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func TestLoggerRankHost(t *testing.T) {
	var buf lockedBuffer
	logk := kernels.Kernel{Name: "log", Func: func(_ context.Context, rt kernels.Runtime, args []string, _ []byte) ([]byte, error) {
		rt.Logger().Info("hello", "arg", args[0])
		rt.Logger().Debug("hidden")
		return fmt.Appendf(nil, "%d %s", rt.Rank(), rt.Host()), nil
	}}
	h := slog.NewJSONHandler(&buf, &slog.HandlerOptions{ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
		if a.Key == slog.TimeKey || a.Key == "task" {
			return slog.Attr{}
		}
		return a
	}})
	rt := newRuntime(t, 1, []kernels.Kernel{logk}, kerneltest.WithLogHandler(h))
	got, err := run(t, rt, "log", "x")
	if err != nil || got != "0 local" {
		t.Errorf("got %q, %v; want rank and host \"0 local\"", got, err)
	}
	var rec map[string]any
	if err := json.Unmarshal(buf.b.Bytes(), &rec); err != nil {
		t.Fatalf("log %q: %v", buf.b.String(), err)
	}
	want := map[string]any{"level": "INFO", "msg": "hello", "kernel": "log", "rank": 0.0, "host": "local", "arg": "x"}
	if fmt.Sprint(rec) != fmt.Sprint(want) {
		t.Errorf("log record %v, want %v", rec, want)
	}
}

func TestErrors(t *testing.T) {
	panicky := kernels.Kernel{Name: "panicky", Func: func(context.Context, kernels.Runtime, []string, []byte) ([]byte, error) {
		panic("boom")
	}}
	rt := newRuntime(t, 1, []kernels.Kernel{panicky, submitWait("lost", "nosuch")})
	if _, err := run(t, rt, "nosuch"); !errors.Is(err, kernels.ErrUnknownKernel) {
		t.Errorf("root of an unknown kernel: %v", err)
	}
	if _, err := run(t, rt, "lost"); !errors.Is(err, kernels.ErrUnknownKernel) {
		t.Errorf("child of an unknown kernel: %v", err)
	}
	if _, err := run(t, rt, "panicky"); err == nil || !strings.Contains(err.Error(), "kernel panicky panicked: boom") {
		t.Errorf("panicking kernel: %v", err)
	}
	defer func() {
		if recover() == nil {
			t.Error("New with 0 slots did not panic")
		}
	}()
	kerneltest.New(nil, 0)
}

func TestPayloadCopied(t *testing.T) {
	root := kernels.Kernel{Name: "root", Func: func(ctx context.Context, rt kernels.Runtime, _ []string, _ []byte) ([]byte, error) {
		p := []byte("before")
		f, err := rt.Submit(ctx, kernels.Task{Kernel: "echo", Payload: p})
		if err != nil {
			return nil, err
		}
		copy(p, "after!")
		vals, err := rt.Wait(ctx, f)
		if err != nil {
			return nil, err
		}
		return vals[0], nil
	}}
	rt := newRuntime(t, 2, []kernels.Kernel{root})
	if got, err := run(t, rt, "root"); err != nil || got != "before" {
		t.Errorf("got %q, %v; want before", got, err)
	}
}
