package launcher_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/qlaunch/qlaunch/kernels"
	"github.com/qlaunch/qlaunch/launcher/client"
	"github.com/qlaunch/qlaunch/launcher/launchertest"
)

// The behaviours of the BQSKit runtime's own test suite, ported: same
// inputs, same outcomes, on in-process trees of several shapes.

func kernel(name string, fn kernels.Func) kernels.Kernel { return kernels.Kernel{Name: name, Func: fn} }

func submitWait(t *testing.T, c *client.Client, kernel string, args ...string) (string, error) {
	t.Helper()
	ctx := ctxT(t)
	f, err := c.Submit(ctx, kernels.Task{Kernel: kernel, Args: args})
	if err != nil {
		t.Fatal(err)
	}
	v, err := c.Wait(ctx, f)
	if err != nil {
		return "", err
	}
	return string(v[0]), nil
}

func mustRun(t *testing.T, c *client.Client, kernel string, args ...string) string {
	t.Helper()
	v, err := submitWait(t, c, kernel, args...)
	if err != nil {
		t.Fatalf("%s %v: %v", kernel, args, err)
	}
	return v
}

// tableKernels are the kernels the ported tests run.
func tableKernels() []kernels.Kernel {
	return []kernels.Kernel{
		// pair I maps echo 2I and echo 2I+1 and returns "2I,2I+1".
		kernel("pair", func(ctx context.Context, rt kernels.Runtime, args []string, _ []byte) ([]byte, error) {
			i, _ := strconv.Atoi(args[0])
			f, err := rt.Map(ctx, []kernels.Task{
				{Kernel: "echo", Args: []string{strconv.Itoa(2 * i)}},
				{Kernel: "echo", Args: []string{strconv.Itoa(2*i + 1)}},
			})
			if err != nil {
				return nil, err
			}
			vs, err := rt.Wait(ctx, f)
			if err != nil {
				return nil, err
			}
			return []byte(string(vs[0]) + "," + string(vs[1])), nil
		}),
		// outer maps N pair tasks and checks each result.
		kernel("outer", func(ctx context.Context, rt kernels.Runtime, args []string, _ []byte) ([]byte, error) {
			n, _ := strconv.Atoi(args[0])
			ts := make([]kernels.Task, n)
			for i := range ts {
				ts[i] = kernels.Task{Kernel: "pair", Args: []string{strconv.Itoa(i)}}
			}
			f, err := rt.Map(ctx, ts)
			if err != nil {
				return nil, err
			}
			vs, err := rt.Wait(ctx, f)
			if err != nil {
				return nil, err
			}
			for i, v := range vs {
				if want := fmt.Sprintf("%d,%d", 2*i, 2*i+1); string(v) != want {
					return nil, fmt.Errorf("pair %d = %q, want %q", i, v, want)
				}
			}
			return []byte("ok"), nil
		}),
		// modify hands its payload to a child that changes it, and returns
		// the child's value: the value returned replaces the input.
		kernel("modify", func(ctx context.Context, rt kernels.Runtime, _ []string, p []byte) ([]byte, error) {
			f, err := rt.Submit(ctx, kernels.Task{Kernel: "append-x", Payload: p})
			if err != nil {
				return nil, err
			}
			vs, err := rt.Wait(ctx, f)
			if err != nil {
				return nil, err
			}
			return vs[0], nil
		}),
		kernel("append-x", func(_ context.Context, _ kernels.Runtime, _ []string, p []byte) ([]byte, error) {
			return append(append([]byte(nil), p...), 'x'), nil
		}),
		// nexts maps N echo children and takes the results with Next,
		// checking that none repeats and that Next and Wait after the last
		// one are ErrNoMoreResults.
		kernel("nexts", func(ctx context.Context, rt kernels.Runtime, args []string, _ []byte) ([]byte, error) {
			n, _ := strconv.Atoi(args[0])
			ts := make([]kernels.Task, n)
			for i := range ts {
				ts[i] = kernels.Task{Kernel: "echo", Args: []string{strconv.Itoa(i)}}
			}
			f, err := rt.Map(ctx, ts)
			if err != nil {
				return nil, err
			}
			seen := map[int]bool{}
			for len(seen) < n {
				rs, err := rt.Next(ctx, f)
				if err != nil {
					return nil, fmt.Errorf("next after %d results: %w", len(seen), err)
				}
				for _, r := range rs {
					if seen[r.Index] {
						return nil, fmt.Errorf("result %d returned twice", r.Index)
					}
					if string(r.Value) != strconv.Itoa(r.Index) {
						return nil, fmt.Errorf("result %d = %q", r.Index, r.Value)
					}
					seen[r.Index] = true
				}
			}
			// The last result freed the future (the futures contract).
			if _, err := rt.Next(ctx, f); !errors.Is(err, kernels.ErrNoMoreResults) {
				return nil, fmt.Errorf("next after all taken: %v, want ErrNoMoreResults", err)
			}
			if _, err := rt.Wait(ctx, f); !errors.Is(err, kernels.ErrNoMoreResults) {
				return nil, fmt.Errorf("wait after all taken: %v, want ErrNoMoreResults", err)
			}
			return []byte("ok"), nil
		}),
		// nextpartial takes one Next, then Waits: Wait returns everything.
		kernel("nextpartial", func(ctx context.Context, rt kernels.Runtime, _ []string, _ []byte) ([]byte, error) {
			f, err := rt.Map(ctx, []kernels.Task{{Kernel: "echo", Args: []string{"a"}}, {Kernel: "echo", Args: []string{"b"}}, {Kernel: "echo", Args: []string{"c"}}})
			if err != nil {
				return nil, err
			}
			if _, err := rt.Next(ctx, f); err != nil {
				return nil, err
			}
			vs, err := rt.Wait(ctx, f)
			if err != nil {
				return nil, err
			}
			if _, err := rt.Next(ctx, f); !errors.Is(err, kernels.ErrNoMoreResults) {
				return nil, fmt.Errorf("next after wait: %v, want ErrNoMoreResults", err)
			}
			return []byte(string(vs[0]) + string(vs[1]) + string(vs[2])), nil
		}),
		// cancelsleep submits a 1 s sleep, cancels it, and waits on it.
		kernel("cancelsleep", func(ctx context.Context, rt kernels.Runtime, _ []string, _ []byte) ([]byte, error) {
			f, err := rt.Submit(ctx, kernels.Task{Kernel: "sleep", Args: []string{"1000"}})
			if err != nil {
				return nil, err
			}
			if err := rt.Cancel(f); err != nil {
				return nil, err
			}
			_, err = rt.Wait(ctx, f)
			return nil, err
		}),
		// leak passes the id of its child's future to another task, which
		// tries to wait on it: futures do not travel.
		kernel("leak", func(ctx context.Context, rt kernels.Runtime, _ []string, _ []byte) ([]byte, error) {
			f, err := rt.Submit(ctx, kernels.Task{Kernel: "noop"})
			if err != nil {
				return nil, err
			}
			g, err := rt.Submit(ctx, kernels.Task{Kernel: "usefuture", Args: []string{strconv.FormatUint(f.ID, 10)}})
			if err != nil {
				return nil, err
			}
			if _, err := rt.Wait(ctx, f); err != nil {
				return nil, err
			}
			_, err = rt.Wait(ctx, g)
			return nil, err
		}),
		kernel("usefuture", func(ctx context.Context, rt kernels.Runtime, args []string, _ []byte) ([]byte, error) {
			id, _ := strconv.ParseUint(args[0], 10, 64)
			_, err := rt.Wait(ctx, kernels.Future{ID: id, N: 1})
			return nil, err
		}),
		kernel("cacheput", func(_ context.Context, rt kernels.Runtime, args []string, _ []byte) ([]byte, error) {
			rt.Cache().Put(args[0], args[1])
			return nil, nil
		}),
		kernel("cacheget", func(_ context.Context, rt kernels.Runtime, args []string, _ []byte) ([]byte, error) {
			v, ok := rt.Cache().Get(args[0])
			if !ok {
				return nil, errors.New("not in cache")
			}
			return []byte(v.(string)), nil
		}),
		kernel("logs", func(ctx context.Context, rt kernels.Runtime, _ []string, _ []byte) ([]byte, error) {
			rt.Logger().Debug("debug record", "n", 1)
			rt.Logger().With("who", "kernel").Info("info record", "n", 2, "v", struct{ A int }{3})
			rt.Logger().Warn("warn record")
			// Records of children reach the client too.
			f, err := rt.Submit(ctx, kernels.Task{Kernel: "childlog"})
			if err != nil {
				return nil, err
			}
			_, err = rt.Wait(ctx, f)
			return nil, err
		}),
		kernel("childlog", func(_ context.Context, rt kernels.Runtime, _ []string, _ []byte) ([]byte, error) {
			rt.Logger().Info("child record")
			return nil, nil
		}),
	}
}

func TestExecution(t *testing.T) {
	for _, s := range shapes {
		t.Run(s.name, func(t *testing.T) {
			tr := launchertest.Start(t, s.shape, launchertest.Options{Kernels: tableKernels()})
			c := tr.Client()
			if got := mustRun(t, c, "outer", "1000"); got != "ok" {
				t.Fatalf("2-level map: %q", got)
			}
			if got := mustRun(t, c, "modify"); got != "x" {
				t.Fatalf("modify: %q", got)
			}
			// The same runtime serves a second job.
			if got := mustRun(t, c, "fanout", "4", "3"); got != "64" {
				t.Fatalf("second job: %q", got)
			}
		})
	}
}

func TestTwoConcurrentJobs(t *testing.T) {
	tr := launchertest.Start(t, launchertest.Shape{Workers: []int{1, 1}}, launchertest.Options{Kernels: tableKernels()})
	c1, c2 := tr.Client(), tr.Client()
	ctx := ctxT(t)
	f1, _ := c1.Submit(ctx, kernels.Task{Kernel: "fanout", Args: []string{"10", "2"}})
	f2, _ := c2.Submit(ctx, kernels.Task{Kernel: "echo", Args: []string{"two"}})
	f3, _ := c1.Submit(ctx, kernels.Task{Kernel: "echo", Args: []string{"three"}})
	for _, tc := range []struct {
		c    *client.Client
		f    kernels.Future
		want string
	}{{c1, f1, "100"}, {c2, f2, "two"}, {c1, f3, "three"}} {
		v, err := tc.c.Wait(ctx, tc.f)
		if err != nil || string(v[0]) != tc.want {
			t.Fatalf("got %q %v, want %q", v, err, tc.want)
		}
	}
}

func TestNext(t *testing.T) {
	for _, s := range shapes {
		t.Run(s.name, func(t *testing.T) {
			tr := launchertest.Start(t, s.shape, launchertest.Options{Kernels: tableKernels()})
			c := tr.Client()
			if got := mustRun(t, c, "nexts", "50"); got != "ok" {
				t.Fatal(got)
			}
			if got := mustRun(t, c, "nextpartial"); got != "abc" {
				t.Fatalf("wait after next: %q, want abc", got)
			}
		})
	}
}

func TestClientNext(t *testing.T) {
	tr := launchertest.Start(t, launchertest.Shape{Workers: []int{2}})
	c := tr.Client()
	ctx := ctxT(t)
	ts := make([]kernels.Task, 20)
	for i := range ts {
		ts[i] = kernels.Task{Kernel: "echo", Args: []string{strconv.Itoa(i)}}
	}
	f, err := c.Map(ctx, ts)
	if err != nil {
		t.Fatal(err)
	}
	// Results that arrive before the first Next are not lost, and none
	// comes twice.
	seen := map[int]bool{}
	for len(seen) < len(ts) {
		rs, err := c.Next(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rs {
			if seen[r.Index] || string(r.Value) != strconv.Itoa(r.Index) {
				t.Fatalf("result %d (%q) repeated or wrong", r.Index, r.Value)
			}
			seen[r.Index] = true
		}
	}
	if _, err := c.Next(ctx, f); !errors.Is(err, kernels.ErrNoMoreResults) {
		t.Fatalf("next after all taken: %v", err)
	}
	// The client forgot the future with its last result (a long-lived
	// client holds only futures in use): Wait says every result was taken.
	if vs, err := c.Wait(ctx, f); !errors.Is(err, kernels.ErrNoMoreResults) {
		t.Fatalf("wait after next took every result: %q %v", vs, err)
	}
}

func TestCancel(t *testing.T) {
	tr := launchertest.Start(t, launchertest.Shape{Workers: []int{1}}, launchertest.Options{Kernels: tableKernels()})
	c := tr.Client()
	_, err := submitWait(t, c, "cancelsleep")
	if !errors.Is(err, kernels.ErrCancelled) {
		t.Fatalf("in-kernel cancel: error %v, want one wrapping ErrCancelled", err)
	}
	ctx := ctxT(t)
	f, _ := c.Submit(ctx, kernels.Task{Kernel: "sleep", Args: []string{"1000"}})
	if err := c.Cancel(f); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Wait(ctx, f); !errors.Is(err, kernels.ErrCancelled) {
		t.Fatalf("client cancel: %v, want ErrCancelled", err)
	}
	// The runtime goes on.
	if got := mustRun(t, c, "echo", "after"); got != "after" {
		t.Fatal(got)
	}
}

func TestFutureCannotTravel(t *testing.T) {
	tr := launchertest.Start(t, launchertest.Shape{Workers: []int{2}}, launchertest.Options{Kernels: tableKernels()})
	_, err := submitWait(t, tr.Client(), "leak")
	var te *client.TaskError
	if !errors.As(err, &te) || !strings.Contains(te.Message, kernels.ErrUnknownFuture.Error()) {
		t.Fatalf("error %v, want a task error about an unknown future", err)
	}
}

func TestCache(t *testing.T) {
	tr := launchertest.Start(t, launchertest.Shape{Workers: []int{1}}, launchertest.Options{Kernels: tableKernels()})
	c := tr.Client()
	mustRun(t, c, "cacheput", "k", "v1")
	if got := mustRun(t, c, "cacheget", "k"); got != "v1" {
		t.Fatalf("cache: %q", got)
	}
}

func TestTaskError(t *testing.T) {
	for _, s := range shapes {
		t.Run(s.name, func(t *testing.T) {
			panics := kernel("panics", func(context.Context, kernels.Runtime, []string, []byte) ([]byte, error) { panic("oops") })
			tr := launchertest.Start(t, s.shape, launchertest.Options{Kernels: []kernels.Kernel{panics}})
			_, err := submitWait(t, tr.Client(), "fail", "Boo!")
			var te *client.TaskError
			if !errors.As(err, &te) || te.Message != "Boo!" || te.Kernel != "fail" || te.Host == "" || te.Rank < 1 {
				t.Fatalf("error %#v, want the task error Boo! naming rank and host", err)
			}
			// An unknown kernel, and a kernel that panics, are task errors.
			_, err = submitWait(t, tr.Client(), "unknown-kernel")
			if !errors.As(err, &te) || !strings.Contains(te.Message, "unknown kernel") {
				t.Fatalf("unknown kernel: %v", err)
			}
			_, err = submitWait(t, tr.Client(), "panics")
			if !errors.As(err, &te) || !strings.Contains(te.Message, "kernel panics panicked: oops") {
				t.Fatalf("panicking kernel: %v", err)
			}
			if got := mustRun(t, tr.Client(), "echo", "alive"); got != "alive" {
				t.Fatalf("after a panic: %q", got)
			}
		})
	}
}

// recorder is a slog handler that keeps records.
type recorder struct {
	mu      sync.Mutex
	records []string
}

func (r *recorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *recorder) WithAttrs([]slog.Attr) slog.Handler       { return r }
func (r *recorder) WithGroup(string) slog.Handler            { return r }
func (r *recorder) Handle(_ context.Context, rec slog.Record) error {
	s := rec.Level.String() + " " + rec.Message
	rec.Attrs(func(a slog.Attr) bool {
		s += " " + a.Key + "=" + a.Value.String()
		return true
	})
	r.mu.Lock()
	r.records = append(r.records, s)
	r.mu.Unlock()
	return nil
}

func TestLogging(t *testing.T) {
	for _, tc := range []struct {
		level slog.Level
		want  []string
	}{
		{slog.LevelInfo, []string{
			"INFO info record rank=1 host=host1 who=kernel n=2 v={3}",
			"WARN warn record rank=1 host=host1",
			"INFO child record rank=1 host=host1",
		}},
		{slog.LevelDebug, []string{
			"DEBUG debug record rank=1 host=host1 n=1",
			"INFO info record rank=1 host=host1 who=kernel n=2 v={3}",
			"WARN warn record rank=1 host=host1",
			"INFO child record rank=1 host=host1",
		}},
		{slog.LevelWarn, []string{"WARN warn record rank=1 host=host1"}},
	} {
		t.Run(tc.level.String(), func(t *testing.T) {
			tr := launchertest.Start(t, launchertest.Shape{Workers: []int{1}}, launchertest.Options{Kernels: tableKernels()})
			rec := &recorder{}
			c := tr.Client(client.Options{Logger: slog.New(rec), LogLevel: tc.level})
			mustRun(t, c, "logs")
			rec.mu.Lock()
			defer rec.mu.Unlock()
			if strings.Join(rec.records, "\n") != strings.Join(tc.want, "\n") {
				t.Fatalf("records:\n%s\nwant:\n%s", strings.Join(rec.records, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}

// TestForkJoinOneSlot runs nested fork-join of several depths and widths
// on a single slot: a waiting kernel must give its slot back.
func TestForkJoinOneSlot(t *testing.T) {
	tr := launchertest.Start(t, launchertest.Shape{Workers: []int{1}})
	c := tr.Client()
	for _, tc := range []struct{ n, depth, want int }{{1, 12, 1}, {2, 8, 256}, {3, 6, 729}, {30, 2, 900}, {1000, 1, 1000}} {
		if got := mustRun(t, c, "fanout", strconv.Itoa(tc.n), strconv.Itoa(tc.depth)); got != strconv.Itoa(tc.want) {
			t.Fatalf("fanout %d %d = %s, want %d", tc.n, tc.depth, got, tc.want)
		}
	}
}

// TestLogDepth ports max_logging_depth: records of tasks nested deeper
// than the client's limit are not forwarded.
func TestLogDepth(t *testing.T) {
	nest := kernel("nest", func(ctx context.Context, rt kernels.Runtime, args []string, _ []byte) ([]byte, error) {
		level, _ := strconv.Atoi(args[0])
		last, _ := strconv.Atoi(args[1])
		rt.Logger().Info("level " + args[0])
		if level == last {
			return nil, nil
		}
		f, err := rt.Submit(ctx, kernels.Task{Kernel: "nest", Args: []string{strconv.Itoa(level + 1), args[1]}})
		if err != nil {
			return nil, err
		}
		_, err = rt.Wait(ctx, f)
		return nil, err
	})
	tr := launchertest.Start(t, launchertest.Shape{Workers: []int{1}, Managers: []launchertest.Shape{{Workers: []int{1}}}}, launchertest.Options{Kernels: []kernels.Kernel{nest}})
	for _, tc := range []struct {
		bqskitDepth int // max_logging_depth
		levels      int // records expected: levels 0 … levels-1
	}{{-1, 5}, {0, 1}, {1, 2}, {2, 3}, {3, 4}, {4, 5}} {
		t.Run(strconv.Itoa(tc.bqskitDepth), func(t *testing.T) {
			rec := &recorder{}
			c := tr.Client(client.Options{Logger: slog.New(rec), LogDepth: tc.bqskitDepth + 1})
			mustRun(t, c, "nest", "0", "4")
			rec.mu.Lock()
			defer rec.mu.Unlock()
			var want []string
			for l := range tc.levels {
				want = append(want, "level "+strconv.Itoa(l))
			}
			var got []string
			for _, r := range rec.records {
				got = append(got, strings.Fields(r)[1]+" "+strings.Fields(r)[2])
			}
			if strings.Join(got, ",") != strings.Join(want, ",") {
				t.Fatalf("max depth %d: records %v, want %v", tc.bqskitDepth, got, want)
			}
		})
	}
}
