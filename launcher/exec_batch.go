package launcher

import (
	"fmt"
	"runtime/debug"

	"github.com/qlaunch/qlaunch/kernels"
)

// runKernelBatch runs the leading tasks of batch, whose kernel k has a
// Batch function (kernels.Kernel.Batch), in one call of it when at least
// two of them share k, recording each outcome as it is reported; it
// returns how many it ran, 0 when they do not. Called and returns with mu
// not held.
func (w *worker) runKernelBatch(k *kernels.Kernel, batch []*task, depth int) (ran int) {
	if len(batch) < 2 {
		return 0
	}
	n := 1
	for n < len(batch) && batch[n].kernel == k.Name {
		n++
	}
	if n < 2 {
		return 0
	}
	ran = n // also when Batch panics
	ts := batch[:n]
	calls := make([]kernels.Call, 0, n)
	idx := make([]int, 0, n) // calls[j] is ts[idx[j]]
	for i, t := range ts {
		if t.ctx.Err() != nil {
			w.lock()
			w.finish(t, nil, kernels.ErrCancelled)
			w.mu.Unlock()
			continue
		}
		t.depth = int32(depth)
		t.rt = taskRuntime{w: w, t: t}
		calls = append(calls, kernels.Call{Ctx: t.ctx, Runtime: &t.rt, Args: t.args, Payload: t.payload})
		idx = append(idx, i)
	}
	reported := make([]bool, len(calls))
	report := func(j int, val []byte, err error) {
		if reported[j] {
			return
		}
		reported[j] = true
		w.lock()
		w.finish(ts[idx[j]], val, err)
		w.mu.Unlock()
	}
	defer func() {
		if p := recover(); p != nil {
			err := fmt.Errorf("kernel %s panicked: %v\n%s", k.Name, p, debug.Stack())
			for j := range calls {
				report(j, nil, err)
			}
		}
	}()
	if len(calls) > 0 {
		k.Batch(calls, report)
	}
	for j := range calls {
		if !reported[j] { // the error only for a task left out: one per task costs 5% of a Python batch
			report(j, nil, fmt.Errorf("kernel %s: its batch returned without this task's outcome", k.Name))
		}
	}
	return n
}
