package python_test

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/qlaunch/qlaunch/kernels"
	"github.com/qlaunch/qlaunch/kernels/kerneltest"
	"github.com/qlaunch/qlaunch/kernels/python"
)

// These tests run the kernel in process (kerneltest's runtime, so the race
// detector sees the kernel's goroutines) with real executors. Payloads are
// built by the Python package, as a client would.

// payloads returns, for each "CALL|VALUE" (CALL calls a function of
// python/tests/helpers.py, "nested(5, 2)"; VALUE is a Python expression,
// possibly empty), the task payload of CALL and the pickle of VALUE.
func payloads(t *testing.T, pythonPath string, exprs ...string) (pls, want [][]byte) {
	t.Helper()
	checkPython(t)
	script := `import sys
from qlaunch import _task
import helpers
for e in sys.argv[1:]:
    call, _, value = e.partition("|")
    name, _, rest = call.partition("(")
    args = eval("(" + rest[:-1] + ",)") if rest[:-1] else ()
    print(_task.payload(_task.encode_fn(getattr(helpers, name)), args, {}).hex())
    print(_task.dumps(eval(value)).hex() if value else "-")
`
	cmd := exec.Command(python3, append([]string{"-c", script}, exprs...)...)
	cmd.Env = append(os.Environ(), "PYTHONPATH="+pythonPath)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("building payloads: %v", err)
	}
	lines := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
	if len(lines) != 2*len(exprs) {
		t.Fatalf("building payloads: %d lines for %d expressions", len(lines), len(exprs))
	}
	for i := 0; i < len(lines); i += 2 {
		p, err1 := hex.DecodeString(lines[i])
		w, err2 := hex.DecodeString(strings.TrimPrefix(lines[i+1], "-"))
		if err1 != nil || err2 != nil {
			t.Fatalf("building payloads: bad hex")
		}
		pls, want = append(pls, p), append(want, w)
	}
	return pls, want
}

func newPool(t *testing.T) (*python.Pool, string) {
	t.Helper()
	root := repoRoot(t)
	path := filepath.Join(root, "python") + string(os.PathListSeparator) + filepath.Join(root, "python", "tests")
	p := python.NewPool(python.Options{
		Python:  python3,
		Environ: func() []string { return append(os.Environ(), "PYTHONPATH="+path) },
	})
	t.Cleanup(func() {
		p.Close()
		if pids := p.Executors(); len(pids) != 0 {
			t.Errorf("executors left after Close: %v", pids)
		}
	})
	return p, path
}

func TestKernelInProcess(t *testing.T) {
	p, path := newPool(t)
	reg, err := kernels.NewRegistry(p.Kernel())
	if err != nil {
		t.Fatal(err)
	}
	pls, want := payloads(t, path, "square(12)|144", "nested(6, 2)|36", "fail('no')|", "unpicklable()|")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for _, slots := range []int{1, 2} {
		rt := kerneltest.New(reg, slots)
		for i, expr := range []string{"square", "nested"} {
			out, err := rt.Run(ctx, kernels.Task{Kernel: python.Name, Args: []string{path}, Payload: pls[i]})
			if err != nil || string(out) != string(want[i]) {
				t.Errorf("%d slots: %s: got %x, %v; want %x", slots, expr, out, err, want[i])
			}
		}
		_, err := rt.Run(ctx, kernels.Task{Kernel: python.Name, Args: []string{path}, Payload: pls[2]})
		if err == nil || !strings.Contains(err.Error(), "ValueError: no") || !strings.Contains(err.Error(), "Traceback") {
			t.Errorf("%d slots: fail: got %v, want the remote traceback", slots, err)
		}
		_, err = rt.Run(ctx, kernels.Task{Kernel: python.Name, Args: []string{path}, Payload: pls[3]})
		if err == nil || !strings.Contains(err.Error(), "could not be pickled") {
			t.Errorf("%d slots: unpicklable: got %v", slots, err)
		}
	}
	if n := len(p.Executors()); n < 1 || n > 2 {
		t.Errorf("%d executors for at most 2 slots", n)
	}
}

func TestKernelExecutorKilled(t *testing.T) {
	p, path := newPool(t)
	reg, err := kernels.NewRegistry(p.Kernel())
	if err != nil {
		t.Fatal(err)
	}
	pls, want := payloads(t, path, "die()|", "square(3)|9")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rt := kerneltest.New(reg, 1)
	if _, err := rt.Run(ctx, kernels.Task{Kernel: python.Name, Args: []string{path}, Payload: pls[1]}); err != nil {
		t.Fatal(err)
	}
	before := p.Executors()
	_, err = rt.Run(ctx, kernels.Task{Kernel: python.Name, Args: []string{path}, Payload: pls[0]})
	if err == nil || !strings.Contains(err.Error(), "killed by signal 9") {
		t.Fatalf("a task whose executor was killed: got %v, want killed by signal 9", err)
	}
	out, err := rt.Run(ctx, kernels.Task{Kernel: python.Name, Args: []string{path}, Payload: pls[1]})
	if err != nil || string(out) != string(want[1]) {
		t.Fatalf("after the kill: %x, %v", out, err)
	}
	after := p.Executors()
	if len(before) != 1 || len(after) != 1 || before[0] == after[0] {
		t.Errorf("executors before the kill %v, after %v: want one, replaced", before, after)
	}
}

func TestKernelNoInterpreter(t *testing.T) {
	p := python.NewPool(python.Options{Python: filepath.Join(t.TempDir(), "no-python")})
	defer p.Close()
	reg, _ := kernels.NewRegistry(p.Kernel())
	_, err := kerneltest.New(reg, 1).Run(context.Background(), kernels.Task{Kernel: python.Name, Payload: []byte{0, 0, 0, 0}})
	if err == nil || !strings.Contains(err.Error(), "QLAUNCH_PYTHON") {
		t.Errorf("got %v, want an error saying how to choose the interpreter", err)
	}
}

// runBatch runs calls of payloads through the kernel's Batch inside a
// driver kernel (so the calls' in-task children have a runtime), with
// ctxOf(i) as call i's context, and returns the outcomes by index.
func runBatch(t *testing.T, p *python.Pool, path string, pls [][]byte, ctxOf func(ctx context.Context, i int) context.Context) (vals [][]byte, errs []error) {
	t.Helper()
	vals, errs, _ = runBatchOrder(t, p, path, pls, ctxOf, nil, nil)
	return vals, errs
}

// runBatchOrder is runBatch, with call i's runtime rtOf(i, rt) (nil: the
// driver's), calling onReport(i) as call i is reported (nil: nothing), and
// returning the order in which the calls were reported.
func runBatchOrder(t *testing.T, p *python.Pool, path string, pls [][]byte, ctxOf func(ctx context.Context, i int) context.Context, rtOf func(int, kernels.Runtime) kernels.Runtime, onReport func(int)) (vals [][]byte, errs []error, order []int) {
	t.Helper()
	vals, errs = make([][]byte, len(pls)), make([]error, len(pls))
	reported := make([]int, len(pls))
	batchFn := p.Kernel().Batch
	driver := kernels.Kernel{Name: "driver", Func: func(ctx context.Context, rt kernels.Runtime, _ []string, _ []byte) ([]byte, error) {
		calls := make([]kernels.Call, len(pls))
		for i, pl := range pls {
			calls[i] = kernels.Call{Ctx: ctxOf(ctx, i), Runtime: rt, Args: []string{path}, Payload: pl}
			if rtOf != nil {
				calls[i].Runtime = rtOf(i, rt)
			}
		}
		batchFn(calls, func(i int, v []byte, err error) {
			reported[i]++
			vals[i], errs[i] = v, err
			order = append(order, i)
			if onReport != nil {
				onReport(i)
			}
		})
		return nil, nil
	}}
	reg, err := kernels.NewRegistry(p.Kernel(), driver)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, err := kerneltest.New(reg, 1).Run(ctx, kernels.Task{Kernel: "driver"}); err != nil {
		t.Fatal(err)
	}
	for i, n := range reported {
		if n != 1 {
			t.Errorf("call %d reported %d times, want once", i, n)
		}
	}
	return vals, errs, order
}

// TestKernelBatch runs plain calls, a failing one and nested fork-join
// calls (which wait, one at a time, on their children) in one batch on one
// executor.
func TestKernelBatch(t *testing.T) {
	p, path := newPool(t)
	pls, want := payloads(t, path, "square(2)|4", "nested(4, 2)|16", "fail('no')|", "square(7)|49", "nested(3, 1)|3")
	same := func(ctx context.Context, _ int) context.Context { return ctx }
	vals, errs := runBatch(t, p, path, pls, same)
	for i := range pls {
		if i == 2 {
			if errs[i] == nil || !strings.Contains(errs[i].Error(), "ValueError: no") {
				t.Errorf("call 2: got %v, want the remote ValueError", errs[i])
			}
			continue
		}
		if errs[i] != nil || string(vals[i]) != string(want[i]) {
			t.Errorf("call %d: got %x, %v; want %x", i, vals[i], errs[i], want[i])
		}
	}
}

// TestKernelBatchCancel cancels one call of a batch while the executor
// runs it: that call alone ends, with its context's cause, and the others
// finish; the pool then runs the next batch.
func TestKernelBatchCancel(t *testing.T) {
	p, path := newPool(t)
	pls, want := payloads(t, path, "square(3)|9", "sleep_then(1)|", "square(5)|25")
	cause := errors.New("call 1 cancelled by the test")
	vals, errs := runBatch(t, p, path, pls, func(ctx context.Context, i int) context.Context {
		if i != 1 {
			return ctx
		}
		c, cancel := context.WithCancelCause(ctx)
		cancel(cause) // ended before the batch starts: its code runs, and is orphaned
		return c
	})
	if !errors.Is(errs[1], cause) {
		t.Errorf("the cancelled call: got %v, want %v", errs[1], cause)
	}
	for _, i := range []int{0, 2} {
		if errs[i] != nil || string(vals[i]) != string(want[i]) {
			t.Errorf("call %d: got %x, %v; want %x", i, vals[i], errs[i], want[i])
		}
	}
	same := func(ctx context.Context, _ int) context.Context { return ctx }
	vals, errs = runBatch(t, p, path, pls[:1], same)
	if errs[0] != nil || string(vals[0]) != string(want[0]) {
		t.Errorf("the next batch: got %x, %v; want %x", vals[0], errs[0], want[0])
	}
}

// TestKernelWarm: in a Python job (python.WarmEnv set), Warm starts an
// executor before any task, and the first task runs on it rather than
// starting another; where qlaunch does not import without the client's
// path, the warm executor exits quietly and the task starts one with its
// path. In a job of Go kernels alone, Warm starts nothing.
func TestKernelWarm(t *testing.T) {
	root := repoRoot(t)
	path := filepath.Join(root, "python") + string(os.PathListSeparator) + filepath.Join(root, "python", "tests")
	pls, want := payloads(t, path, "square(6)|36")
	goOnly := python.NewPool(python.Options{Python: python3, Getenv: func(string) string { return "" }})
	goOnly.Warm(1)
	if goOnly.Warming() {
		t.Errorf("Warm started an executor in a job that declares no Python")
	}
	goOnly.Close()
	pythonJob := func(k string) string {
		if k == python.WarmEnv {
			return "1"
		}
		return ""
	}
	for _, importable := range []bool{true, false} {
		env := os.Environ()
		if importable {
			env = append(env, "PYTHONPATH="+path)
		} else {
			env = append(env, "PYTHONPATH=")
		}
		p := python.NewPool(python.Options{Python: python3, Getenv: pythonJob, Environ: func() []string { return env }})
		p.Warm(1)
		if !p.Warming() {
			t.Errorf("importable %v: Warm started no executor in a Python job", importable)
		}
		reg, err := kernels.NewRegistry(p.Kernel())
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		out, err := kerneltest.New(reg, 1).Run(ctx, kernels.Task{Kernel: python.Name, Args: []string{path}, Payload: pls[0]})
		cancel()
		if err != nil || string(out) != string(want[0]) {
			t.Errorf("importable %v: got %x, %v; want %x", importable, out, err, want[0])
		}
		if pids := p.Executors(); len(pids) != 1 {
			t.Errorf("importable %v: executors %v after one task on one slot, want one", importable, pids)
		}
		p.Close()
		if pids := p.Executors(); len(pids) != 0 {
			t.Errorf("importable %v: executors left after Close: %v", importable, pids)
		}
	}
}

// onWait is a runtime that calls hook when its Wait is called and
// records in done whether a Wait has returned successfully.
type onWait struct {
	kernels.Runtime
	hook func()
	done *bool
}

func (r onWait) Wait(ctx context.Context, f kernels.Future) ([][]byte, error) {
	r.hook()
	vals, err := r.Runtime.Wait(ctx, f)
	if err == nil {
		*r.done = true
	}
	return vals, err
}

// cancelOneOnWait returns runBatchOrder's ctxOf and rtOf for a batch whose
// call 1 runs under a context that is cancelled when call 0 calls Wait;
// waited records whether call 0's Wait returned.
func cancelOneOnWait(t *testing.T, waited *bool) (ctxOf func(context.Context, int) context.Context, rtOf func(int, kernels.Runtime) kernels.Runtime) {
	cancelled, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	ctxOf = func(ctx context.Context, i int) context.Context {
		if i == 1 {
			return cancelled
		}
		return ctx
	}
	rtOf = func(i int, rt kernels.Runtime) kernels.Runtime {
		if i == 0 {
			return onWait{rt, cancel, waited}
		}
		return rt
	}
	return ctxOf, rtOf
}

// TestKernelBatchCancelDuringWait cancels a suspended task of a batch
// while the batch serves another task's wait: the cancelled task is
// reported then, not once that wait ends.
func TestKernelBatchCancelDuringWait(t *testing.T) {
	p, path := newPool(t)
	pls, want := payloads(t, path, "await_sleep(2)|2", "await_sleep(2)|", "square(4)|16")
	var waited, waitedAtReport bool // call 0's wait ended; it had when call 1 was reported
	ctxOf, rtOf := cancelOneOnWait(t, &waited)
	vals, errs, _ := runBatchOrder(t, p, path, pls, ctxOf, rtOf, func(i int) {
		if i == 1 {
			waitedAtReport = waited
		}
	})
	if !errors.Is(errs[1], context.Canceled) {
		t.Errorf("the cancelled call: got %v, want context.Canceled", errs[1])
	}
	for _, i := range []int{0, 2} {
		if errs[i] != nil || string(vals[i]) != string(want[i]) {
			t.Errorf("call %d: got %x, %v; want %x", i, vals[i], errs[i], want[i])
		}
	}
	if waitedAtReport {
		t.Errorf("the cancelled call was reported after call 0's wait ended, want while it was served")
	}
}

// TestInTaskRetryKernel runs tasks on a registry that holds only the
// retryable twin: a child submitted in-task with retry=True is a task of
// RetryName (it runs), one without is a task of the plain kernel (unknown
// there), so the retry flag reaches the child's kernel name.
func TestInTaskRetryKernel(t *testing.T) {
	p, path := newPool(t)
	reg, err := kernels.NewRegistry(p.RetryableKernel())
	if err != nil {
		t.Fatal(err)
	}
	pls, want := payloads(t, path, "plain_submit_retry(4)|16", "map_retry(3)|[0, 1, 4]", "plain_submit_plain(4)|")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rt := kerneltest.New(reg, 1)
	for i, name := range []string{"plain_submit_retry", "map_retry"} {
		out, err := rt.Run(ctx, kernels.Task{Kernel: python.RetryName, Args: []string{path}, Payload: pls[i]})
		if err != nil || string(out) != string(want[i]) {
			t.Errorf("%s: got %x, %v; want %x", name, out, err, want[i])
		}
	}
	_, err = rt.Run(ctx, kernels.Task{Kernel: python.RetryName, Args: []string{path}, Payload: pls[2]})
	if err == nil || !strings.Contains(err.Error(), "unknown kernel") {
		t.Errorf("a child without retry on a registry of the retryable kernel alone: got %v, want unknown kernel", err)
	}
}

// TestPlainTaskBlockingWait runs plain (def) tasks that wait on their
// children with result() on one slot: each blocked task holds its
// interpreter, not the slot, so nested fork-join completes, and the pool
// has started more executors than slots.
func TestPlainTaskBlockingWait(t *testing.T) {
	p, path := newPool(t)
	reg, err := kernels.NewRegistry(p.Kernel())
	if err != nil {
		t.Fatal(err)
	}
	pls, want := payloads(t, path, "plain_map(5)|30", "plain_nested(3, 2)|9", "async_over_plain(2, 3)|10")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rt := kerneltest.New(reg, 1)
	for i, name := range []string{"plain_map", "plain_nested", "async_over_plain"} {
		out, err := rt.Run(ctx, kernels.Task{Kernel: python.Name, Args: []string{path}, Payload: pls[i]})
		if err != nil || string(out) != string(want[i]) {
			t.Errorf("%s: got %x, %v; want %x", name, out, err, want[i])
		}
	}
	if n := len(p.Executors()); n < 2 {
		t.Errorf("%d executor(s) after blocking waits on one slot; want one per blocked level", n)
	}
}

// TestKernelRunSame runs a batch whose functions change and come back: the
// kernel sends a task of the function of the run before it as a run-same
// message (the call alone), and each task still runs its own function;
// a function that does not unpickle fails its run and the run-same tasks
// behind it alike, and the batch goes on.
func TestKernelRunSame(t *testing.T) {
	p, path := newPool(t)
	pls, want := payloads(t, path, "square(2)|4", "square(3)|9", "add(1, 2)|3", "add(3, 4)|7",
		"square(5)|25", "square(6)|36")
	// A function part of 3 bytes that is no pickle, with the call of square(2).
	bad := append([]byte{0, 0, 0, 3, 0x80, 5, 'X'}, pls[0][4+binary.BigEndian.Uint32(pls[0]):]...)
	pls = append(pls, bad, bad, pls[5])
	want = append(want, nil, nil, want[5])
	same := func(ctx context.Context, _ int) context.Context { return ctx }
	for round := range 2 { // the second batch starts on an executor whose last run was of another function
		vals, errs := runBatch(t, p, path, pls, same)
		for i := range pls {
			if want[i] == nil {
				if errs[i] == nil || !strings.Contains(errs[i].Error(), "could not unpickle the task") {
					t.Errorf("round %d: call %d: got %x, %v; want the unpickling error", round, i, vals[i], errs[i])
				}
				continue
			}
			if errs[i] != nil || string(vals[i]) != string(want[i]) {
				t.Errorf("round %d: call %d: got %x, %v; want %x", round, i, vals[i], errs[i], want[i])
			}
		}
	}
}

// TestKernelRunSameAfterDroppedRun: a plain task blocks (result()) while
// the runs behind it are held; the run one of them refers to as run-same
// is cancelled and dropped before it starts, and the run-same task still
// calls that function.
func TestKernelRunSameAfterDroppedRun(t *testing.T) {
	p, path := newPool(t)
	pls, want := payloads(t, path, "plain_map(3)|5", "square(2)|", "square(3)|9", "square(4)|16")
	var waited bool
	ctxOf, rtOf := cancelOneOnWait(t, &waited)
	vals, errs, _ := runBatchOrder(t, p, path, pls, ctxOf, rtOf, nil)
	if !errors.Is(errs[1], context.Canceled) {
		t.Errorf("the cancelled call: got %v, want context.Canceled", errs[1])
	}
	for _, i := range []int{0, 2, 3} {
		if errs[i] != nil || string(vals[i]) != string(want[i]) {
			t.Errorf("call %d: got %x, %v; want %x", i, vals[i], errs[i], want[i])
		}
	}
}
