package kernels_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/qlaunch/qlaunch/kernels"
)

// procTimeout bounds every wait on another process; reaching it fails.
const procTimeout = 10 * time.Second

func runExec(t *testing.T, ctx context.Context, payload []byte, args ...string) ([]byte, error) {
	t.Helper()
	return newRuntime(t, 1).Run(ctx, kernels.Task{Kernel: "exec", Args: args, Payload: payload})
}

func TestExecOutput(t *testing.T) {
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
	t.Setenv("QLAUNCH_EXEC_TEST", "inherited value")
	for _, c := range []struct {
		name    string
		args    []string
		payload []byte
		want    []byte
	}{
		{"stdout", []string{"--", "echo", "hello", "world"}, nil, []byte("hello world\n")},
		{"without-dashes", []string{"echo", "-n", "x"}, nil, []byte("x")},
		{"empty", []string{"--", "true"}, nil, []byte{}},
		{"stdin", []string{"--", "cat"}, []byte("from the payload"), []byte("from the payload")},
		{"stdin-1MiB", []string{"--", "cat"}, big, big},
		{"stdin-unread", []string{"--", "echo", "ok"}, big, []byte("ok\n")},
		{"no-stdin", []string{"--", "sh", "-c", "cat; echo end"}, nil, []byte("end\n")},
		{"env", []string{"--", "sh", "-c", `printf %s "$QLAUNCH_EXEC_TEST"`}, nil, []byte("inherited value")},
		{"stderr-ignored", []string{"--", "sh", "-c", "echo out; echo err >&2"}, nil, []byte("out\n")},
	} {
		t.Run(c.name, func(t *testing.T) {
			out, err := runExec(t, t.Context(), c.payload, c.args...)
			if err != nil || !bytes.Equal(out, c.want) {
				t.Errorf("got %.80q (%d bytes), %v; want %.80q (%d bytes)", out, len(out), err, c.want, len(c.want))
			}
		})
	}
}

func TestExecError(t *testing.T) {
	long := strings.Repeat("x", 10000) + "END"
	for _, c := range []struct {
		name string
		args []string
		want kernels.ExecError
		msg  string
	}{
		{
			"exit-3", []string{"--", "sh", "-c", "echo out; echo oops >&2; exit 3"},
			kernels.ExecError{Cmd: "sh", ExitCode: 3, StderrTail: "oops\n"},
			"exec sh: exit status 3: oops",
		},
		{
			"exit-1-silent", []string{"--", "false"},
			kernels.ExecError{Cmd: "false", ExitCode: 1},
			"exec false: exit status 1",
		},
		{
			"tail", []string{"--", "sh", "-c", "printf %s " + long + " >&2; exit 7"},
			kernels.ExecError{Cmd: "sh", ExitCode: 7, StderrTail: long[len(long)-kernels.ExecStderrTail:]},
			"exec sh: exit status 7: " + long[len(long)-kernels.ExecStderrTail:],
		},
		{
			"signal", []string{"--", "sh", "-c", "echo dying >&2; kill -9 $$"},
			kernels.ExecError{Cmd: "sh", ExitCode: -1, StderrTail: "dying\n"},
			"exec sh: killed by a signal: dying",
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			out, err := runExec(t, t.Context(), nil, c.args...)
			var ee *kernels.ExecError
			if !errors.As(err, &ee) {
				t.Fatalf("got %q, %v; want an *ExecError", out, err)
			}
			if *ee != c.want {
				t.Errorf("got %+v\nwant %+v", *ee, c.want)
			}
			if err.Error() != c.msg {
				t.Errorf("message %q, want %q", err, c.msg)
			}
		})
	}
	t.Run("not-found", func(t *testing.T) {
		_, err := runExec(t, t.Context(), nil, "--", "/nonexistent/qlaunch-test-command")
		if !errors.Is(err, os.ErrNotExist) {
			t.Errorf("got %v, want ErrNotExist", err)
		}
		_, err = runExec(t, t.Context(), nil, "--", "qlaunch-test-no-such-command")
		if !errors.Is(err, exec.ErrNotFound) {
			t.Errorf("got %v, want exec.ErrNotFound", err)
		}
	})
	t.Run("cancelled-before", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		if _, err := runExec(t, ctx, nil, "--", "true"); !errors.Is(err, context.Canceled) {
			t.Errorf("got %v, want context.Canceled", err)
		}
	})
}

// procState returns the state letter of process pid (R, S, Z…) and its
// process group, or ok false when there is no such process.
func procState(pid int) (state byte, pgrp int, ok bool) {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return 0, 0, false
	}
	// pid (comm) state ppid pgrp …; comm may hold spaces and parentheses.
	rest := b[bytes.LastIndexByte(b, ')')+1:]
	f := strings.Fields(string(rest))
	if len(f) < 3 {
		return 0, 0, false
	}
	pgrp, _ = strconv.Atoi(f[2])
	return f[0][0], pgrp, true
}

// liveInGroup lists the processes of group pgid that are alive (zombies
// are dead: only their parent has not reaped them).
func liveInGroup(t *testing.T, pgid int) []int {
	t.Helper()
	ents, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var live []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if st, g, ok := procState(pid); ok && g == pgid && st != 'Z' {
			live = append(live, pid)
		}
	}
	return live
}

// waitNoGroup waits, at most procTimeout, until no live process is left in
// group pgid and none of pids is alive.
func waitNoGroup(t *testing.T, pgid int, pids ...int) {
	t.Helper()
	deadline := time.Now().Add(procTimeout)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		left := liveInGroup(t, pgid)
		for _, p := range pids {
			if st, _, ok := procState(p); ok && st != 'Z' {
				left = append(left, p)
			}
		}
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("processes %v of group %d still alive after %v", left, pgid, procTimeout)
		}
		<-tick.C
	}
}

// pids parses "PID PID…" as written by the test commands.
func pids(t *testing.T, s string) []int {
	t.Helper()
	var out []int
	for _, f := range strings.Fields(s) {
		p, err := strconv.Atoi(f)
		if err != nil {
			t.Fatalf("pid list %q: %v", s, err)
		}
		out = append(out, p)
	}
	return out
}

func TestExecCancelKillsGroup(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "pids")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		// The shell reports its pid and its background child's through
		// the FIFO, then waits for the child: only a group kill stops both.
		_, err := runExec(t, ctx, nil, "--", "sh", "-c", `sleep 100 & echo $$ $! > "$1"; wait`, "sh", fifo)
		done <- err
	}()
	report := make(chan string, 1)
	go func() {
		f, err := os.Open(fifo) // blocks until the shell opens it
		if err != nil {
			report <- err.Error()
			return
		}
		defer f.Close()
		b, _ := io.ReadAll(f)
		report <- string(b)
	}()
	var ps []int
	select {
	case s := <-report:
		ps = pids(t, s)
	case <-time.After(procTimeout):
		t.Fatal("the command never reported its pids")
	}
	if len(ps) != 2 {
		t.Fatalf("pids %v, want the shell's and sleep's", ps)
	}
	shell, child := ps[0], ps[1]
	if st, g, ok := procState(child); !ok || st == 'Z' || g != shell {
		t.Fatalf("sleep %d: state %c, group %d, exists %v; want it alive in group %d", child, st, g, ok, shell)
	}
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("cancelled exec: %v, want context.Canceled", err)
		}
	case <-time.After(procTimeout):
		t.Fatal("cancelled exec did not return")
	}
	waitNoGroup(t, shell, shell, child)
}

func TestExecKillsLeftovers(t *testing.T) {
	// The shell exits at once, leaving sleep behind in its group, holding
	// the stdout pipe: the kernel kills it and returns.
	start := time.Now()
	out, err := runExec(t, t.Context(), nil, "--", "sh", "-c", "sleep 100 & echo $$ $!")
	if err != nil {
		t.Fatal(err)
	}
	ps := pids(t, string(out))
	if len(ps) != 2 {
		t.Fatalf("output %q, want two pids", out)
	}
	if d := time.Since(start); d > 90*time.Second {
		t.Errorf("exec waited %v for the leftover process", d)
	}
	waitNoGroup(t, ps[0], ps...)
}
