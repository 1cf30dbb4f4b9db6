package kernels

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

const (
	// MaxExecOutput is the most standard output the exec kernel returns;
	// a command writing more is killed and its task fails with
	// ErrExecOutputTooLarge.
	MaxExecOutput = 64 << 20
	// ExecStderrTail is how many bytes of the end of a failed command's
	// standard error an ExecError keeps.
	ExecStderrTail = 4 << 10
	// execDrainGrace bounds how long the exec kernel waits for the pipes
	// to close once the command and its process group are gone: only a
	// process that left the group (setsid) can hold them that long.
	execDrainGrace = 2 * time.Second
)

// ErrExecOutputTooLarge fails an exec task whose command wrote more than
// MaxExecOutput bytes to standard output.
var ErrExecOutputTooLarge = errors.New("kernels: exec: standard output over the limit")

// ExecError reports a command run by the exec kernel that exited with a
// non-zero status or was killed by a signal.
type ExecError struct {
	Cmd        string // the command as given, without its arguments
	ExitCode   int    // the exit status; -1 when killed by a signal
	StderrTail string // the last ExecStderrTail bytes of its standard error
}

func (e *ExecError) Error() string {
	status := fmt.Sprintf("exit status %d", e.ExitCode)
	if e.ExitCode < 0 {
		status = "killed by a signal"
	}
	tail := strings.TrimRight(e.StderrTail, "\n")
	if tail == "" {
		return fmt.Sprintf("exec %s: %s", e.Cmd, status)
	}
	return fmt.Sprintf("exec %s: %s: %s", e.Cmd, status, tail)
}

// ExecStartError reports a command that the exec kernel could not start:
// not found, not executable, not in an executable format, its interpreter
// missing. Err is the error of starting it as os/exec reports it, the same
// whether the command runs under an exec guard or directly, so that
// errors.Is finds exec.ErrNotFound, fs.ErrNotExist, fs.ErrPermission or
// the syscall.Errno through it.
type ExecStartError struct {
	Cmd        string // the command as given, without its arguments
	Err        error  // why it could not start
	StderrTail string // the end of the exec guard's standard error, if any
}

func (e *ExecStartError) Error() string {
	tail := strings.TrimRight(e.StderrTail, "\n")
	if tail == "" {
		return fmt.Sprintf("exec %s: %v", e.Cmd, e.Err)
	}
	return fmt.Sprintf("exec %s: %v: %s", e.Cmd, e.Err, tail)
}

func (e *ExecStartError) Unwrap() error { return e.Err }

// execKernel returns the exec kernel with a limit of maxOut bytes of
// standard output, its commands run under guard (the program and leading
// arguments that start an exec guard, see RunExecGuard) or, when guard is
// empty, directly.
//
// The command runs in its own process group, in the environment and
// working directory of this process (the worker rank, whose environment
// and CPU affinity the runtime set before it started). When the task is
// cancelled the whole group is killed; when the command exits, whatever
// it left running in its group is killed too, so no process outlives its
// task. Should the rank itself be killed (kill -9), an unguarded command
// is killed (PR_SET_PDEATHSIG) but not the processes it started; a guarded
// one is killed with its whole group.
func execKernel(maxOut int, guard []string) Func {
	return func(ctx context.Context, _ Runtime, args []string, payload []byte) ([]byte, error) {
		const usage = "[--] CMD [ARG…]"
		if len(args) > 0 && args[0] == "--" {
			args = args[1:]
		}
		if len(args) == 0 || args[0] == "" {
			return nil, usageErr("exec", usage, "needs a command")
		}
		return runCommand(ctx, guard, args[0], args[1:], payload, maxOut)
	}
}

func runCommand(ctx context.Context, guard []string, name string, argv []string, stdin []byte, maxOut int) ([]byte, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)

	var (
		cmd  *exec.Cmd
		path string // the command's path, when guarded
	)
	if len(guard) == 0 {
		cmd = exec.CommandContext(ctx, name, argv...)
		cmd.SysProcAttr = &syscall.SysProcAttr{
			Setpgid: true,
			// Should this process die, its command dies with it.
			Pdeathsig: syscall.SIGKILL,
		}
	} else {
		// The guard starts the command. Looking a bare name up in PATH
		// here, as exec.Command does, keeps the error of a command not
		// found that of exec.Command; the guard reports any other
		// failure to start (see guardedResult).
		path = name
		if filepath.Base(name) == name {
			var err error
			if path, err = exec.LookPath(name); err != nil {
				return nil, &ExecStartError{Cmd: name, Err: err}
			}
		}
		gargs := append(guard[1:len(guard):len(guard)], "--", strconv.Itoa(os.Getpid()), path, name)
		cmd = exec.CommandContext(ctx, guard[0], append(gargs, argv...)...)
		cmd.SysProcAttr = &syscall.SysProcAttr{
			Setpgid: true,
			// Should this process die, the guard kills the group.
			Pdeathsig: syscall.SIGTERM,
		}
	}
	cmd.Cancel = func() error {
		killGroup(cmd.Process.Pid)
		return nil
	}
	if len(guard) > 0 {
		// The guard ends the command with every process below it, in
		// its group or not; should it not have within guardEndGrace,
		// Wait kills it and the group is killed below.
		cmd.Cancel = func() error { return cmd.Process.Signal(guardEndSignal) }
		cmd.WaitDelay = guardEndGrace
	}

	// The command's standard streams are pipes this function owns, so that
	// Wait returns as soon as the command exits and the group can be
	// killed before the pipes are drained.
	var files []*os.File
	defer func() {
		for _, f := range files {
			f.Close()
		}
	}()
	pipe := func() (r, w *os.File, err error) {
		r, w, err = os.Pipe()
		if err == nil {
			files = append(files, r, w)
		}
		return r, w, err
	}
	inR, inW, err := pipe()
	if err != nil {
		return nil, fmt.Errorf("exec %s: %w", name, err)
	}
	outR, outW, err := pipe()
	if err != nil {
		return nil, fmt.Errorf("exec %s: %w", name, err)
	}
	errR, errW, err := pipe()
	if err != nil {
		return nil, fmt.Errorf("exec %s: %w", name, err)
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = inR, outW, errW
	var statusR, statusW *os.File
	if len(guard) > 0 {
		if statusR, statusW, err = pipe(); err != nil {
			return nil, fmt.Errorf("exec %s: %w", name, err)
		}
		cmd.ExtraFiles = []*os.File{statusW}
	}

	if err := cmd.Start(); err != nil {
		if len(guard) == 0 && ctx.Err() == nil {
			return nil, &ExecStartError{Cmd: name, Err: err}
		}
		return nil, fmt.Errorf("exec %s: %w", name, err)
	}
	// The child holds its own copies now.
	inR.Close()
	outW.Close()
	errW.Close()
	if statusW != nil {
		statusW.Close()
	}

	var (
		wg     sync.WaitGroup
		stdout []byte
		tail   tailBuffer
	)
	tail.max = ExecStderrTail
	wg.Go(func() {
		// A command that exits without reading its input makes this
		// write fail with EPIPE, which is no error of the task.
		inW.Write(stdin)
		inW.Close()
	})
	wg.Go(func() {
		stdout, _ = io.ReadAll(io.LimitReader(outR, int64(maxOut)+1))
		if len(stdout) > maxOut {
			cancel(ErrExecOutputTooLarge)
			io.Copy(io.Discard, outR)
		}
	})
	wg.Go(func() {
		io.Copy(&tail, errR)
	})

	var status []byte
	if statusR != nil {
		// The guard reports once the command has exited, then waits to
		// be killed with its group; EOF alone means it was killed first.
		status, _ = io.ReadAll(io.LimitReader(statusR, ExecStderrTail))
		killGroup(cmd.Process.Pid)
	}
	waitErr := cmd.Wait()
	killGroup(cmd.Process.Pid)
	deadline := time.Now().Add(execDrainGrace)
	outR.SetReadDeadline(deadline)
	errR.SetReadDeadline(deadline)
	inW.SetWriteDeadline(deadline)
	wg.Wait()

	if ctx.Err() != nil {
		cause := context.Cause(ctx)
		if errors.Is(cause, ErrExecOutputTooLarge) {
			return nil, fmt.Errorf("exec %s: %w (%d bytes)", name, ErrExecOutputTooLarge, maxOut)
		}
		return nil, fmt.Errorf("exec %s: %w", name, cause)
	}
	if statusR != nil {
		return guardedResult(name, path, string(status), stdout, tail.bytes())
	}
	var ee *exec.ExitError
	if errors.As(waitErr, &ee) {
		return nil, &ExecError{Cmd: name, ExitCode: ee.ExitCode(), StderrTail: string(tail.bytes())}
	}
	if waitErr != nil {
		return nil, fmt.Errorf("exec %s: %w", name, waitErr)
	}
	if stdout == nil {
		stdout = []byte{}
	}
	return stdout, nil
}

// guardedResult is the result of a command that an exec guard ran (name
// as given, found at path), from the status line the guard wrote. A
// command the guard could not start fails with the *ExecStartError that
// starting it directly gives: os/exec's *fs.PathError (fork/exec PATH)
// around the guard's errno.
func guardedResult(name, path, status string, stdout, stderrTail []byte) ([]byte, error) {
	if rest, ok := strings.CutPrefix(status, guardStatusStart); ok {
		num, msg, _ := strings.Cut(rest, " ")
		n, err := strconv.ParseUint(num, 10, 32)
		var cause error
		switch {
		case err == nil && n > 0:
			cause = &fs.PathError{Op: "fork/exec", Path: path, Err: syscall.Errno(n)}
		case err == nil:
			cause = errors.New(msg)
		default:
			cause = errors.New(rest)
		}
		return nil, &ExecStartError{Cmd: name, Err: cause, StderrTail: string(stderrTail)}
	}
	code, err := strconv.Atoi(strings.TrimPrefix(status, guardStatusExit))
	if err != nil || !strings.HasPrefix(status, guardStatusExit) {
		return nil, fmt.Errorf("exec %s: the exec guard ended without a status", name)
	}
	if code != 0 {
		return nil, &ExecError{Cmd: name, ExitCode: code, StderrTail: string(stderrTail)}
	}
	if stdout == nil {
		stdout = []byte{}
	}
	return stdout, nil
}

// guardEndGrace bounds how long a cancelled guarded command's guard may
// take to end it (it walks the process tree, a few milliseconds).
const guardEndGrace = 2 * time.Second

// killGroup kills the process group led by pid; a group already gone is
// no error.
func killGroup(pid int) {
	syscall.Kill(-pid, syscall.SIGKILL)
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	max int
	buf []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	n := len(p)
	if len(p) >= t.max {
		t.buf = append(t.buf[:0], p[len(p)-t.max:]...)
		return n, nil
	}
	t.buf = append(t.buf, p...)
	if len(t.buf) > 2*t.max {
		t.buf = append(t.buf[:0], t.buf[len(t.buf)-t.max:]...)
	}
	return n, nil
}

func (t *tailBuffer) bytes() []byte {
	if len(t.buf) > t.max {
		return bytes.Clone(t.buf[len(t.buf)-t.max:])
	}
	return bytes.Clone(t.buf)
}
