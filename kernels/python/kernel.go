package python

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"

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
		Usage: "PYTHONPATH (tasks are built by the Python package qlaunch)",
		Doc:   "run a pickled Python function in a warm interpreter (python/qlaunch)",
	}
}

// task is the state of one running task, owned by its kernel goroutine.
type task struct {
	id      uint64
	ex      *executor
	in      inbox
	futures map[uint32]*childFuture
	path    string
}

type message struct {
	typ  byte
	body []byte
}

// inbox holds the messages of a task's executor until its kernel goroutine
// takes them. It is unbounded, so the executor's reader never waits on a
// task (one in Wait while the executor runs its children, say).
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

// run is the kernel's Func.
func (p *Pool) run(ctx context.Context, rt kernels.Runtime, args []string, payload []byte) ([]byte, error) {
	path := ""
	if len(args) > 0 {
		path = args[0]
	}
	ex, err := p.acquire(path)
	if err != nil {
		return nil, err
	}
	t := &task{id: p.nextTask(), ex: ex, in: inbox{wake: make(chan struct{}, 1)}, path: path}
	if !ex.register(t) {
		p.release(ex)
		return nil, ex.deadErr()
	}
	orphaned := false
	defer func() {
		ex.unregister(t, orphaned)
		if !orphaned {
			p.release(ex)
		}
	}()
	level := minLogLevel(ctx, rt.Logger())
	if err := ex.send(appendMsg(nil, msgRun, t.id, []byte{byte(level)}, payload), path); err != nil {
		return nil, err
	}
	for {
		select {
		case <-t.in.wake:
			ms, closed := t.in.take()
			for _, m := range ms {
				out, done, err := t.handle(ctx, p, rt, m)
				if done || err != nil {
					return out, err
				}
			}
			if closed {
				return nil, ex.deadErr()
			}
		case <-ctx.Done():
			// The task's Python code is running: the executor stays
			// counted as running until it acknowledges the cancellation
			// (or finishes the task), so no other task waits behind it.
			orphaned = true
			_ = ex.send(appendMsg(nil, msgCancelTask, t.id), "")
			return nil, context.Cause(ctx)
		}
	}
}

// handle acts on one message of the task's executor; done is true when the
// task finished.
func (t *task) handle(ctx context.Context, p *Pool, rt kernels.Runtime, m message) (out []byte, done bool, err error) {
	switch m.typ {
	case msgDone:
		if len(m.body) == 0 {
			return nil, true, errShort
		}
		if m.body[0] == 0 {
			return m.body[1:], true, nil // the reader's copy, ours alone
		}
		return nil, true, errors.New(string(m.body[1:]))
	case msgMap:
		fid, rest, err := cutU32(m.body)
		if err != nil {
			return nil, true, err
		}
		payloads, err := decodeChunks(rest)
		if err != nil {
			return nil, true, err
		}
		ts := make([]kernels.Task, len(payloads))
		args := []string{t.path}
		for i, pl := range payloads {
			ts[i] = kernels.Task{Kernel: Name, Args: args, Payload: pl}
		}
		if t.futures == nil {
			t.futures = make(map[uint32]*childFuture)
		}
		f, err := rt.Map(ctx, ts)
		t.futures[fid] = &childFuture{f: f, err: err}
	case msgWait, msgNext:
		fid, _, err := cutU32(m.body)
		if err != nil {
			return nil, true, err
		}
		cf := t.futures[fid]
		var reply []byte
		switch {
		case cf == nil:
			reply = appendErrReply(nil, replyError, fmt.Sprintf("unknown future %d", fid))
		case cf.err != nil:
			reply = appendErrReply(nil, replyError, cf.err.Error())
		default:
			p.suspend(t.ex)
			if m.typ == msgWait {
				vals, err := rt.Wait(ctx, cf.f)
				reply = waitReply(vals, err)
			} else {
				rs, err := rt.Next(ctx, cf.f)
				reply = nextReply(rs, err)
			}
			p.resume(t.ex)
		}
		if ctx.Err() != nil {
			// The task is suspended in Python: drop it there.
			_ = t.ex.send(appendMsg(nil, msgCancelTask, t.id), "")
			return nil, true, context.Cause(ctx)
		}
		if err := t.ex.send(appendMsg(nil, msgResume, t.id, reply), ""); err != nil {
			return nil, true, err
		}
	case msgCancel:
		fid, _, err := cutU32(m.body)
		if err != nil {
			return nil, true, err
		}
		if cf := t.futures[fid]; cf != nil && cf.err == nil {
			_ = rt.Cancel(cf.f)
		}
	case msgLog:
		logRecord(ctx, rt.Logger(), m.body)
	default:
		return nil, true, fmt.Errorf("python executor: unexpected message type %d", m.typ)
	}
	return nil, false, nil
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
func nextReply(rs []kernels.Result, err error) []byte {
	if err != nil {
		return errReply(err)
	}
	b := []byte{replyOK}
	b = appendU32(b, len(rs))
	for _, r := range rs {
		b = appendU32(b, r.Index)
		if r.Err != nil {
			b = append(b, 1)
			b = appendChunk(b, []byte(r.Err.Error()))
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

// minLogLevel returns the lowest Python level the task's logger forwards
// (127 when none).
func minLogLevel(ctx context.Context, l *slog.Logger) int8 {
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

	mu     sync.Mutex
	execs  []*executor
	nextID uint64
	closed bool
}

// NewPool returns a pool that starts no executor before its first task.
func NewPool(o Options) *Pool {
	return &Pool{o: o}
}

func (p *Pool) nextTask() uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.nextID++
	return p.nextID
}

// acquire returns an executor none of whose tasks runs, starting one when
// there is none, and counts the caller as running on it.
func (p *Pool) acquire(path string) (*executor, error) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil, errors.New("python: the worker rank is shutting down")
	}
	for _, ex := range p.execs {
		if ex.running == 0 && !ex.dead.Load() {
			ex.running++
			p.mu.Unlock()
			return ex, nil
		}
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

func (p *Pool) resume(ex *executor) {
	p.mu.Lock()
	ex.running++
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
