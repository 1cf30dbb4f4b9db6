package python

import (
	"bufio"
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

	wmu      sync.Mutex // serialises writes; guards lastPath
	lastPath string

	mu      sync.Mutex // guards tasks and err
	tasks   map[uint64]*task
	orphans map[uint64]bool // cancelled while running; see unregister
	err     error           // why it died

	dead   atomic.Bool
	exited chan struct{}
}

// startTimeout bounds an executor's start-up, to its hello.
const startTimeout = 60 * time.Second

// bootstrap is the executor's command line program: it reads the first
// message, the sys.path entries of the task that started it, adds them, so
// that qlaunch imports from where the client's did when it is not
// installed, and runs qlaunch._executor.
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
for p in read(n - 9).decode("utf-8", "replace").split(os.pathsep):
    if p and p not in sys.path:
        sys.path.append(p)
from qlaunch import _executor
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
	ex := &executor{cmd: cmd, w: goW, r: goR, tasks: make(map[uint64]*task), orphans: make(map[uint64]bool), exited: make(chan struct{}), lastPath: path}
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
		t := ex.tasks[id]
		orphan := typ == msgDone && ex.orphans[id]
		if orphan {
			delete(ex.orphans, id)
		}
		ex.mu.Unlock()
		if orphan {
			release(ex)
		}
		if t == nil {
			continue // a task that ended (cancelled) before the executor noticed
		}
		t.in.put(message{typ: typ, body: append([]byte(nil), body...)})
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
	for id, t := range ex.tasks {
		t.in.close()
		delete(ex.tasks, id)
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

// register adds t to the executor's tasks; false if it died.
func (ex *executor) register(t *task) bool {
	ex.mu.Lock()
	defer ex.mu.Unlock()
	if ex.err != nil || ex.dead.Load() {
		return false
	}
	ex.tasks[t.id] = t
	return true
}

// unregister removes t; an orphaned task (cancelled while its Python code
// ran) keeps its executor counted as running until the executor's done
// message for it.
func (ex *executor) unregister(t *task, orphaned bool) {
	ex.mu.Lock()
	delete(ex.tasks, t.id)
	if orphaned {
		ex.orphans[t.id] = true
	}
	ex.mu.Unlock()
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
