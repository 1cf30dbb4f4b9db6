package launcher_test

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/qlaunch/qlaunch/kernels"
	"github.com/qlaunch/qlaunch/launcher/launchertest"
)

// batchProbe is a kernel with a Batch function (kernels.Kernel.Batch) that
// doubles its payload, and records the largest batch it was given and the
// slots its Warm was called with.
type batchProbe struct {
	largest atomic.Int64
	warmed  chan int
	once    sync.Once
}

func double(p []byte) []byte {
	n, _ := strconv.Atoi(string(p))
	return []byte(strconv.Itoa(2 * n))
}

func (bp *batchProbe) kernels() []kernels.Kernel {
	twice := kernels.Kernel{
		Name: "twice",
		Func: func(_ context.Context, _ kernels.Runtime, _ []string, p []byte) ([]byte, error) {
			return double(p), nil
		},
		Batch: func(calls []kernels.Call, done func(int, []byte, error)) {
			if n := int64(len(calls)); n > bp.largest.Load() {
				bp.largest.Store(n)
			}
			for i, c := range calls {
				done(i, double(c.Payload), nil)
			}
		},
		Warm: func(slots int) { bp.once.Do(func() { bp.warmed <- slots }) },
	}
	boom := kernels.Kernel{
		Name:  "boom",
		Func:  func(context.Context, kernels.Runtime, []string, []byte) ([]byte, error) { panic("boom alone") },
		Batch: func([]kernels.Call, func(int, []byte, error)) { panic("boom in a batch") },
	}
	// mapper KERNEL N maps N tasks of KERNEL (payloads 0…N-1) and returns
	// their results joined by commas.
	mapper := kernels.Kernel{
		Name: "mapper",
		Func: func(ctx context.Context, rt kernels.Runtime, args []string, _ []byte) ([]byte, error) {
			n, _ := strconv.Atoi(args[1])
			ts := make([]kernels.Task, n)
			for i := range ts {
				ts[i] = kernels.Task{Kernel: args[0], Payload: []byte(strconv.Itoa(i))}
			}
			f, err := rt.Map(ctx, ts)
			if err != nil {
				return nil, err
			}
			vals, err := rt.Wait(ctx, f)
			if err != nil {
				return nil, err
			}
			out := make([]string, len(vals))
			for i, v := range vals {
				out[i] = string(v)
			}
			return []byte(strings.Join(out, ",")), nil
		},
	}
	return []kernels.Kernel{twice, boom, mapper}
}

// TestKernelBatchRuns: a worker rank runs queued tasks of a kernel with a
// Batch function several to a call of it, each result reaching its own
// future in order; it calls the kernel's Warm when it starts, with its
// slots; and a Batch that panics fails its tasks, not the rank.
func TestKernelBatchRuns(t *testing.T) {
	bp := &batchProbe{warmed: make(chan int, 1)}
	tr := launchertest.Start(t, launchertest.Shape{Workers: []int{1}}, launchertest.Options{Kernels: bp.kernels()})
	if slots := recv(t, bp.warmed, "the kernel's Warm"); slots != 1 {
		t.Errorf("Warm called with %d slots, want 1", slots)
	}
	c := tr.Client()
	const n = 200
	want := make([]string, n)
	for i := range want {
		want[i] = strconv.Itoa(2 * i)
	}
	if got := mustRun(t, c, "mapper", "twice", strconv.Itoa(n)); got != strings.Join(want, ",") {
		t.Fatalf("mapper twice %d returned %q", n, got)
	}
	if bp.largest.Load() < 2 {
		t.Errorf("the largest batch had %d tasks; 200 queued children should run several to a batch", bp.largest.Load())
	}
	ctx := ctxT(t)
	f, err := c.Submit(ctx, kernels.Task{Kernel: "mapper", Args: []string{"boom", "10"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Wait(ctx, f); err == nil || !strings.Contains(err.Error(), "panicked") {
		t.Fatalf("a map of a panicking batch kernel: %v, want its tasks failed with the panic", err)
	}
	if got := mustRun(t, c, "mapper", "twice", "3"); got != "0,2,4" {
		t.Fatalf("after the panic: mapper twice 3 returned %q", got)
	}
}
