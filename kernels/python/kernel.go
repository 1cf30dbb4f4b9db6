package python

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"strings"
	"sync"
	"time"

	"github.com/qlaunch/qlaunch/kernels"
)

// Name is the kernel's registered name.
const Name = "python"

// RetryName is the name of the same kernel marked retryable: the Python
// client sends a function wrapped in qlaunch.retryable under it, so that a
// task lost with its worker rank is placed again (the user vouches that
// running it twice is safe). Its in-task children are plain python tasks.
const RetryName = "python-retry"

// Options configure the kernel.
type Options struct {
	// Python is the interpreter to run; empty means $QLAUNCH_PYTHON (the
	// topology's [python] interpreter), else
	// /usr/bin/python3 when it exists, else python3 on PATH.
	Python string
	// Getenv reads the rank's environment (os.Getenv); nil reads nothing.
	Getenv func(string) string
	// Environ returns the environment executors start with (os.Environ);
	// the BLAS thread variables are added where missing. It is called when
	// the first executor starts, so it sees what the rank set up after the
	// kernel was made (a bootstrap's per-rank environment). Nil: empty.
	Environ func() []string
}

// Kernel returns the python kernel with a pool of its own: its executors
// start on first use and stop when the worker rank exits (their pipes
// close; a rank killed -9 takes them with it).
func Kernel(o Options) kernels.Kernel { return NewPool(o).Kernel() }

// Kernels returns the python kernel and its retryable twin (RetryName),
// sharing one pool of executors.
func Kernels(o Options) []kernels.Kernel {
	p := NewPool(o)
	return []kernels.Kernel{p.Kernel(), p.RetryableKernel()}
}

// RetryableKernel returns the python kernel marked retryable, named
// RetryName, running on p's executors.
func (p *Pool) RetryableKernel() kernels.Kernel {
	k := p.Kernel()
	k.Name, k.Retryable = RetryName, true
	k.Doc = "run a pickled Python function marked qlaunch.retryable: placed again when its worker rank is lost"
	return k
}

// Kernel returns the python kernel running on p's executors.
func (p *Pool) Kernel() kernels.Kernel {
	return kernels.Kernel{
		Name:  Name,
		Func:  p.run,
		Batch: p.runBatch,
		Warm:  p.Warm,
		Usage: "PYTHONPATH (tasks are built by the Python package qlaunch)",
		Doc:   "run a pickled Python function in a warm interpreter (python/qlaunch)",
	}
}

// message is one message of an executor, as its reader hands it on.
type message struct {
	typ  byte
	id   uint64
	body []byte
}

// inbox holds the messages of a batch's executor until its kernel goroutine
// takes them. It is unbounded, so the executor's reader never waits on a
// batch (one in Wait while the executor runs its children, say).
type inbox struct {
	mu     sync.Mutex
	msgs   []message
	closed bool
	wake   chan struct{} // a token when msgs or closed changed
}

func (b *inbox) put(m message) {
	b.mu.Lock()
	b.msgs = append(b.msgs, m)
	b.mu.Unlock()
	b.signal()
}

func (b *inbox) close() {
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()
	b.signal()
}

func (b *inbox) signal() {
	select {
	case b.wake <- struct{}{}:
	default:
	}
}

// take returns the messages in and whether the executor died.
func (b *inbox) take() ([]message, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	ms := b.msgs
	b.msgs = nil
	return ms, b.closed
}

type childFuture struct {
	f   kernels.Future
	err error
}

// task is one call of a batch.
type task struct {
	call     kernels.Call
	path     string
	futures  map[uint32]*childFuture
	reported bool
	orphan   bool // cancelled while its Python code may run: its done message is awaited
}

// batch is the tasks one kernel goroutine runs on one executor (one task
// for Func, many for Batch); it is owned by that goroutine. Its tasks have
// the ids base, base+1, …; base+len(tasks) is its sync id: the executor
// echoes a sync message once it has handled every message before it, so
// the batch knows when the executor runs none of its Python code (busy
// false). Waits of its tasks are served only then, one at a time, as Func
// would serve them in sequence: the executor is suspended, its slot given
// back, only while it is idle.
type batch struct {
	p      *Pool
	ex     *executor
	base   uint64
	tasks  []task
	in     inbox
	report func(i int, val []byte, err error)
	left   int       // tasks not yet reported
	busy   bool      // a sync is outstanding
	waits  []message // wait and next requests not yet served, in order
	// orphans counts orphaned tasks whose done message has not come.
	orphans int
	shared  bool // every task has the same context
}

func (b *batch) syncID() uint64 { return b.base + uint64(len(b.tasks)) }

// run is the kernel's Func: a batch of one.
func (p *Pool) run(ctx context.Context, rt kernels.Runtime, args []string, payload []byte) (out []byte, err error) {
	p.runBatch([]kernels.Call{{Ctx: ctx, Runtime: rt, Args: args, Payload: payload}}, func(_ int, v []byte, e error) {
		out, err = v, e
	})
	return out, err
}

// cancelPoll is how often a batch of tasks with different contexts looks
// for cancelled ones while its executor runs their code (a single context
// is watched directly).
const cancelPoll = 20 * time.Millisecond

// runBatch is the kernel's Batch: it sends every call to one executor in
// one write, followed by a sync, and serves the calls' requests.
func (p *Pool) runBatch(calls []kernels.Call, report func(int, []byte, error)) {
	b := &batch{p: p, tasks: make([]task, len(calls)), report: report, left: len(calls),
		in: inbox{wake: make(chan struct{}, 1)}}
	for i, c := range calls {
		b.tasks[i].call = c
		if len(c.Args) > 0 {
			b.tasks[i].path = c.Args[0]
		}
	}
	ex, err := p.acquire(b.tasks[0].path)
	if err != nil {
		b.failAll(err)
		return
	}
	b.ex, b.base = ex, p.nextTasks(len(calls)+1)
	if !ex.register(b) {
		p.release(ex)
		b.failAll(ex.deadErr())
		return
	}
	defer func() {
		if !ex.unregister(b) {
			p.release(ex)
		}
	}()
	if err := ex.sendRuns(b); err != nil {
		b.failAll(err)
		return
	}
	b.busy = true
	// One context shared by every call (a map's children share their
	// future's) is watched directly; several are polled.
	var done <-chan struct{}
	var poll *time.Timer
	shared := true
	for _, c := range calls[1:] {
		if c.Ctx != calls[0].Ctx {
			shared = false
			break
		}
	}
	if shared {
		done = calls[0].Ctx.Done()
	} else {
		poll = time.NewTimer(cancelPoll)
		defer poll.Stop()
	}
	var pollC <-chan time.Time
	if poll != nil {
		pollC = poll.C
	}
	b.shared = shared
	for b.left > 0 {
		ms, closed := b.in.take()
		for _, m := range ms {
			b.handle(m)
		}
		if b.left == 0 {
			break
		}
		if closed {
			b.failAll(ex.deadErr())
			break
		}
		if !b.busy && len(b.waits) > 0 {
			m := b.waits[0]
			b.waits = b.waits[1:]
			b.serveWait(m)
			continue
		}
		select {
		case <-b.in.wake:
		case <-done:
			b.cancelEnded()
		case <-pollC:
			b.cancelEnded()
			poll.Reset(cancelPoll)
		}
	}
}

// failAll reports err for every task not yet reported.
func (b *batch) failAll(err error) {
	for i := range b.tasks {
		b.finish(i, nil, err)
	}
}

// finish reports task i once.
func (b *batch) finish(i int, val []byte, err error) {
	t := &b.tasks[i]
	if t.reported {
		return
	}
	t.reported = true
	b.left--
	b.report(i, val, err)
}

// cancelEnded drops the tasks whose context ended. One whose Python code
// may be running (the executor is busy) becomes an orphan: the executor
// stays counted as running until it acknowledges, so no other task queues
// behind it; a suspended one is dropped at once.
func (b *batch) cancelEnded() {
	for i := range b.tasks {
		t := &b.tasks[i]
		if t.reported || t.call.Ctx.Err() == nil {
			continue
		}
		_ = b.ex.send(appendMsg(nil, msgCancelTask, b.base+uint64(i)), "")
		if b.busy {
			t.orphan = true
			b.orphans++
		}
		b.finish(i, nil, context.Cause(t.call.Ctx))
	}
}

// handle acts on one message of the batch's executor; waits are queued
// for the loop to serve once the executor is idle.
func (b *batch) handle(m message) {
	if m.id == b.syncID() {
		if m.typ == msgSync {
			b.busy = false
		}
		return
	}
	i := int(m.id - b.base)
	t := &b.tasks[i]
	if m.typ == msgDone && t.orphan {
		t.orphan = false
		b.orphans--
	}
	if t.reported {
		return // a late message of a cancelled task
	}
	ctx, rt := t.call.Ctx, t.call.Runtime
	switch m.typ {
	case msgDone:
		switch {
		case len(m.body) == 0:
			b.finish(i, nil, errShort)
		case m.body[0] == 0:
			b.finish(i, m.body[1:], nil) // the reader's copy, ours alone
		default:
			b.finish(i, nil, errors.New(string(m.body[1:])))
		}
	case msgMap, msgMapRetry, msgMapFn, msgMapFnRetry:
		var fid uint32
		var payloads [][]byte
		var err error
		if m.typ == msgMapFn || m.typ == msgMapFnRetry {
			fid, payloads, err = decodeMapFn(m.body)
		} else {
			var rest []byte
			if fid, rest, err = cutU32(m.body); err == nil {
				payloads, err = decodeChunks(rest)
			}
		}
		if err != nil {
			b.finish(i, nil, err)
			return
		}
		ts := make([]kernels.Task, len(payloads))
		args := []string{t.path}
		kernel := Name
		if m.typ == msgMapRetry || m.typ == msgMapFnRetry {
			kernel = RetryName
		}
		for j, pl := range payloads {
			ts[j] = kernels.Task{Kernel: kernel, Args: args, Payload: pl}
		}
		if t.futures == nil {
			t.futures = make(map[uint32]*childFuture)
		}
		f, err := rt.Map(ctx, ts)
		t.futures[fid] = &childFuture{f: f, err: err}
	case msgWait, msgNext:
		b.waits = append(b.waits, m)
	case msgCancel:
		fid, _, err := cutU32(m.body)
		if err != nil {
			b.finish(i, nil, err)
			return
		}
		if cf := t.futures[fid]; cf != nil && cf.err == nil {
			_ = rt.Cancel(cf.f)
		}
	case msgLog:
		logRecord(ctx, rt.Logger(), m.body)
	default:
		b.finish(i, nil, fmt.Errorf("python executor: unexpected message type %d", m.typ))
	}
}

// waitContext returns the context task i's wait is served under: its own,
// ended too when another unreported task's context ends, so that a
// cancellation is not held up by a wait of its batch.
func (b *batch) waitContext(i int) (context.Context, func()) {
	ctx := b.tasks[i].call.Ctx
	if b.shared {
		return ctx, func() {}
	}
	var cases []reflect.SelectCase
	for j := range b.tasks {
		if t := &b.tasks[j]; j != i && !t.reported {
			cases = append(cases, reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(t.call.Ctx.Done())})
		}
	}
	if len(cases) == 0 {
		return ctx, func() {}
	}
	wctx, cancel := context.WithCancel(ctx)
	stop := make(chan struct{})
	cases = append(cases, reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(stop)})
	done := make(chan struct{})
	go func() {
		defer close(done)
		if chosen, _, _ := reflect.Select(cases); chosen != len(cases)-1 {
			cancel()
		}
	}()
	return wctx, func() {
		close(stop)
		<-done
		cancel()
	}
}

// serveWait serves one wait or next request of a task, with the executor
// idle: its slot is given back while the runtime waits. A blocking wait (a
// plain task's result()) also marks the executor blocked meanwhile, so
// that no other task is given to it.
func (b *batch) serveWait(m message) {
	i := int(m.id - b.base)
	t := &b.tasks[i]
	if t.reported {
		return
	}
	ctx, rt := t.call.Ctx, t.call.Runtime
	fid, blocking, err := decodeWait(m.body)
	if err != nil {
		b.finish(i, nil, err)
		return
	}
	cf := t.futures[fid]
	var reply []byte
	switch {
	case cf == nil:
		reply = appendErrReply(nil, replyError, fmt.Sprintf("unknown future %d", fid))
	case cf.err != nil:
		reply = appendErrReply(nil, replyError, cf.err.Error())
	default:
		wctx, stop := b.waitContext(i)
		b.p.suspendWait(b.ex, blocking)
		var err error
		if m.typ == msgWait {
			var vals [][]byte
			vals, err = rt.Wait(wctx, cf.f)
			reply = waitReply(vals, where(rt, err))
		} else {
			var rs []kernels.Result
			rs, err = rt.Next(wctx, cf.f)
			reply = nextReply(rt, rs, where(rt, err))
		}
		b.p.resumeWait(b.ex, blocking)
		other := err != nil && wctx.Err() != nil && ctx.Err() == nil
		stop()
		if other {
			// Another task of the batch was cancelled: report it, and
			// serve this wait again.
			b.waits = append([]message{m}, b.waits...)
			b.cancelEnded()
			return
		}
	}
	if ctx.Err() != nil {
		// The task is suspended in Python: drop it there.
		_ = b.ex.send(appendMsg(nil, msgCancelTask, m.id), "")
		b.finish(i, nil, context.Cause(ctx))
		return
	}
	msg := appendMsg(nil, msgResume, m.id, reply)
	msg = appendMsg(msg, msgSync, b.syncID())
	if err := b.ex.send(msg, ""); err != nil {
		b.finish(i, nil, err)
		return
	}
	b.busy = true
}

// where names the rank and host a child ran on in its error: the runtime
// gives the errors of children run on other ranks as *kernels.TaskError,
// which name them, and those of children run on this rank as their
// kernel returned them (a Python traceback, an executor's death).
func where(rt kernels.Runtime, err error) error {
	var te *kernels.TaskError
	if err == nil || errors.As(err, &te) || errors.Is(err, kernels.ErrCancelled) ||
		errors.Is(err, kernels.ErrNoMoreResults) || errors.Is(err, context.Canceled) ||
		errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return &kernels.TaskError{Kernel: Name, Rank: rt.Rank(), Host: rt.Host(), Message: err.Error()}
}

func waitReply(vals [][]byte, err error) []byte {
	if err != nil {
		return errReply(err)
	}
	return appendWaitReply(nil, vals)
}

func errReply(err error) []byte {
	if errors.Is(err, kernels.ErrNoMoreResults) {
		return appendErrReply(nil, replyNoMore, err.Error())
	}
	if errors.Is(err, kernels.ErrCancelled) {
		return appendErrReply(nil, replyCancelled, err.Error())
	}
	return appendErrReply(nil, replyError, err.Error())
}

// nextReply encodes results: count | (index uint32 | ok byte | chunk)…
func nextReply(rt kernels.Runtime, rs []kernels.Result, err error) []byte {
	if err != nil {
		return errReply(err)
	}
	b := []byte{replyOK}
	b = appendU32(b, len(rs))
	for _, r := range rs {
		b = appendU32(b, r.Index)
		if r.Err != nil {
			b = append(b, 1)
			b = appendChunk(b, []byte(where(rt, r.Err).Error()))
			continue
		}
		b = append(b, 0)
		b = appendChunk(b, r.Value)
	}
	return b
}

// Python's logging levels, and the slog levels they travel as.
var pyLevels = [...]struct {
	py   int8
	slog slog.Level
}{{10, slog.LevelDebug}, {20, slog.LevelInfo}, {30, slog.LevelWarn}, {40, slog.LevelError}}

// logLeveler is a kernels.Runtime that says the lowest level its Logger
// forwards, and whether it forwards any (the launcher's does): asking it
// spares a Logger per task (two allocations) that a task which logs
// nothing never uses.
type logLeveler interface {
	LogLevel() (slog.Level, bool)
}

// minLogLevel returns the lowest Python level the task's logger forwards
// (127 when none).
func minLogLevel(ctx context.Context, rt kernels.Runtime) int8 {
	if ll, ok := rt.(logLeveler); ok {
		lowest, on := ll.LogLevel()
		for _, lv := range pyLevels {
			if on && lv.slog >= lowest {
				return lv.py
			}
		}
		return 127
	}
	l := rt.Logger()
	for _, lv := range pyLevels {
		if l.Enabled(ctx, lv.slog) {
			return lv.py
		}
	}
	return 127
}

// logRecord forwards one record of a task's Python logging.
func logRecord(ctx context.Context, l *slog.Logger, b []byte) {
	lvl, b, err := cutU32(b)
	if err != nil {
		return
	}
	parts, err := decodeChunks(b)
	if err != nil || len(parts) == 0 {
		return
	}
	attrs := make([]any, 0, len(parts)-1)
	for i := 1; i+1 < len(parts); i += 2 {
		attrs = append(attrs, slog.String(string(parts[i]), string(parts[i+1])))
	}
	l.Log(ctx, slog.Level(int32(lvl)), string(parts[0]), attrs...)
}

// Pool is the executors of one worker rank.
type Pool struct {
	o       Options
	python  string
	environ []string

	mu       sync.Mutex
	started  *sync.Cond // broadcast when a warm start ends
	execs    []*executor
	nextID   uint64
	closed   bool
	warmed   bool
	starting int // warm starts under way
	waiting  int // acquirers waiting for one of them
}

// NewPool returns a pool that starts no executor before Warm or its first
// task.
func NewPool(o Options) *Pool {
	p := &Pool{o: o}
	p.started = sync.NewCond(&p.mu)
	return p
}

// Warm starts one executor in a Python job (WarmEnv, or any of the
// topology's [python] variables, set in the rank's environment; a job of
// Go kernels alone starts no interpreter), without a client's sys.path: it
// imports qlaunch from its own (PYTHONPATH, the topology's [python] path,
// an installed package); where it cannot, it exits quietly and executors
// start on first use as without Warm. The others start on first use: when
// Warm runs, the job's client starts its own interpreter, and on a small
// machine more start-ups side by side delay the first result. Only the
// first call does anything; slots is not used.
func (p *Pool) Warm(slots int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.warmed || p.closed {
		return
	}
	p.warmed = true
	if !p.o.pythonJob() {
		return
	}
	p.python, p.environ = p.o.interpreter(), p.o.environment()
	p.starting++
	go func() {
		ex, err := startExecutor(p.python, p.environ, "", p.forget, p.release)
		p.mu.Lock()
		closed := p.closed
		if err == nil && !closed {
			p.execs = append(p.execs, ex)
		}
		p.mu.Unlock()
		if err == nil && closed {
			ex.close() // before Close, which waits for this start, returns
		}
		p.mu.Lock()
		p.starting--
		p.started.Broadcast()
		p.mu.Unlock()
	}()
}

// nextTasks reserves n consecutive task ids and returns the first.
func (p *Pool) nextTasks(n int) uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	first := p.nextID + 1
	p.nextID += uint64(n)
	return first
}

// acquire returns an executor none of whose tasks runs, starting one when
// there is none (or waiting for one that Warm starts), and counts the
// caller as running on it.
func (p *Pool) acquire(path string) (*executor, error) {
	p.mu.Lock()
	for {
		if p.closed {
			p.mu.Unlock()
			return nil, errors.New("python: the worker rank is shutting down")
		}
		for _, ex := range p.execs {
			if ex.running == 0 && ex.blocked == 0 && !ex.dead.Load() {
				ex.running++
				p.mu.Unlock()
				return ex, nil
			}
		}
		if p.starting <= p.waiting {
			break
		}
		p.waiting++
		p.started.Wait()
		p.waiting--
	}
	if p.python == "" {
		p.python, p.environ = p.o.interpreter(), p.o.environment()
	}
	python, environ := p.python, p.environ
	p.mu.Unlock()
	ex, err := startExecutor(python, environ, path, p.forget, p.release)
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		ex.close()
		return nil, errors.New("python: the worker rank is shutting down")
	}
	ex.running++
	p.execs = append(p.execs, ex)
	return ex, nil
}

// release counts a task as no longer running on ex.
func (p *Pool) release(ex *executor) { p.suspend(ex) }

func (p *Pool) suspend(ex *executor) {
	p.mu.Lock()
	ex.running--
	p.mu.Unlock()
}

// suspendWait counts a task of ex as waiting, and ex as blocked when the
// wait blocks the interpreter.
func (p *Pool) suspendWait(ex *executor, blocking bool) {
	p.mu.Lock()
	ex.running--
	if blocking {
		ex.blocked++
	}
	p.mu.Unlock()
}

// resumeWait undoes suspendWait.
func (p *Pool) resumeWait(ex *executor, blocking bool) {
	p.mu.Lock()
	ex.running++
	if blocking {
		ex.blocked--
	}
	p.mu.Unlock()
}

// forget drops a dead executor from the pool.
func (p *Pool) forget(ex *executor) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, e := range p.execs {
		if e == ex {
			p.execs = append(p.execs[:i], p.execs[i+1:]...)
			return
		}
	}
}

// Executors returns the process ids of the live executors.
func (p *Pool) Executors() []int {
	p.mu.Lock()
	defer p.mu.Unlock()
	var pids []int
	for _, ex := range p.execs {
		if !ex.dead.Load() {
			pids = append(pids, ex.cmd.Process.Pid)
		}
	}
	return pids
}

// Close stops every executor and waits for them to exit.
func (p *Pool) Close() error {
	p.mu.Lock()
	p.closed = true
	p.started.Broadcast()
	for p.starting > 0 { // a warm start ends (closing what it started) within startTimeout
		p.started.Wait()
	}
	execs := p.execs
	p.execs = nil
	p.mu.Unlock()
	for _, ex := range execs {
		ex.close()
	}
	return nil
}

func (o Options) getenv(k string) string {
	if o.Getenv == nil {
		return ""
	}
	return o.Getenv(k)
}

// WarmEnv, set to 1 in a worker rank's environment, makes Warm start an
// executor with the rank: qlaunch run sets it when its command is a Python
// interpreter.
const WarmEnv = "QLAUNCH_PYTHON_WARM"

// pythonJob reports whether the rank's environment says its job runs
// Python tasks: WarmEnv, or a variable of the topology's [python] table.
func (o Options) pythonJob() bool {
	if o.getenv(WarmEnv) == "1" {
		return true
	}
	for _, k := range []string{"QLAUNCH_PYTHON", "QLAUNCH_PYTHON_PATH", "QLAUNCH_PYTHON_THREADS"} {
		if o.getenv(k) != "" {
			return true
		}
	}
	return false
}

func (o Options) interpreter() string {
	if o.Python != "" {
		return o.Python
	}
	if p := o.getenv("QLAUNCH_PYTHON"); p != "" {
		return p
	}
	if fileExists("/usr/bin/python3") {
		return "/usr/bin/python3"
	}
	return "python3"
}

// blasVars are set to 1 in executors unless the rank's environment sets
// them, as BQSKit does: one slot, one thread. $QLAUNCH_PYTHON_THREADS (the
// topology's [python] threads) sets them and threadVars to its value instead,
// over the rank's.
var (
	blasVars   = [...]string{"OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"}
	threadVars = [...]string{"NUMEXPR_NUM_THREADS", "VECLIB_MAXIMUM_THREADS"}
)

// environment returns the executors' environment: Environ's, with the
// thread variables (see blasVars) and $QLAUNCH_PYTHON_PATH (the topology's
// [python] path, ':'-separated) put first on PYTHONPATH.
func (o Options) environment() []string {
	var env []string
	if o.Environ != nil {
		env = append(env, o.Environ()...)
	}
	lookup := func(k string) (int, bool) {
		for i, kv := range env {
			if strings.HasPrefix(kv, k+"=") {
				return i, true
			}
		}
		return -1, false
	}
	set := func(k, v string) {
		if i, ok := lookup(k); ok {
			env[i] = k + "=" + v
			return
		}
		env = append(env, k+"="+v)
	}
	if n := o.getenv("QLAUNCH_PYTHON_THREADS"); n != "" {
		for _, v := range append(blasVars[:], threadVars[:]...) {
			set(v, n)
		}
	} else {
		for _, v := range blasVars {
			if _, ok := lookup(v); !ok {
				set(v, "1")
			}
		}
	}
	if path := o.getenv("QLAUNCH_PYTHON_PATH"); path != "" {
		if i, ok := lookup("PYTHONPATH"); ok && len(env[i]) > len("PYTHONPATH=") {
			path += ":" + env[i][len("PYTHONPATH="):]
		}
		set("PYTHONPATH", path)
	}
	return env
}
