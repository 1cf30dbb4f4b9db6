package kernels

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"syscall"
)

// ExecGuardArg is the first argument that puts a program into exec guard
// mode: a program that offers the mode calls RunExecGuard with the
// arguments after it (qlaunch does, as the hidden subcommand "exec-guard").
const ExecGuardArg = "exec-guard"

// The exec guard.
//
// A command run by the exec kernel may start processes of its own (a shell
// running a pipeline, a script, a build). Killing the command's process
// group reaches them all as long as the worker rank lives to do it: on
// cancel, on a timeout, once the command has exited. But a rank killed -9
// runs no code, and PR_SET_PDEATHSIG reaches only a direct child, never its
// children. So, when the exec kernel is given a guard (BuiltinOptions), a
// command does not run as the rank's child but as the grandchild of a small
// guard process:
//
//	worker rank ── guard (process-group leader, PDEATHSIG=SIGTERM)
//	                 └── CMD (same group) ── CMD's children (same group) …
//
// The guard leads a new process group that the command and, unless they
// leave it with setsid or setpgid, all its descendants share. It is told of
// its parent's death by SIGTERM (PR_SET_PDEATHSIG) and answers, once
// getppid confirms it, by killing its whole group, itself included, with
// SIGKILL. It never exits on its own while its group may hold a process:
// once the command has exited it writes the command's status on file
// descriptor 3 (a pipe from the rank), closes it, and waits to be killed
// with its group. The rank reads the status, then kills the group (guard
// and leftovers) as it does for an unguarded command; cancelling a task
// kills the group at any time. Either way the group is killed by someone
// alive: the rank, or the guard when the rank is gone.
//
// A command's process that leaves the group (setsid, setpgid) is still
// found: the guard is a child subreaper, so such a process stays below it
// even once its own parent has exited, and the guard walks the process
// tree below itself and kills all of it (endDescendants) when the command
// exits, when the rank cancels the task (SIGUSR1 to the guard) and when
// the rank dies (SIGTERM), before killing its group.
//
// Windows closed: a rank that dies before the guard has armed its signal
// handler either kills the guard (SIGTERM's default action, before the
// command starts) or is seen by the guard comparing its parent's pid with
// the one the rank passed, after arming and before starting the command.
//
// The guard costs one extra short-lived process per exec task (a few
// milliseconds of start-up). A cgroup would also catch processes that leave
// the group, but is seldom writable by a job on a shared machine.

// Exec guard status lines, written on file descriptor 3.
const (
	guardStatusExit  = "exit "  // followed by the exit status; -1: killed by a signal
	guardStatusStart = "start " // followed by ERRNO MESSAGE: why the command could not start
)

// guardStartStatus is the status line of a command the guard could not
// start: guardStatusStart, the errno of the failure (0 when it is none),
// a space and the error's text.
func guardStartStatus(err error) string {
	var errno syscall.Errno
	errors.As(err, &errno)
	return fmt.Sprintf("%s%d %v", guardStatusStart, uintptr(errno), err)
}

// execGuardStatusFD is the guard's file descriptor of the status pipe (the
// first of exec.Cmd.ExtraFiles).
const execGuardStatusFD = 3

// RunExecGuard runs the exec guard; args are those after ExecGuardArg:
//
//	-- PARENT_PID PATH ARGV0 [ARG…]
//
// It runs PATH with arguments ARGV0 ARG… in its process group, standard
// streams inherited, and reports its status on file descriptor 3 (see the
// comment above). It returns only when the arguments or file descriptor 3
// are wrong; otherwise the guard ends killed with its process group.
func RunExecGuard(args []string) error {
	if len(args) < 4 || args[0] != "--" {
		return errors.New("exec guard: want -- PARENT_PID PATH ARGV0 [ARG…]")
	}
	parent, err := strconv.Atoi(args[1])
	if err != nil || parent <= 0 {
		return fmt.Errorf("exec guard: bad parent pid %q", args[1])
	}
	var st syscall.Stat_t
	if err := syscall.Fstat(execGuardStatusFD, &st); err != nil {
		return fmt.Errorf("exec guard: status descriptor %d: %w", execGuardStatusFD, err)
	}
	syscall.CloseOnExec(execGuardStatusFD)
	status := os.NewFile(execGuardStatusFD, "exec-guard-status")

	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM, guardEndSignal)
	// Had the rank died before the handler was armed, its SIGTERM may
	// have gone to another handler of this program.
	killGroupIfOrphaned(parent, 0)
	// Processes of the command that leave its group (setsid) stay below
	// the guard, where endDescendants finds them. Without it (a kernel
	// before Linux 3.4), they escape as they did before.
	_ = becomeSubreaper()

	cmd := &exec.Cmd{Path: args[2], Args: args[3:]}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	// Should the guard itself be killed alone, its command follows it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		io.WriteString(status, guardStartStatus(err))
	} else {
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
	wait:
		for {
			select {
			case sig := <-term:
				if sig == guardEndSignal {
					endAll(cmd.Process.Pid)
				}
				killGroupIfOrphaned(parent, cmd.Process.Pid)
			case err := <-done:
				// What the command left running, in its group or not,
				// ends before the rank hears that it exited.
				endDescendants(0)
				if cmd.ProcessState != nil {
					fmt.Fprintf(status, "%s%d", guardStatusExit, cmd.ProcessState.ExitCode())
				} else {
					io.WriteString(status, guardStartStatus(err))
				}
				break wait
			}
		}
	}
	status.Close()
	for sig := range term {
		if sig == guardEndSignal {
			endAll(0)
		}
		killGroupIfOrphaned(parent, 0)
	}
	return errors.New("exec guard: signal channel closed")
}

// guardEndSignal asks the guard to end its command with every process
// below it, then its group and itself: how the rank cancels a guarded
// command (SIGKILL to the group would miss processes that left it).
const guardEndSignal = syscall.SIGUSR1

// endAll ends every process below the guard (skip: the command, which
// another goroutine waits for), then the guard's group with the guard.
func endAll(skip int) {
	endDescendants(skip)
	killOwnGroup()
}

// killGroupIfOrphaned ends every process below the caller, then its
// process group, the caller included, when its parent is no longer parent.
// A SIGTERM while the parent lives is ignored: it came from elsewhere (a
// job scheduler signalling every process of a job step, which reaches the
// command and the rank too), or from the exit of the parent's thread that
// started the guard, which PR_SET_PDEATHSIG reports as well.
func killGroupIfOrphaned(parent, skip int) {
	if os.Getppid() != parent {
		endAll(skip)
	}
}

// killOwnGroup kills the caller's process group, the caller included.
func killOwnGroup() {
	syscall.Kill(0, syscall.SIGKILL)
}
