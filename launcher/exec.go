package launcher

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"

	"github.com/qlaunch/qlaunch/kernels"
	"github.com/qlaunch/qlaunch/launcher/executor"
	"github.com/qlaunch/qlaunch/launcher/wire"
)

// This file is the executor of a worker rank: its slots, its run queue,
// the futures of the kernels it runs, and the kernels.Runtime they see.
//
// The state is shared by the rank's kernel goroutines (which call Submit,
// Map, Wait, Next synchronously) and its connection reader, and guarded by
// one mutex (worker.mu) rather than owned by a loop goroutine: a kernel
// calling Map or Wait would otherwise pay two channel hand-offs and a
// goroutine switch per call. Work is taken from the queue in batches, but
// each outcome is recorded as its kernel returns (one uncontended lock per
// task), and results are written after each batch or by the stream check
// (streamCheck, every streamPeriod while kernels run), so a result never
// waits for the rest of its batch.
//
// Slots are tokens (worker.free). A goroutine holds a token while it runs
// a kernel. A kernel that must block in Wait or Next first runs queued
// tasks itself ("helping", at most executor.MaxHelpDepth nested), then gives its
// token back and parks; when its future is ready it takes a token again,
// ahead of queued tasks (worker.resumers). So fork-join of any depth runs on
// one slot. The first batch of a submission that arrives alone runs in the
// goroutine that read it, which saves starting one (runInline in worker.go).


type taskState uint8

const (
	stateQueued taskState = iota
	stateRunning
	stateUp // handed to the parent to run elsewhere
	stateDone
)

// task is one task held by this worker rank: received from the parent
// (remote) or submitted by one of its own kernels (fut != nil).
type task struct {
	kernel   string
	args     []string
	payload  []byte
	logLevel int
	logDepth int // levels that still forward logs, this one included; <0 all

	state     taskState
	cancelled bool
	depth     int // helping depth of the goroutine running it

	fut      *future // local: the future this task is a child of
	idx      int
	remoteID uint64 // remote: the parent's id for it
	upID     uint64 // stateUp: our id for it at the parent
	logID    uint64 // parent-facing id its log records travel under

	// outcome of a kernel that returned, waiting on the finished stack
	outVal   []byte
	outErr   error
	nextDone *task

	ctx     *cancelCtx
	own     cancelCtx // the context of a remote task
	turn    uint64    // the reader's batch it was run in (runInline), if any
	futures []*future // futures its kernel created
	rt      taskRuntime
	logger  *slog.Logger
}

// future is the state behind a kernels.Future.
type future struct {
	id      uint64
	owner   *task
	tasks   []task
	vals    [][]byte
	errs    []error
	arrived []int32 // indices in completion order, for Next
	taken   int     // arrived[:taken] were returned by Next
	done    int
	waited  bool
	waiting bool
	next    bool // the waiter is in Next: wake on every result
	wake    chan struct{}
	ctx     cancelCtx

	cancelled bool
}

func (f *future) complete() bool { return f.done == len(f.tasks) }

type outcome struct {
	t   *task
	val []byte
	err error
}

func (w *worker) queued() int { return w.core.Queued() }

// dispatch hands free tokens to parked kernels first, then to new runner
// goroutines for queued work (executor.Core.Dispatch). With keep, the
// first batch that would have started a runner is returned instead, its
// token taken, for the caller to run (runInline). Called with mu held.
func (w *worker) dispatch(keep bool) (kept []*task) {
	return w.apply(w.core.Dispatch(keep))
}

// apply carries out the executor's effects: resume parked kernels, start
// runners, mark the batches running. It returns the inline batch. Called
// with mu held.
func (w *worker) apply(fx executor.Effects[*task, chan struct{}]) []*task {
	for _, ch := range fx.Wake {
		close(ch)
	}
	for _, b := range fx.Start {
		w.started(b)
		w.runners.Add(1)
		go w.runner(b)
	}
	if fx.Inline != nil {
		w.started(fx.Inline)
		w.runners.Add(1)
	}
	return fx.Inline
}

// started marks the tasks of a batch taken from the queue running and
// starts the stream check. Called with mu held.
func (w *worker) started(batch []*task) {
	for _, t := range batch {
		t.state = stateRunning
	}
	w.startStream()
}

// runner runs batches while there is work, holding one token.
func (w *worker) runner(batch []*task) {
	defer w.runners.Done()
	for {
		w.runBatch(batch, 0)
		next, wake, woke, done := w.core.Continue(batch)
		if woke {
			close(wake)
		}
		if !done {
			w.started(next)
		}
		w.maybeLoad()
		w.mu.Unlock()
		_ = w.flushNow()
		if done {
			return
		}
		batch = next
	}
}

// runBatch runs the kernels of batch one after another at helping depth
// depth (mu not held) and returns with mu held. Each outcome is recorded
// as its kernel returns if mu is free (TryLock), otherwise pushed on the
// finished stack for whoever takes mu next (lock); the batch's last is
// recorded under a blocking lock. So a result waits at most for the
// stream check (streamCheck), never for the rest of the batch, and two
// slots running tiny tasks side by side do not queue on mu once per task.
func (w *worker) runBatch(batch []*task, depth int) {
	for i, t := range batch {
		o := w.run(t, depth)
		if i < len(batch)-1 && !w.mu.TryLock() {
			t.outVal, t.outErr = o.val, o.err
			w.pushFinished(t)
			continue
		}
		if i == len(batch)-1 {
			w.mu.Lock()
		}
		w.recordFinished()
		w.finish(o.t, o.val, o.err)
		if i < len(batch)-1 {
			w.mu.Unlock()
		}
	}
	if len(batch) == 0 {
		w.lock()
	}
}

// pushFinished puts t, whose kernel returned, on the finished stack
// (lock-free: any goroutine may push).
func (w *worker) pushFinished(t *task) {
	for {
		top := w.finished.Load()
		t.nextDone = top
		if w.finished.CompareAndSwap(top, t) {
			return
		}
	}
}

// lock takes mu and records the outcomes on the finished stack.
func (w *worker) lock() {
	w.mu.Lock()
	w.recordFinished()
}

// recordFinished records the outcomes on the finished stack, oldest first.
// Called with mu held.
func (w *worker) recordFinished() {
	if w.finished.Load() == nil {
		return
	}
	var rev *task
	for t := w.finished.Swap(nil); t != nil; {
		next := t.nextDone
		t.nextDone, rev = rev, t
		t = next
	}
	for t := rev; t != nil; {
		next := t.nextDone
		val, err := t.outVal, t.outErr
		t.nextDone, t.outVal, t.outErr = nil, nil, nil
		w.finish(t, val, err)
		t = next
	}
}

// run executes one task's kernel (mu not held). A task cancelled while
// queued is not started.
func (w *worker) run(t *task, depth int) (o outcome) {
	o.t = t
	if t.ctx.Err() != nil {
		o.err = kernels.ErrCancelled
		return o
	}
	k, ok := w.cfg.Registry.Lookup(t.kernel)
	if !ok {
		o.err = fmt.Errorf("%w %q", kernels.ErrUnknownKernel, t.kernel)
		return o
	}
	t.depth = depth
	t.rt = taskRuntime{w: w, t: t}
	defer func() {
		if p := recover(); p != nil {
			o.val, o.err = nil, fmt.Errorf("kernel %s panicked: %v\n%s", t.kernel, p, debug.Stack())
		}
	}()
	o.val, o.err = k.Func(t.ctx, &t.rt, t.args, t.payload)
	return o
}

// finish records a task's outcome. Called with mu held.
func (w *worker) finish(t *task, val []byte, err error) {
	w.done++
	if t.fut != nil {
		w.kept++
	}
	w.complete(t, val, err)
}

// complete records the outcome of t, which ran here (finish) or at the
// parent (completeUp). Called with mu held.
func (w *worker) complete(t *task, val []byte, err error) {
	t.state = stateDone
	for _, f := range t.futures {
		if !f.complete() {
			w.cancelFuture(f)
		}
		delete(w.futures, f.id)
	}
	t.futures = nil
	if t.cancelled || (t.fut != nil && t.fut.cancelled) {
		val, err = nil, kernels.ErrCancelled
	}
	if t.fut != nil {
		w.deliver(t.fut, t.idx, val, err)
		return
	}
	delete(w.remote, t.remoteID)
	if limit := w.cfg.Link.MaxResultBytes; err == nil && len(val) > limit {
		// It could not travel (the frame limit): this task fails, the
		// rank's connection and its other tasks are unharmed.
		val, err = nil, fmt.Errorf("result of %d bytes is larger than the limit of %d bytes ([runtime] max_result_bytes); return less, or write large outputs to a file", len(val), limit)
	}
	r := wire.Result{Value: val}
	switch {
	case err == nil:
	case t.cancelled:
		r.Status = wire.ResultCancelled
	case errors.Is(err, kernels.ErrCancelled):
		// The kernel failed because something it waited on was cancelled:
		// the client sees a cancellation, with who reported it.
		r.Status, r.Message, r.Kernel, r.Rank, r.Host = wire.ResultCancelled, err.Error(), t.kernel, w.cfg.Rank, w.cfg.Host
	default:
		r.Status, r.Message, r.Kernel, r.Rank, r.Host = wire.ResultError, err.Error(), t.kernel, w.cfg.Rank, w.cfg.Host
	}
	// The caller flushes: runners write directly after their batch.
	w.resultOut = wire.AppendRecord(w.resultOut, t.remoteID, w.encodeResult(&r))
	w.checkDrained()
}

func (w *worker) encodeResult(r *wire.Result) []byte {
	w.scratch = wire.AppendResult(w.scratch[:0], r)
	return w.scratch
}

// deliver stores result idx of f and wakes its waiter. Called with mu held.
func (w *worker) deliver(f *future, idx int, val []byte, err error) {
	f.vals[idx] = val
	if err != nil {
		if f.errs == nil {
			f.errs = make([]error, len(f.tasks))
		}
		f.errs[idx] = err
	}
	f.arrived = append(f.arrived, int32(idx))
	f.done++
	if f.waiting && (f.next || f.complete()) {
		select {
		case f.wake <- struct{}{}:
		default:
		}
	}
}

// cancelFuture cancels f's tasks and, through their own futures, their
// descendants. Called with mu held.
func (w *worker) cancelFuture(f *future) {
	if f.cancelled {
		return
	}
	f.cancelled = true
	f.ctx.cancel()
	for i := range f.tasks {
		w.cancelTask(&f.tasks[i])
	}
	if f.waiting {
		select {
		case f.wake <- struct{}{}:
		default:
		}
	}
}

// cancelTask cancels one task wherever it is. Called with mu held.
func (w *worker) cancelTask(t *task) {
	switch t.state {
	case stateDone:
		return
	case stateUp:
		w.cancelOut = append(w.cancelOut, t.upID)
		w.wakeWriter()
	case stateRunning:
		for _, g := range t.futures {
			w.cancelFuture(g)
		}
	}
	t.cancelled = true
	if t.ctx == &t.own {
		t.own.cancel()
	}
}

// makeFuture builds a future of len(ts) child tasks of t, unregistered.
// Called without mu: a large Map allocates its tasks outside the lock.
func makeFuture(t *task, ts []kernels.Task) *future {
	f := &future{owner: t, wake: make(chan struct{}, 1)}
	f.tasks = make([]task, len(ts))
	f.vals = make([][]byte, len(ts))
	for i := range ts {
		c := &f.tasks[i]
		c.kernel, c.args, c.payload = ts[i].Kernel, ts[i].Args, ts[i].Payload
		c.logLevel, c.logID, c.logDepth = t.logLevel, t.logID, t.logDepth
		if c.logDepth > 0 {
			c.logDepth--
		}
		c.fut, c.idx, c.ctx = f, i, &f.ctx
	}
	return f
}

// addFuture registers f with its owner. Called with mu held.
func (w *worker) addFuture(f *future) {
	w.nextFuture++
	f.id = w.nextFuture
	w.futures[f.id] = f
	f.owner.futures = append(f.owner.futures, f)
}

// lookup returns the future of t called id.
func (w *worker) lookup(t *task, kf kernels.Future) (*future, error) {
	f, ok := w.futures[kf.ID]
	if !ok || f.owner != t {
		return nil, fmt.Errorf("%w: %d", kernels.ErrUnknownFuture, kf.ID)
	}
	return f, nil
}

// block helps with queued work or parks t until f makes progress or ctx
// ends. Called with mu held; returns with mu held.
func (w *worker) block(t *task, f *future, ctx context.Context, next bool) error {
	w.handOffReading(t.turn)
	if batch := w.core.Help(t.depth); batch != nil {
		w.started(batch)
		w.mu.Unlock()
		w.runBatch(batch, t.depth+1)
		w.wakeWriter()
		return nil
	}
	f.waiting, f.next = true, next
	w.apply(w.core.Park())
	w.maybeLoad()
	w.mu.Unlock()
	var err error
	select {
	case <-f.wake:
	case <-ctx.Done():
		err = ctx.Err()
	}
	w.lock()
	f.waiting, f.next = false, false
	if !w.core.TakeToken() {
		ch := make(chan struct{})
		w.core.WaitToken(ch)
		w.mu.Unlock()
		<-ch
		w.lock()
	}
	return err
}

// taskRuntime is the kernels.Runtime a task's kernel sees.
type taskRuntime struct {
	w *worker
	t *task
}

var _ kernels.Runtime = (*taskRuntime)(nil)

func (r *taskRuntime) Submit(ctx context.Context, t kernels.Task) (kernels.Future, error) {
	return r.Map(ctx, []kernels.Task{t})
}

func (r *taskRuntime) Map(ctx context.Context, ts []kernels.Task) (kernels.Future, error) {
	if err := ctx.Err(); err != nil {
		return kernels.Future{}, err
	}
	w := r.w
	f := makeFuture(r.t, ts)
	w.lock()
	defer w.mu.Unlock()
	w.addFuture(f)
	for i := range f.tasks {
		w.core.Push(&f.tasks[i])
	}
	w.dispatch(false)
	w.maybeLoad()
	return kernels.Future{ID: f.id, N: len(ts)}, nil
}

func (r *taskRuntime) Wait(ctx context.Context, kf kernels.Future) ([][]byte, error) {
	w := r.w
	w.lock()
	defer w.mu.Unlock()
	f, err := w.lookup(r.t, kf)
	if err != nil {
		return nil, err
	}
	for !f.complete() && !f.cancelled {
		if err := w.block(r.t, f, ctx, false); err != nil {
			return nil, err
		}
	}
	if f.cancelled {
		return nil, kernels.ErrCancelled
	}
	f.waited = true
	for i, e := range f.errs {
		if e != nil {
			return nil, fmt.Errorf("child %d: %w", i, e)
		}
	}
	return f.vals, nil
}

func (r *taskRuntime) Next(ctx context.Context, kf kernels.Future) ([]kernels.Result, error) {
	w := r.w
	w.lock()
	defer w.mu.Unlock()
	f, err := w.lookup(r.t, kf)
	if err != nil {
		return nil, err
	}
	for {
		if f.waited || f.taken == len(f.tasks) {
			return nil, kernels.ErrNoMoreResults
		}
		if f.cancelled {
			return nil, kernels.ErrCancelled
		}
		if f.taken < len(f.arrived) {
			out := make([]kernels.Result, 0, len(f.arrived)-f.taken)
			for _, i := range f.arrived[f.taken:] {
				res := kernels.Result{Index: int(i), Value: f.vals[i]}
				if f.errs != nil {
					res.Err = f.errs[i]
				}
				out = append(out, res)
			}
			f.taken = len(f.arrived)
			return out, nil
		}
		if err := w.block(r.t, f, ctx, true); err != nil {
			return nil, err
		}
	}
}

func (r *taskRuntime) Cancel(kf kernels.Future) error {
	w := r.w
	w.lock()
	defer w.mu.Unlock()
	f, err := w.lookup(r.t, kf)
	if err != nil {
		return err
	}
	w.cancelFuture(f)
	return nil
}

func (r *taskRuntime) Cache() *kernels.Cache { return &r.w.cache }
func (r *taskRuntime) Rank() int             { return r.w.cfg.Rank }
func (r *taskRuntime) Host() string          { return r.w.cfg.Host }

func (r *taskRuntime) Logger() *slog.Logger {
	if r.t.logger == nil {
		r.t.logger = slog.New(&taskHandler{w: r.w, t: r.t})
	}
	return r.t.logger
}
