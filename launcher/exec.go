package launcher

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"

	"github.com/qlaunch/qlaunch/kernels"
	"github.com/qlaunch/qlaunch/kernels/futures"
	"github.com/qlaunch/qlaunch/launcher/executor"
	"github.com/qlaunch/qlaunch/launcher/wire"
)

// This file is the executor of a worker rank: its tasks, the futures of
// the kernels it runs, and the kernels.Runtime they see. The slot tokens,
// the run queue, the parked kernels and the policies (batches, helping,
// inline reading, load reports) are a pure core, package executor, whose
// effects this shell carries out (apply).
//
// # Who owns what
//
//   - worker.mu (the executor lock) guards the core, every task and
//     futures table, the maps of tasks from and to the parent, and the
//     pending batches (resultOut, submitOut, logOut, cancelOut). It is
//     taken by the rank's kernel goroutines (which call Submit, Map,
//     Wait, Next synchronously), its reader and its timers, rather than
//     the state being owned by a loop goroutine: a kernel calling Map or
//     Wait would otherwise pay two channel hand-offs and a goroutine
//     switch per call.
//   - A kernel's outcome, from its return until it is recorded, is owned
//     by the finished stack (worker.finished, lock-free): runBatch records
//     it at once if mu is free (TryLock), else pushes it, and whoever
//     takes mu next (lock) records it. So two slots running tiny tasks
//     side by side never queue on mu once per task, which on a loaded
//     machine turned every task into a futex sleep and wake-up.
//   - The frames to the parent are owned by a wire.Outbox: control frames
//     are put as they are made, batches when they are written (queueOut,
//     with mu held, so frames keep the order they were made in). Batches
//     are written by the rank's one flusher (worker.flushing, under mu):
//     the goroutine that produced them, for a few writes, then one of its
//     own (flush); while it writes, the others' results wait in the
//     pending batch for its next write.
//   - A cancelCtx is owned by its task or future; its Err is an atomic
//     read, since all children of a Map share one.
//
// Lock order: worker.mu, then wire.Outbox's lock (Put) or a cancelCtx's
// (cancel); neither of the latter is held while taking another lock, and
// no lock is held while writing to the socket (Outbox.Drain).
//
// Work is taken from the queue in batches, but each outcome is recorded
// as its kernel returns, and results are written after each batch or by
// the stream check (streamCheck, every streamPeriod while kernels run), so
// a result never waits for the rest of its batch.
//
// A goroutine holds a slot token while it runs a kernel. A kernel that
// must block in Wait or Next first runs queued tasks itself ("helping",
// at most executor.MaxHelpDepth nested), then gives its token back and
// parks; when its future is ready it takes a token again, ahead of queued
// tasks. So fork-join of any depth runs on one slot. The first batch of a
// submission that arrives alone runs in the goroutine that read it, which
// saves starting one (runInline in worker.go).

type taskState uint8

const (
	stateQueued taskState = iota
	stateRunning
	stateUp // handed to the parent to run elsewhere
	stateDone
)

// task is one task held by this worker rank: received from the parent
// (remote) or submitted by one of its own kernels (set != nil). A Map of
// tiny children allocates one per child, so its size is the cost of a
// nested task (224 bytes; TestTaskSize): on the tiny workload, 272 bytes
// (a cancelCtx in every task, an int depth) cost a tenth of the
// throughput of the build before, at 232 (BENCHMARKS.md).
type task struct {
	kernel   string
	args     []string
	payload  []byte
	logLevel int
	logDepth int // levels that still forward logs, this one included; <0 all

	state     taskState
	cancelled bool
	depth     int32 // helping depth of the goroutine running it

	set      *childSet // local: the children of one Map this task is one of
	idx      int
	remoteID uint64 // remote: the parent's id for it
	upID     uint64 // stateUp: our id for it at the parent
	logID    uint64 // parent-facing id its log records travel under

	// outcome of a kernel that returned, waiting on the finished stack
	outVal   []byte
	outErr   error
	nextDone *task

	// ctx: a remote task's own (beside it in its submit batch, onSubmit),
	// a child's its future's (childSet.ctx), so a child carries no
	// context of its own: cancelling a future cancels its children's.
	ctx    *cancelCtx
	turn   uint64 // the reader's batch it was run in (runInline), if any
	futs   *futureTable
	rt     taskRuntime
	logger *slog.Logger
}

// futureTable holds the futures a task's kernel created (package
// kernels/futures: one table per running task, made at its first Submit
// or Map); future is one of them.
type (
	futureTable = futures.Table[*childSet]
	future      = futures.Future[*childSet]
)

// childSet is the worker's own state of a future: its child tasks and the
// context they share. A child's result goes to fut.
type childSet struct {
	fut   *future
	tasks []task
	ctx   cancelCtx
}

// cancelled reports whether t is a child of a future that was cancelled.
func (t *task) futureCancelled() bool { return t.set != nil && t.set.fut.Cancelled() }

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
		w.flush(flushWrites)
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
	for i := 0; i < len(batch); {
		// One lookup of the kernel per task, for both ways to run it.
		k, ok := w.cfg.Registry.Lookup(batch[i].kernel)
		if ok && k.Batch != nil {
			if n := w.runKernelBatch(&k, batch[i:], depth); n > 0 {
				i += n
				continue
			}
		}
		o := w.run(batch[i], &k, ok, depth)
		i++
		if i < len(batch) && !w.mu.TryLock() {
			o.t.outVal, o.t.outErr = o.val, o.err
			w.pushFinished(o.t)
			continue
		}
		if i == len(batch) {
			w.mu.Lock()
		}
		w.recordFinished()
		w.finish(o.t, o.val, o.err)
		if i == len(batch) {
			return
		}
		w.mu.Unlock()
	}
	w.lock()
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

// run executes one task's kernel k, found if ok (mu not held). A task
// cancelled while queued is not started.
func (w *worker) run(t *task, k *kernels.Kernel, ok bool, depth int) (o outcome) {
	o.t = t
	if t.ctx.Err() != nil {
		o.err = kernels.ErrCancelled
		return o
	}
	if !ok {
		o.err = fmt.Errorf("%w %q", kernels.ErrUnknownKernel, t.kernel)
		return o
	}
	t.depth = int32(depth)
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
	if t.set != nil {
		w.kept++
	}
	w.complete(t, val, err)
}

// complete records the outcome of t, which ran here (finish) or at the
// parent (completeUp). Called with mu held.
func (w *worker) complete(t *task, val []byte, err error) {
	t.state = stateDone
	if t.futs != nil {
		// The futures its kernel left incomplete are cancelled.
		for f := range t.futs.Live() {
			if !f.Complete() {
				w.cancelFuture(t.futs, f)
			}
		}
		t.futs = nil
	}
	if t.cancelled || t.futureCancelled() {
		val, err = nil, kernels.ErrCancelled
	}
	if t.set != nil {
		t.set.fut.Deliver(t.idx, val, err)
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

// cancelFuture cancels f, a future of tbl, and its tasks and, through
// their own futures, their descendants. Called with mu held.
func (w *worker) cancelFuture(tbl *futureTable, f *future) {
	if f.Cancelled() {
		return
	}
	tbl.CancelFuture(f)
	w.stopChildren(f.Data)
}

// stopChildren cancels the tasks of a cancelled future. Called with mu
// held.
func (w *worker) stopChildren(cs *childSet) {
	cs.ctx.cancel()
	for i := range cs.tasks {
		w.cancelTask(&cs.tasks[i])
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
		if t.futs != nil {
			for g := range t.futs.Live() {
				w.cancelFuture(t.futs, g)
			}
		}
	}
	t.cancelled = true
	if t.set == nil {
		t.ctx.cancel() // a remote task's own; a child's is its future's
	}
}

// makeChildren builds the child tasks of a Map of ts by t. Called without
// mu: a large Map allocates its tasks outside the lock.
func makeChildren(t *task, ts []kernels.Task) *childSet {
	cs := &childSet{tasks: make([]task, len(ts))}
	for i := range ts {
		c := &cs.tasks[i]
		c.kernel, c.args, c.payload = ts[i].Kernel, ts[i].Args, ts[i].Payload
		c.logLevel, c.logID, c.logDepth = t.logLevel, t.logID, t.logDepth
		if c.logDepth > 0 {
			c.logDepth--
		}
		c.set, c.idx, c.ctx = cs, i, &cs.ctx
	}
	return cs
}

// table returns t's futures table, made at its first use. Called with mu
// held.
func (w *worker) table(t *task) *futureTable {
	if t.futs == nil {
		w.nextScope++
		tbl := futures.NewTable[*childSet](w.nextScope)
		t.futs = &tbl
	}
	return t.futs
}

// block is t's futures.Block: it helps with queued work, or parks t (its
// token given back) until woken fires or ctx ends. Called with mu held;
// returns with mu held.
func (w *worker) block(t *task, ctx context.Context, woken <-chan struct{}) error {
	w.handOffReading(t.turn)
	if batch := w.core.Help(int(t.depth)); batch != nil {
		w.started(batch)
		w.mu.Unlock()
		w.runBatch(batch, int(t.depth)+1)
		w.wakeWriter()
		return nil
	}
	w.apply(w.core.Park())
	w.maybeLoad()
	w.mu.Unlock()
	var err error
	select {
	case <-woken:
	case <-ctx.Done():
		err = ctx.Err()
	}
	w.lock()
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
	cs := makeChildren(r.t, ts)
	w.lock()
	defer w.mu.Unlock()
	f, err := w.table(r.t).New(len(ts))
	if err != nil {
		return kernels.Future{}, err
	}
	f.Data, cs.fut = cs, f
	for i := range cs.tasks {
		w.core.Push(&cs.tasks[i])
	}
	w.dispatch(false)
	w.maybeLoad()
	return f.Handle(), nil
}

// blockFn is the futures.Block of the task's kernel.
func (r *taskRuntime) blockFn() futures.Block {
	return func(ctx context.Context, woken <-chan struct{}) error { return r.w.block(r.t, ctx, woken) }
}

func (r *taskRuntime) Wait(ctx context.Context, kf kernels.Future) ([][]byte, error) {
	w := r.w
	w.lock()
	defer w.mu.Unlock()
	return w.table(r.t).Wait(ctx, kf, r.blockFn())
}

func (r *taskRuntime) Next(ctx context.Context, kf kernels.Future) ([]kernels.Result, error) {
	w := r.w
	w.lock()
	defer w.mu.Unlock()
	return w.table(r.t).Next(ctx, kf, r.blockFn())
}

func (r *taskRuntime) Cancel(kf kernels.Future) error {
	w := r.w
	w.lock()
	defer w.mu.Unlock()
	f, err := w.table(r.t).Cancel(kf)
	if f != nil {
		w.stopChildren(f.Data)
	}
	return err
}

// Futures is how many futures the task holds (futurestest.Counter).
func (r *taskRuntime) Futures() int {
	r.w.lock()
	defer r.w.mu.Unlock()
	if r.t.futs == nil {
		return 0
	}
	return r.t.futs.Len()
}

func (r *taskRuntime) Cache() *kernels.Cache { return &r.w.cache }
func (r *taskRuntime) Rank() int             { return r.w.cfg.Rank }
func (r *taskRuntime) Host() string          { return r.w.cfg.Host }

// LogLevel is the lowest level the task's Logger forwards, and whether it
// forwards any (taskHandler.Enabled): kernels that pass the level on (the
// python kernel, to its executors, per task) ask it without making a
// Logger.
func (r *taskRuntime) LogLevel() (slog.Level, bool) {
	return slog.Level(r.t.logLevel), r.t.logDepth != 0
}

func (r *taskRuntime) Logger() *slog.Logger {
	if r.t.logger == nil {
		r.t.logger = slog.New(&taskHandler{w: r.w, t: r.t})
	}
	return r.t.logger
}
