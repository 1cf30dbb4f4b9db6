package kernels

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Limits of the fanout kernel's arguments.
const (
	MaxFanoutWidth = 1 << 20 // most children of one fanout task (N)
	MaxFanoutDepth = 64      // deepest tree (DEPTH)
)

// UsageError reports a task whose arguments do not fit its kernel.
type UsageError struct {
	Kernel string // the kernel's name
	Usage  string // the kernel's synopsis, Kernel.Usage
	Msg    string // what is wrong
}

func (e *UsageError) Error() string {
	if e.Usage == "" {
		return fmt.Sprintf("%s: %s (usage: %s)", e.Kernel, e.Msg, e.Kernel)
	}
	return fmt.Sprintf("%s: %s (usage: %s %s)", e.Kernel, e.Msg, e.Kernel, e.Usage)
}

// BadInput marks a usage error as the caller's fault (exit status 2 in the
// command-line tools).
func (e *UsageError) BadInput() bool { return true }

// IsUsageMessage reports whether msg, the error message of a failed task
// of kernel as a client receives it (the error's text only crosses the
// wire), is that of a *UsageError: the task's arguments did not fit.
func IsUsageMessage(kernel, msg string) bool {
	return kernel != "" && strings.HasPrefix(msg, kernel+": ") &&
		strings.HasSuffix(msg, ")") && strings.Contains(msg, " (usage: "+kernel)
}

// Builtin returns the built-in kernels, a new slice at each call:
//
//	noop                 returns nothing
//	sleep MS             waits MS milliseconds (or until cancelled), returns nothing
//	echo [TEXT…]         returns the arguments joined by spaces; with none, the payload
//	fail MESSAGE…        fails with the arguments joined by spaces as its error message
//	fanout N DEPTH       maps N children running fanout N DEPTH-1, down to noop
//	                     leaves (DEPTH 0 is one leaf); returns the number of
//	                     leaves, N^DEPTH, as decimal text
//	exec [--] CMD [ARG…] runs CMD with the payload on its standard input and
//	                     returns its standard output (see ExecError, ExecStartError,
//	                     MaxExecOutput)
//
// noop, sleep, echo and fanout are retryable; fail and exec are not. Wrong
// arguments fail the task with a *UsageError.
//
// Builtin's exec runs its commands without a guard; BuiltinWith can give
// it one.
func Builtin() []Kernel { return BuiltinWith(BuiltinOptions{}) }

// BuiltinOptions adjust the built-in kernels; the zero value gives those of
// Builtin.
type BuiltinOptions struct {
	// ExecGuard is the command line (program and leading arguments) that
	// starts an exec guard, a program calling RunExecGuard: for example
	// {"/proc/self/exe", ExecGuardArg} in a binary that dispatches
	// ExecGuardArg to RunExecGuard. With a guard, the processes an exec
	// command started are killed even when the worker rank is killed -9.
	// Empty: commands run directly under the rank.
	ExecGuard []string
}

// BuiltinWith returns the built-in kernels (see Builtin) adjusted by o, a
// new slice at each call.
func BuiltinWith(o BuiltinOptions) []Kernel {
	return []Kernel{
		{Name: "noop", Func: noop, Retryable: true, Usage: "", Doc: "return nothing"},
		{Name: "sleep", Func: sleep, Retryable: true, Usage: "MS", Doc: "wait MS milliseconds, return nothing"},
		{Name: "echo", Func: echo, Retryable: true, Usage: "[TEXT…]", Doc: "return the arguments joined by spaces, or the payload when there are none"},
		{Name: "fail", Func: fail, Usage: "MESSAGE…", Doc: "fail with MESSAGE"},
		{Name: "fanout", Func: fanout, Retryable: true, Usage: "N DEPTH", Doc: "map N children doing fanout N DEPTH-1 down to noop leaves; return the number of leaves"},
		{Name: "exec", Func: execKernel(MaxExecOutput, slices.Clone(o.ExecGuard)), Usage: "[--] CMD [ARG…]", Doc: "run CMD with the payload on stdin, return its stdout"},
	}
}

func usageErr(kernel, usage, format string, a ...any) error {
	return &UsageError{Kernel: kernel, Usage: usage, Msg: fmt.Sprintf(format, a...)}
}

// atoiArg parses a non-negative integer argument.
func atoiArg(kernel, usage, name, s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return 0, usageErr(kernel, usage, "%s must be a non-negative integer, not %q", name, s)
	}
	return n, nil
}

func noop(_ context.Context, _ Runtime, args []string, _ []byte) ([]byte, error) {
	if len(args) != 0 {
		return nil, usageErr("noop", "", "takes no arguments, got %d", len(args))
	}
	return nil, nil
}

func sleep(ctx context.Context, _ Runtime, args []string, _ []byte) ([]byte, error) {
	const usage = "MS"
	if len(args) != 1 {
		return nil, usageErr("sleep", usage, "takes 1 argument, got %d", len(args))
	}
	ms, err := atoiArg("sleep", usage, "MS", args[0])
	if err != nil {
		return nil, err
	}
	if int64(ms) > math.MaxInt64/int64(time.Millisecond) {
		return nil, usageErr("sleep", usage, "MS %d is over the limit of %d", ms, math.MaxInt64/int64(time.Millisecond))
	}
	t := time.NewTimer(time.Duration(ms) * time.Millisecond)
	defer t.Stop()
	select {
	case <-t.C:
		return nil, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("sleep: %w", context.Cause(ctx))
	}
}

func echo(_ context.Context, _ Runtime, args []string, payload []byte) ([]byte, error) {
	if len(args) == 0 {
		return payload, nil
	}
	return []byte(strings.Join(args, " ")), nil
}

func fail(_ context.Context, _ Runtime, args []string, _ []byte) ([]byte, error) {
	if len(args) == 0 {
		return nil, usageErr("fail", "MESSAGE…", "needs a message")
	}
	return nil, errors.New(strings.Join(args, " "))
}

func fanout(ctx context.Context, rt Runtime, args []string, _ []byte) ([]byte, error) {
	const usage = "N DEPTH"
	if len(args) != 2 {
		return nil, usageErr("fanout", usage, "takes 2 arguments, got %d", len(args))
	}
	n, err := atoiArg("fanout", usage, "N", args[0])
	if err != nil {
		return nil, err
	}
	depth, err := atoiArg("fanout", usage, "DEPTH", args[1])
	if err != nil {
		return nil, err
	}
	if n > MaxFanoutWidth {
		return nil, usageErr("fanout", usage, "N %d is over the limit of %d", n, MaxFanoutWidth)
	}
	if depth > MaxFanoutDepth {
		return nil, usageErr("fanout", usage, "DEPTH %d is over the limit of %d", depth, MaxFanoutDepth)
	}
	leaves := 1
	for range depth {
		if n != 0 && leaves > math.MaxInt/n {
			return nil, usageErr("fanout", usage, "%d^%d leaves overflow an int", n, depth)
		}
		leaves *= n
	}
	if depth == 0 {
		return []byte("1"), nil
	}
	child := Task{Kernel: "noop"}
	if depth > 1 {
		child = Task{Kernel: "fanout", Args: []string{args[0], strconv.Itoa(depth - 1)}}
	}
	ts := make([]Task, n)
	for i := range ts {
		ts[i] = child
	}
	f, err := rt.Map(ctx, ts)
	if err != nil {
		return nil, fmt.Errorf("fanout: %w", err)
	}
	vals, err := rt.Wait(ctx, f)
	if err != nil {
		return nil, fmt.Errorf("fanout: %w", err)
	}
	total := 0
	for _, v := range vals {
		if depth == 1 {
			total++
			continue
		}
		c, err := strconv.Atoi(string(v))
		if err != nil {
			return nil, fmt.Errorf("fanout: child returned %q, not a count", v)
		}
		total += c
	}
	if total != leaves {
		return nil, fmt.Errorf("fanout: counted %d leaves, want %d", total, leaves)
	}
	return []byte(strconv.Itoa(total)), nil
}
