package bench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"time"

	"github.com/qlaunch/qlaunch/kernels"
)

// submitWait runs t and checks its result against want (when want is not
// nil).
func (r *runner) submitWait(ctx context.Context, t kernels.Task, want []byte) error {
	f, err := r.c.Submit(ctx, t)
	if err != nil {
		return err
	}
	vals, err := r.c.Wait(ctx, f)
	if err != nil {
		return err
	}
	if want != nil && string(vals[0]) != string(want) {
		return fmt.Errorf("%s %v returned %q, want %q", t.Kernel, t.Args, vals[0], want)
	}
	return nil
}

// childPaths sums over the worker ranks of the runtime how many child
// tasks of their kernels ran on the rank that submitted them (kept) and
// how many tasks they handed back up to run elsewhere (via the server).
func (r *runner) childPaths(ctx context.Context) (kept, up uint64, err error) {
	ranks, err := r.c.Status(ctx)
	if err != nil {
		return 0, 0, fmt.Errorf("status: %w", err)
	}
	for _, rk := range ranks {
		kept += rk.Kept
		up += rk.HandedUp
	}
	return kept, up, nil
}

// withPaths runs once, timed as once times itself, and adds to its sample
// the figures children_local and children_via_server: how many child
// tasks ran on the rank of the kernel that submitted them, and how many
// were handed up and placed again by the relays, read from the worker
// ranks' status before and after (outside the timed part).
func (r *runner) withPaths(ctx context.Context, once func() (sample, error)) func() (sample, error) {
	return func() (sample, error) {
		k0, u0, err := r.childPaths(ctx)
		if err != nil {
			return sample{}, err
		}
		s, err := once()
		if err != nil {
			return s, err
		}
		k1, u1, err := r.childPaths(ctx)
		if err != nil {
			return sample{}, err
		}
		s.figures = append(s.figures, fig("children_local", float64(k1-k0)), fig("children_via_server", float64(u1-u0)))
		return s, nil
	}
}

func runTiny(ctx context.Context, r *runner) ([]Result, error) {
	n := r.tasks
	t := kernels.Task{Kernel: "fanout", Args: []string{strconv.Itoa(n), "1"}}
	want := []byte(strconv.Itoa(n))
	res, err := r.repeat("", n, r.withPaths(ctx, func() (sample, error) {
		t0 := time.Now()
		if err := r.submitWait(ctx, t, want); err != nil {
			return sample{}, err
		}
		return rate("tasks_per_s", n, time.Since(t0)), nil
	}))
	return []Result{res}, err
}

func runNested(ctx context.Context, r *runner) ([]Result, error) {
	const width = 100
	t := kernels.Task{Kernel: "fanout", Args: []string{strconv.Itoa(width), "2"}}
	want := []byte(strconv.Itoa(width * width))
	n := width + width*width
	res, err := r.repeat("", n, r.withPaths(ctx, func() (sample, error) {
		t0 := time.Now()
		if err := r.submitWait(ctx, t, want); err != nil {
			return sample{}, err
		}
		return rate("tasks_per_s", n, time.Since(t0)), nil
	}))
	return []Result{res}, err
}

func runClientMap(ctx context.Context, r *runner) ([]Result, error) {
	n := r.tasks
	ts := make([]kernels.Task, n)
	for i := range ts {
		ts[i] = kernels.Task{Kernel: "noop"}
	}
	res, err := r.repeat("", n, func() (sample, error) {
		t0 := time.Now()
		f, err := r.c.Map(ctx, ts)
		if err != nil {
			return sample{}, err
		}
		vals, err := r.c.Wait(ctx, f)
		if err != nil {
			return sample{}, err
		}
		if len(vals) != n {
			return sample{}, fmt.Errorf("%d results, want %d", len(vals), n)
		}
		return rate("tasks_per_s", n, time.Since(t0)), nil
	})
	return []Result{res}, err
}

func runLatency(ctx context.Context, r *runner) ([]Result, error) {
	n := r.tasks
	t := kernels.Task{Kernel: "noop"}
	lat := make([]time.Duration, n)
	res, err := r.repeat("", n, func() (sample, error) {
		start := time.Now()
		for i := range lat {
			t0 := time.Now()
			if err := r.submitWait(ctx, t, nil); err != nil {
				return sample{}, err
			}
			lat[i] = time.Since(t0)
		}
		total := time.Since(start)
		slices.Sort(lat)
		return sample{seconds: total.Seconds(), figures: []Figure{
			fig("median_us", micros(quantile(lat, 0.5))),
			fig("p99_us", micros(quantile(lat, 0.99))),
		}}, nil
	})
	return []Result{res}, err
}

// payloadWindow is the most payload bytes one map carries. The client
// sends what is queued in one frame, and two maps may be queued at once;
// 16 MiB each keeps that frame well under the default 64 MiB limit.
const payloadWindow = 16 << 20

func runPayload(ctx context.Context, r *runner) ([]Result, error) {
	n, size := r.tasks, r.opts.Payload
	random := make([]byte, size)
	rng := rand.NewChaCha8([32]byte{'q', 'l', 'a', 'u', 'n', 'c', 'h'})
	_, _ = rng.Read(random)
	repetitive := make([]byte, size)
	const pattern = "qlaunch bench payload, repetitive and compressible. "
	for i := range repetitive {
		repetitive[i] = pattern[i%len(pattern)]
	}
	var out []Result
	for _, v := range []struct {
		name string
		data []byte
	}{{"random", random}, {"repetitive", repetitive}} {
		res, err := r.repeat(v.name, n, func() (sample, error) {
			t0 := time.Now()
			if err := r.sendPayloads(ctx, n, v.data); err != nil {
				return sample{}, err
			}
			d := time.Since(t0)
			return sample{seconds: d.Seconds(), figures: []Figure{
				fig("MB_per_s", float64(n)*float64(size)/1e6/d.Seconds()),
			}}, nil
		})
		if err != nil {
			return nil, err
		}
		out = append(out, res)
	}
	return out, nil
}

// sendPayloads runs n len tasks carrying data, in maps of at most
// payloadWindow bytes with one map in flight ahead of the one waited on.
func (r *runner) sendPayloads(ctx context.Context, n int, data []byte) error {
	per := max(1, payloadWindow/max(1, len(data)))
	want := strconv.Itoa(len(data))
	var pending []kernels.Future
	wait := func() error {
		f := pending[0]
		pending = pending[1:]
		vals, err := r.c.Wait(ctx, f)
		if err != nil {
			return err
		}
		for _, v := range vals {
			if string(v) != want {
				return fmt.Errorf("len returned %q, want %s", v, want)
			}
		}
		return nil
	}
	for sent := 0; sent < n; {
		k := min(per, n-sent)
		ts := make([]kernels.Task, k)
		for i := range ts {
			ts[i] = kernels.Task{Kernel: "len", Payload: data}
		}
		f, err := r.c.Map(ctx, ts)
		if err != nil {
			return err
		}
		pending = append(pending, f)
		sent += k
		if len(pending) > 1 {
			if err := wait(); err != nil {
				return err
			}
		}
	}
	for len(pending) > 0 {
		if err := wait(); err != nil {
			return err
		}
	}
	return nil
}
