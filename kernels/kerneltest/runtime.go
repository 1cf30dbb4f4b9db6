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
	fctx context.Context
	wg   *sync.WaitGroup
	f    *future
	i    int
	t    kernels.Task
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
	tk := &task{
		rt:      r,
		wg:      wg,
		ctx:     ctx,
		id:      r.nextID.Add(1),
		kernel:  k.Name,
		futures: make(map[uint64]*future),
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
	c.f.deliver(res)
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

	mu      sync.Mutex
	futures map[uint64]*future

	// slotMu serialises giving the slot back and taking it again when
	// several goroutines of one kernel block at once; blocked counts them.
	slotMu  sync.Mutex
	blocked int
}

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
	fctx, cancel := context.WithCancelCause(tk.ctx)
	f := &future{
		id:      tk.rt.nextID.Add(1),
		n:       len(ts),
		cancel:  cancel,
		results: make([]kernels.Result, len(ts)),
	}
	if f.n == 0 {
		cancel(errFutureDone)
	}
	tk.mu.Lock()
	tk.futures[f.id] = f
	tk.mu.Unlock()
	cs := make([]*child, len(ts))
	for i, t := range ts {
		cs[i] = &child{fctx: fctx, wg: tk.wg, f: f, i: i, t: cloneTask(t)}
	}
	tk.wg.Add(len(cs))
	tk.rt.start(cs)
	return kernels.Future{ID: f.id, N: f.n}, nil
}

func (tk *task) lookup(fut kernels.Future) (*future, error) {
	tk.mu.Lock()
	f := tk.futures[fut.ID]
	tk.mu.Unlock()
	if f == nil || f.n != fut.N {
		return nil, fmt.Errorf("kerneltest: future %d: %w", fut.ID, kernels.ErrUnknownFuture)
	}
	return f, nil
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

func (tk *task) Wait(ctx context.Context, fut kernels.Future) ([][]byte, error) {
	f, err := tk.lookup(fut)
	if err != nil {
		return nil, err
	}
	blocked := false
	defer func() {
		if blocked {
			tk.unblock()
		}
	}()
	for {
		f.mu.Lock()
		if f.cancelled {
			f.mu.Unlock()
			return nil, kernels.ErrCancelled
		}
		if f.arrived == f.n {
			f.taken, f.pending = f.n, nil
			values := make([][]byte, f.n)
			var first error
			for i, r := range f.results {
				if r.Err != nil {
					first = r.Err
					break
				}
				values[i] = r.Value
			}
			f.mu.Unlock()
			if first != nil {
				return nil, first
			}
			return values, nil
		}
		wake := f.wakeLocked()
		f.mu.Unlock()
		if !blocked {
			tk.block()
			blocked = true
		}
		select {
		case <-wake:
		case <-ctx.Done():
			return nil, context.Cause(ctx)
		}
	}
}

func (tk *task) Next(ctx context.Context, fut kernels.Future) ([]kernels.Result, error) {
	f, err := tk.lookup(fut)
	if err != nil {
		return nil, err
	}
	blocked := false
	defer func() {
		if blocked {
			tk.unblock()
		}
	}()
	for {
		f.mu.Lock()
		if f.cancelled {
			f.mu.Unlock()
			return nil, kernels.ErrCancelled
		}
		if f.taken == f.n {
			f.mu.Unlock()
			return nil, kernels.ErrNoMoreResults
		}
		if len(f.pending) > 0 {
			out := make([]kernels.Result, len(f.pending))
			for j, i := range f.pending {
				out[j] = f.results[i]
			}
			f.taken += len(f.pending)
			f.pending = f.pending[:0]
			f.mu.Unlock()
			return out, nil
		}
		wake := f.wakeLocked()
		f.mu.Unlock()
		if !blocked {
			tk.block()
			blocked = true
		}
		select {
		case <-wake:
		case <-ctx.Done():
			return nil, context.Cause(ctx)
		}
	}
}

func (tk *task) Cancel(fut kernels.Future) error {
	f, err := tk.lookup(fut)
	if err != nil {
		return err
	}
	f.mu.Lock()
	f.cancelled = true
	f.wakeAllLocked()
	f.mu.Unlock()
	f.cancel(kernels.ErrCancelled)
	return nil
}

func (tk *task) Cache() *kernels.Cache { return &tk.rt.cache }

func (tk *task) Logger() *slog.Logger {
	return tk.rt.logger.With("task", tk.id, "kernel", tk.kernel, "rank", 0, "host", Host)
}

func (tk *task) Rank() int    { return 0 }
func (tk *task) Host() string { return Host }

// future holds the results of one Submit or Map.
type future struct {
	id     uint64
	n      int
	cancel context.CancelCauseFunc

	mu        sync.Mutex
	results   []kernels.Result
	arrived   int
	pending   []int // indexes in, not yet taken by Next, in arrival order
	taken     int
	cancelled bool
	wake      chan struct{} // closed on the next change; nil when nobody waits
}

// wakeLocked returns a channel closed at the next change of f.
func (f *future) wakeLocked() chan struct{} {
	if f.wake == nil {
		f.wake = make(chan struct{})
	}
	return f.wake
}

func (f *future) wakeAllLocked() {
	if f.wake != nil {
		close(f.wake)
		f.wake = nil
	}
}

func (f *future) deliver(res kernels.Result) {
	f.mu.Lock()
	f.results[res.Index] = res
	f.arrived++
	f.pending = append(f.pending, res.Index)
	f.wakeAllLocked()
	done := f.arrived == f.n
	f.mu.Unlock()
	if done {
		f.cancel(errFutureDone)
	}
}
