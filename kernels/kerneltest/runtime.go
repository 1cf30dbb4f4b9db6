package kerneltest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/qlaunch/qlaunch/kernels"
	"github.com/qlaunch/qlaunch/kernels/futures"
)

// Host is the host name every task of a Runtime sees.
const Host = "local"

var (
	// errTaskReturned is the cause given to the context of a task's
	// children when the task returns.
	errTaskReturned = errors.New("kerneltest: parent task returned")
	// errFutureDone is the cause given to a future's context once every
	// result is in; nothing is running under it by then.
	errFutureDone = errors.New("kerneltest: future complete")
)

// Option configures a Runtime.
type Option func(*config)

type config struct {
	logHandler slog.Handler
	onResult   func(kernels.Task, kernels.Result)
}

// WithLogHandler sends the records kernels log through Runtime.Logger to h.
func WithLogHandler(h slog.Handler) Option {
	return func(c *config) { c.logHandler = h }
}

// WithResultHook calls fn each time a child task's result has been
// recorded in its future, from the goroutine that ran the child. Tests use
// it to know that a result is in before calling Next.
func WithResultHook(fn func(t kernels.Task, r kernels.Result)) Option {
	return func(c *config) { c.onResult = fn }
}

// Stats are counters of a Runtime since New.
type Stats struct {
	Tasks      int64 // kernels started, root tasks included
	MaxRunning int   // most kernels holding a slot at one time
}

// Runtime runs kernels of a registry in-process on a bounded number of
// slots. It is safe for concurrent use: several Run calls may share it.
type Runtime struct {
	reg      *kernels.Registry
	cache    kernels.Cache
	logger   *slog.Logger
	onResult func(kernels.Task, kernels.Result)

	nextID atomic.Uint64
	tasks  atomic.Int64

	// mu guards the slots. A slot given back goes first to a waiter (a
	// kernel back from Wait or Next, or a root task), then to the oldest
	// child task ready to start, which gets a goroutine only then.
	mu         sync.Mutex
	free       int
	running    int
	maxRunning int
	waiters    []*waiter
	ready      []*child
	readyHead  int
}

// waiter is a goroutine waiting for a slot.
type waiter struct {
	granted bool          // set under Runtime.mu when the slot is handed over
	ch      chan struct{} // closed once granted
}

// child is a task of a future waiting for a slot to start.
type child struct {
	fctx   context.Context
	wg     *sync.WaitGroup
	parent *task
	f      *future
	i      int
	t      kernels.Task
}

// New returns a Runtime running the kernels of reg on slots slots. It
// panics when slots is below 1.
func New(reg *kernels.Registry, slots int, opts ...Option) *Runtime {
	if slots < 1 {
		panic(fmt.Sprintf("kerneltest: %d slots: need at least 1", slots))
	}
	var c config
	for _, o := range opts {
		o(&c)
	}
	h := c.logHandler
	if h == nil {
		h = slog.DiscardHandler
	}
	return &Runtime{
		reg:      reg,
		free:     slots,
		logger:   slog.New(h),
		onResult: c.onResult,
	}
}

// Stats returns the counters so far.
func (r *Runtime) Stats() Stats {
	r.mu.Lock()
	defer r.mu.Unlock()
	return Stats{Tasks: r.tasks.Load(), MaxRunning: r.maxRunning}
}

// Cache returns the cache every task of r shares.
func (r *Runtime) Cache() *kernels.Cache { return &r.cache }

// Run runs t as a root task and returns its result. It returns once t and
// every task started under it have finished. Cancelling ctx cancels t and
// its descendants.
func (r *Runtime) Run(ctx context.Context, t kernels.Task) ([]byte, error) {
	k, ok := r.reg.Lookup(t.Kernel)
	if !ok {
		return nil, fmt.Errorf("kerneltest: %w %q", kernels.ErrUnknownKernel, t.Kernel)
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	if err := r.acquire(ctx); err != nil {
		return nil, err
	}
	defer r.release()
	return r.runKernel(ctx, &wg, k, cloneTask(t))
}

// acquire takes a slot, or returns the cause of ctx's end.
func (r *Runtime) acquire(ctx context.Context) error {
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	w := r.enqueueWaiter()
	if w == nil {
		return nil
	}
	select {
	case <-w.ch:
		return nil
	case <-ctx.Done():
	}
	r.mu.Lock()
	if w.granted {
		r.mu.Unlock()
		r.release()
	} else {
		r.waiters = slices.DeleteFunc(r.waiters, func(x *waiter) bool { return x == w })
		r.mu.Unlock()
	}
	return context.Cause(ctx)
}

// reacquire takes a slot back for a kernel returning from Wait or Next;
// the kernel is running again, whatever its context says.
func (r *Runtime) reacquire() {
	if w := r.enqueueWaiter(); w != nil {
		<-w.ch
	}
}

// enqueueWaiter takes a free slot and returns nil, or queues a waiter
// for the next slot given back.
func (r *Runtime) enqueueWaiter() *waiter {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.free > 0 {
		r.free--
		r.grantLocked()
		return nil
	}
	w := &waiter{ch: make(chan struct{})}
	r.waiters = append(r.waiters, w)
	return w
}

// grantLocked counts one more running kernel.
func (r *Runtime) grantLocked() {
	r.running++
	r.maxRunning = max(r.maxRunning, r.running)
}

// release gives a slot back: to the first waiter, else to the oldest
// ready child, else to the free pool.
func (r *Runtime) release() {
	r.mu.Lock()
	r.running--
	if len(r.waiters) > 0 {
		w := r.waiters[0]
		r.waiters[0] = nil
		r.waiters = r.waiters[1:]
		w.granted = true
		r.grantLocked()
		r.mu.Unlock()
		close(w.ch)
		return
	}
	if c := r.popReadyLocked(); c != nil {
		r.grantLocked()
		r.mu.Unlock()
		go r.runChild(c)
		return
	}
	r.free++
	r.mu.Unlock()
}

func (r *Runtime) popReadyLocked() *child {
	if r.readyHead == len(r.ready) {
		return nil
	}
	c := r.ready[r.readyHead]
	r.ready[r.readyHead] = nil
	r.readyHead++
	if r.readyHead == len(r.ready) {
		r.ready, r.readyHead = r.ready[:0], 0
	}
	return c
}

// start starts the children cs, each on its own goroutine once it has a
// slot.
func (r *Runtime) start(cs []*child) {
	n := 0
	r.mu.Lock()
	for ; n < len(cs) && r.free > 0; n++ {
		r.free--
		r.grantLocked()
	}
	if n < len(cs) {
		if r.readyHead > 0 && len(r.ready) == cap(r.ready) {
			// Compact before growing.
			m := copy(r.ready, r.ready[r.readyHead:])
			clear(r.ready[m:])
			r.ready, r.readyHead = r.ready[:m], 0
		}
		r.ready = append(r.ready, cs[n:]...)
	}
	r.mu.Unlock()
	for _, c := range cs[:n] {
		go r.runChild(c)
	}
}

// runKernel runs k on the calling goroutine, which holds a slot. Children
// the kernel leaves behind are cancelled when it returns.
func (r *Runtime) runKernel(parent context.Context, wg *sync.WaitGroup, k kernels.Kernel, t kernels.Task) (out []byte, err error) {
	ctx, cancel := context.WithCancelCause(parent)
	defer cancel(errTaskReturned)
	id := r.nextID.Add(1)
	tk := &task{
		rt:      r,
		wg:      wg,
		ctx:     ctx,
		id:      id,
		kernel:  k.Name,
		futures: futures.NewTable[futureData](uint32(id)),
	}
	r.tasks.Add(1)
	defer func() {
		if p := recover(); p != nil {
			out, err = nil, fmt.Errorf("kerneltest: kernel %s panicked: %v\n%s", k.Name, p, debug.Stack())
		}
	}()
	return k.Func(ctx, tk, t.Args, t.Payload)
}

// runChild runs a child on its own goroutine, which holds a slot, and
// records the result.
func (r *Runtime) runChild(c *child) {
	defer c.wg.Done()
	res := kernels.Result{Index: c.i}
	if k, ok := r.reg.Lookup(c.t.Kernel); !ok {
		res.Err = fmt.Errorf("kerneltest: %w %q", kernels.ErrUnknownKernel, c.t.Kernel)
	} else if c.fctx.Err() != nil {
		res.Err = context.Cause(c.fctx)
	} else {
		res.Value, res.Err = r.runKernel(c.fctx, c.wg, k, c.t)
	}
	r.release()
	c.parent.deliver(c.f, res)
	if r.onResult != nil {
		r.onResult(c.t, res)
	}
}

func cloneTask(t kernels.Task) kernels.Task {
	return kernels.Task{Kernel: t.Kernel, Args: slices.Clone(t.Args), Payload: bytes.Clone(t.Payload)}
}

// task is the kernels.Runtime one running kernel sees.
type task struct {
	rt     *Runtime
	wg     *sync.WaitGroup
	ctx    context.Context // the task's own context, parent of its futures'
	id     uint64
	kernel string

	// mu guards the task's futures, which its children deliver to.
	mu      sync.Mutex
	futures futures.Table[futureData]

	// slotMu serialises giving the slot back and taking it again when
	// several goroutines of one kernel block at once; blocked counts them.
	slotMu  sync.Mutex
	blocked int
}

// futureData is what a Runtime keeps of a future beside its results: the
// cancel function of the context its tasks run under.
type futureData struct {
	cancel context.CancelCauseFunc
}

type future = futures.Future[futureData]

var _ kernels.Runtime = (*task)(nil)

func (tk *task) Submit(ctx context.Context, t kernels.Task) (kernels.Future, error) {
	return tk.Map(ctx, []kernels.Task{t})
}

func (tk *task) Map(ctx context.Context, ts []kernels.Task) (kernels.Future, error) {
	if err := ctx.Err(); err != nil {
		return kernels.Future{}, context.Cause(ctx)
	}
	if err := tk.ctx.Err(); err != nil {
		return kernels.Future{}, context.Cause(tk.ctx)
	}
	tk.mu.Lock()
	f, err := tk.futures.New(len(ts))
	tk.mu.Unlock()
	if err != nil {
		return kernels.Future{}, err
	}
	fctx, cancel := context.WithCancelCause(tk.ctx)
	f.Data.cancel = cancel
	if len(ts) == 0 {
		cancel(errFutureDone)
	}
	cs := make([]*child, len(ts))
	for i, t := range ts {
		cs[i] = &child{fctx: fctx, wg: tk.wg, parent: tk, f: f, i: i, t: cloneTask(t)}
	}
	tk.wg.Add(len(cs))
	tk.rt.start(cs)
	return f.Handle(), nil
}

// Futures returns the number of futures the task holds: issued, and not
// yet drained or cancelled.
func (tk *task) Futures() int {
	tk.mu.Lock()
	defer tk.mu.Unlock()
	return tk.futures.Len()
}

// block gives the task's slot back before it waits.
func (tk *task) block() {
	tk.slotMu.Lock()
	tk.blocked++
	if tk.blocked == 1 {
		tk.rt.release()
	}
	tk.slotMu.Unlock()
}

// unblock takes a slot again after a wait.
func (tk *task) unblock() {
	tk.slotMu.Lock()
	tk.blocked--
	if tk.blocked == 0 {
		tk.rt.reacquire()
	}
	tk.slotMu.Unlock()
}

// waiter returns the futures.Block of one Wait or Next: it gives the
// slot back before it first waits (blocked says so, for the caller to
// take it again), with tk.mu released.
func (tk *task) waiter(blocked *bool) futures.Block {
	return func(ctx context.Context, woken <-chan struct{}) error {
		tk.mu.Unlock()
		defer tk.mu.Lock()
		if !*blocked {
			tk.block()
			*blocked = true
		}
		select {
		case <-woken:
			return nil
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	}
}

func (tk *task) Wait(ctx context.Context, fut kernels.Future) ([][]byte, error) {
	blocked := false
	tk.mu.Lock()
	vs, err := tk.futures.Wait(ctx, fut, tk.waiter(&blocked))
	tk.mu.Unlock()
	if blocked {
		tk.unblock()
	}
	return vs, err
}

func (tk *task) Next(ctx context.Context, fut kernels.Future) ([]kernels.Result, error) {
	blocked := false
	tk.mu.Lock()
	rs, err := tk.futures.Next(ctx, fut, tk.waiter(&blocked))
	tk.mu.Unlock()
	if blocked {
		tk.unblock()
	}
	return rs, err
}

func (tk *task) Cancel(fut kernels.Future) error {
	tk.mu.Lock()
	f, err := tk.futures.Cancel(fut)
	tk.mu.Unlock()
	if f != nil {
		f.Data.cancel(kernels.ErrCancelled)
	}
	return err
}

// deliver records a child's result in its parent's future.
func (tk *task) deliver(f *future, res kernels.Result) {
	tk.mu.Lock()
	f.Deliver(res.Index, res.Value, res.Err)
	done := f.Complete()
	tk.mu.Unlock()
	if done {
		f.Data.cancel(errFutureDone)
	}
}

func (tk *task) Cache() *kernels.Cache { return &tk.rt.cache }

func (tk *task) Logger() *slog.Logger {
	return tk.rt.logger.With("task", tk.id, "kernel", tk.kernel, "rank", 0, "host", Host)
}

func (tk *task) Rank() int    { return 0 }
func (tk *task) Host() string { return Host }
