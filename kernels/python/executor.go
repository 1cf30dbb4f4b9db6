package python

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// executor is one warm Python interpreter.
type executor struct {
	cmd *exec.Cmd
	w   *os.File // to Python (its fd 3)
	r   *os.File // from Python (its fd 4)

	running int // tasks running on it, not suspended; guarded by Pool.mu
	// blocked counts the waits its tasks block the whole interpreter on (a
	// plain task's result()): no other task is given to it meanwhile, so
	// the pool starts another executor instead. Guarded by Pool.mu.
	blocked int

	wmu      sync.Mutex // serialises writes; guards lastPath, lastFn and wbuf
	lastPath string
	// lastFn is the function part of the payload of the last msgRun
	// written (a copy): a task of the same function goes as msgRunSame,
	// without it. A map's children reach an executor in batches of one
	// function; sending it once per batch instead of once per task cut a
	// no-op map's bytes on the pipe about tenfold (a 444-byte function
	// pickled by value, a 20-byte call) and spares the executor a lookup
	// of it per task. The comparison costs its share: bytes.Equal over
	// each child's copy of the function (cold memory) was 6% of the worker
	// rank's samples under an in-task map, against the worker's 7.4 → 2.7
	// µs and the executors' 11 → 3 µs a task that the message saved.
	lastFn []byte
	wbuf   []byte // sendRuns' buffer, reused

	mu      sync.Mutex          // guards batches, orphans and err
	batches map[uint64]*batch   // by task id and sync id
	orphans map[uint64]*orphans // tasks cancelled while running; see unregister
	err     error               // why it died

	dead   atomic.Bool
	exited chan struct{}
}

// startTimeout bounds an executor's start-up, to its hello.
const startTimeout = 60 * time.Second

// bootstrap is the executor's command line program: it reads the first
// message, the sys.path entries of the task that started it, adds them, so
// that qlaunch imports from where the client's did when it is not
// installed, and runs qlaunch._executor. An executor started by Warm gets
// an empty path: where qlaunch does not import without one it exits
// (status 3) without a word, and executors start on first use instead.
const bootstrap = `import os, struct, sys
def read(n):
    b = b""
    while len(b) < n:
        c = os.read(3, n - len(b))
        if not c:
            sys.exit(0)
        b += c
    return b
n, typ, _ = struct.unpack(">IBQ", read(13))
path = read(n - 9).decode("utf-8", "replace")
for p in path.split(os.pathsep):
    if p and p not in sys.path:
        sys.path.append(p)
try:
    from qlaunch import _executor
except ImportError:
    if path:
        raise
    sys.exit(3)  # started by Warm where qlaunch is not on its path: quietly
_executor.main()
`

func startExecutor(python string, env []string, path string, forget, release func(*executor)) (*executor, error) {
	toPy, goW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("python: %w", err)
	}
	goR, fromPy, err := os.Pipe()
	if err != nil {
		toPy.Close()
		goW.Close()
		return nil, fmt.Errorf("python: %w", err)
	}
	cmd := exec.Command(python, "-u", "-c", bootstrap)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	cmd.ExtraFiles = []*os.File{toPy, fromPy}
	cmd.SysProcAttr = procAttr()
	err = cmd.Start()
	toPy.Close()
	fromPy.Close()
	if err != nil {
		goW.Close()
		goR.Close()
		return nil, fmt.Errorf("python: start the executor %s: %w (set QLAUNCH_PYTHON to the interpreter to use)", python, err)
	}
	ex := &executor{cmd: cmd, w: goW, r: goR, batches: make(map[uint64]*batch), orphans: make(map[uint64]*orphans), exited: make(chan struct{}), lastPath: path}
	// The pipe holds this message until the bootstrap reads it (a pipe's
	// buffer is 64 KiB; a path longer than that fails here, not hangs).
	if err := writeWithin(goW, appendMsg(nil, msgPath, 0, []byte(path))); err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		goW.Close()
		goR.Close()
		return nil, fmt.Errorf("python: executor %s: sending its path: %w", python, err)
	}
	br := bufio.NewReaderSize(goR, 64<<10)
	hello := make(chan error, 1)
	go func() {
		typ, _, body, _, err := readMsg(br, nil)
		switch {
		case err != nil:
			hello <- err
		case typ != msgHello || string(body) != protocolVersion:
			hello <- fmt.Errorf("it says %q, this worker speaks %q: install the qlaunch Python package of this qlaunch (pip install ./python)", body, protocolVersion)
		default:
			hello <- nil
		}
	}()
	t := time.NewTimer(startTimeout)
	defer t.Stop()
	select {
	case err = <-hello:
	case <-t.C:
		err = fmt.Errorf("no hello within %v", startTimeout)
	}
	if err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		goW.Close()
		goR.Close()
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			err = fmt.Errorf("it exited (%s) before its hello: can %s import qlaunch, cloudpickle and zstandard from its sys.path and the client's? (pip install ./python, or set PYTHONPATH to the repository's python/ folder)", cmd.ProcessState, python)
		}
		return nil, fmt.Errorf("python: executor %s: %w", python, err)
	}
	go ex.readLoop(br, forget, release)
	return ex, nil
}

// readLoop hands the executor's messages to their tasks until it dies.
func (ex *executor) readLoop(br *bufio.Reader, forget, release func(*executor)) {
	var buf []byte
	var rerr error
	for {
		typ, id, body, nb, err := readMsg(br, buf)
		buf = nb
		if err != nil {
			rerr = err
			break
		}
		ex.mu.Lock()
		b := ex.batches[id]
		var acked *orphans
		if typ == msgDone {
			if o := ex.orphans[id]; o != nil {
				delete(ex.orphans, id)
				o.n--
				if o.n == 0 {
					acked = o
				}
			}
		}
		ex.mu.Unlock()
		if acked != nil {
			release(ex)
		}
		if b == nil {
			continue // a batch that ended (cancelled) before the executor noticed
		}
		b.in.put(message{typ: typ, id: id, body: append([]byte(nil), body...)})
	}
	ex.dead.Store(true)
	forget(ex)
	ex.w.Close()
	ex.r.Close()
	werr := ex.cmd.Wait()
	how := describeExit(ex.cmd.ProcessState, werr)
	if rerr != io.EOF && rerr != nil && !errors.Is(rerr, os.ErrClosed) {
		how += " (" + rerr.Error() + ")"
	}
	ex.mu.Lock()
	ex.err = fmt.Errorf("python executor (pid %d) %s while running the task", ex.cmd.Process.Pid, how)
	for id, b := range ex.batches {
		b.in.close()
		delete(ex.batches, id)
	}
	ex.mu.Unlock()
	close(ex.exited)
}

func describeExit(ps *os.ProcessState, err error) string {
	if ps == nil {
		return fmt.Sprintf("was lost: %v", err)
	}
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return fmt.Sprintf("was killed by signal %d (%s)", int(ws.Signal()), ws.Signal())
	}
	return fmt.Sprintf("exited with status %d", ps.ExitCode())
}

// orphans counts a batch's orphaned tasks (cancelled while their Python
// code ran) whose done message has not come: the executor stays counted as
// running until the last one's.
type orphans struct{ n int }

// register adds b's tasks to the executor's; false if it died.
func (ex *executor) register(b *batch) bool {
	ex.mu.Lock()
	defer ex.mu.Unlock()
	if ex.err != nil || ex.dead.Load() {
		return false
	}
	for id := b.base; id <= b.syncID(); id++ {
		ex.batches[id] = b
	}
	return true
}

// unregister removes b's tasks and reports whether the executor stays
// counted as running for b's orphans (tasks cancelled while their Python
// code ran) until their done messages come; the reader then releases it.
func (ex *executor) unregister(b *batch) (orphaned bool) {
	ex.mu.Lock()
	defer ex.mu.Unlock()
	for id := b.base; id <= b.syncID(); id++ {
		delete(ex.batches, id)
	}
	if b.orphans == 0 {
		return false
	}
	// Done messages that came after the batch's last look count too.
	ms, _ := b.in.take()
	for _, m := range ms {
		if i := int(m.id - b.base); m.typ == msgDone && m.id != b.syncID() && b.tasks[i].orphan {
			b.tasks[i].orphan = false
			b.orphans--
		}
	}
	if b.orphans == 0 || ex.dead.Load() {
		return false
	}
	o := &orphans{n: b.orphans}
	for i := range b.tasks {
		if b.tasks[i].orphan {
			ex.orphans[b.base+uint64(i)] = o
		}
	}
	return true
}

// deadErr is why the executor died, once its reader noticed.
func (ex *executor) deadErr() error {
	<-ex.exited
	ex.mu.Lock()
	defer ex.mu.Unlock()
	return ex.err
}

// send writes msg, preceded by a path message when path is set and differs
// from the last one sent.
func (ex *executor) send(msg []byte, path string) error {
	ex.wmu.Lock()
	defer ex.wmu.Unlock()
	if path != "" && path != ex.lastPath {
		msg = append(appendMsg(nil, msgPath, 0, []byte(path)), msg...)
		ex.lastPath = path
	}
	if _, err := ex.w.Write(msg); err != nil {
		return ex.deadErr()
	}
	return nil
}

// sendRuns writes a run message for each of b's tasks, with path messages
// where a task's path differs from the last sent, then b's sync, in one
// write.
func (ex *executor) sendRuns(b *batch) error {
	ex.wmu.Lock()
	defer ex.wmu.Unlock()
	buf := ex.wbuf[:0]
	for i := range b.tasks {
		t := &b.tasks[i]
		if t.path != "" && t.path != ex.lastPath {
			buf = appendMsg(buf, msgPath, 0, []byte(t.path))
			ex.lastPath = t.path
		}
		level := []byte{byte(minLogLevel(t.call.Ctx, t.call.Runtime))}
		pl := t.call.Payload
		fn := funcPart(pl)
		if fn != nil && ex.lastFn != nil && bytes.Equal(fn, ex.lastFn) {
			buf = appendMsg(buf, msgRunSame, b.base+uint64(i), level, pl[len(fn):])
			continue
		}
		buf = appendMsg(buf, msgRun, b.base+uint64(i), level, pl)
		if fn == nil {
			ex.lastFn = nil
		} else {
			ex.lastFn = append(ex.lastFn[:0], fn...)
		}
	}
	buf = appendMsg(buf, msgSync, b.syncID())
	_, err := ex.w.Write(buf)
	if cap(buf) <= 1<<20 {
		ex.wbuf = buf
	}
	if err != nil {
		return ex.deadErr()
	}
	return nil
}

// close ends the executor: its pipe closes, so it exits; it is killed if it
// has not within a few seconds (a task still running).
func (ex *executor) close() {
	ex.wmu.Lock()
	ex.w.Close()
	ex.wmu.Unlock()
	t := time.NewTimer(3 * time.Second)
	defer t.Stop()
	select {
	case <-ex.exited:
	case <-t.C:
		_ = ex.cmd.Process.Kill()
		<-ex.exited
	}
}

// writeWithin writes b to w without waiting on a reader that never
// comes: the write goes in a goroutine and must finish within startTimeout.
func writeWithin(w *os.File, b []byte) error {
	done := make(chan error, 1)
	go func() {
		_, err := w.Write(b)
		done <- err
	}()
	t := time.NewTimer(startTimeout)
	defer t.Stop()
	select {
	case err := <-done:
		return err
	case <-t.C:
		w.Close()
		return fmt.Errorf("the executor read nothing for %v", startTimeout)
	}
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
