package kernels_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
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
	"github.com/qlaunch/qlaunch/kernels/kerneltest"
)

// procTimeout bounds every wait on another process; reaching it fails.
const procTimeout = 10 * time.Second

// Arguments of this test binary that select a mode other than testing.
const fakeRankArg = "exec-fake-rank"

// testGuard starts an exec guard: this test binary in exec guard mode.
var testGuard = []string{"/proc/self/exe", kernels.ExecGuardArg}

func TestMain(m *testing.M) {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case kernels.ExecGuardArg:
			err := kernels.RunExecGuard(os.Args[2:])
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		case fakeRankArg:
			os.Exit(fakeRank(os.Args[2:]))
		}
	}
	os.Exit(m.Run())
}

// fakeRank plays a worker rank: it runs one exec task, args being the
// kernel's arguments, with the test guard.
func fakeRank(args []string) int {
	reg, err := kernels.NewRegistry(kernels.BuiltinWith(kernels.BuiltinOptions{ExecGuard: testGuard})...)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	if _, err := kerneltest.New(reg, 1).Run(context.Background(), kernels.Task{Kernel: "exec", Args: args}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// execMode is a way to run the exec kernel: directly or under a guard.
type execMode struct {
	name  string
	guard []string
}

var execModes = []execMode{{"direct", nil}, {"guarded", testGuard}}

// forModes runs f as a subtest for each exec mode.
func forModes(t *testing.T, f func(t *testing.T, m execMode)) {
	for _, m := range execModes {
		t.Run(m.name, func(t *testing.T) { f(t, m) })
	}
}

func (m execMode) run(t *testing.T, ctx context.Context, payload []byte, args ...string) ([]byte, error) {
	t.Helper()
	reg, err := kernels.NewRegistry(kernels.BuiltinWith(kernels.BuiltinOptions{ExecGuard: m.guard})...)
	if err != nil {
		t.Fatal(err)
	}
	return kerneltest.New(reg, 1).Run(ctx, kernels.Task{Kernel: "exec", Args: args, Payload: payload})
}

func TestExecOutput(t *testing.T) {
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
	t.Setenv("QLAUNCH_EXEC_TEST", "inherited value")
	forModes(t, func(t *testing.T, m execMode) { testExecOutput(t, m, big) })
}

func testExecOutput(t *testing.T, m execMode, big []byte) {
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
			out, err := m.run(t, t.Context(), c.payload, c.args...)
			if err != nil || !bytes.Equal(out, c.want) {
				t.Errorf("got %.80q (%d bytes), %v; want %.80q (%d bytes)", out, len(out), err, c.want, len(c.want))
			}
		})
	}
}

func TestExecError(t *testing.T) {
	forModes(t, testExecError)
}

func testExecError(t *testing.T, m execMode) {
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
			out, err := m.run(t, t.Context(), nil, c.args...)
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
		_, err := m.run(t, t.Context(), nil, "--", "/nonexistent/qlaunch-test-command")
		if !errors.Is(err, os.ErrNotExist) {
			t.Errorf("got %v, want ErrNotExist", err)
		}
		_, err = m.run(t, t.Context(), nil, "--", "qlaunch-test-no-such-command")
		if !errors.Is(err, exec.ErrNotFound) {
			t.Errorf("got %v, want exec.ErrNotFound", err)
		}
	})
	t.Run("cancelled-before", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		if _, err := m.run(t, ctx, nil, "--", "true"); !errors.Is(err, context.Canceled) {
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

// reportFIFO makes a FIFO through which a test command reports its pids.
func reportFIFO(t *testing.T) string {
	t.Helper()
	fifo := filepath.Join(t.TempDir(), "pids")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	return fifo
}

// readPIDs reads the pids a command writes to fifo, waiting at most
// procTimeout.
func readPIDs(t *testing.T, fifo string) []int {
	t.Helper()
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
	select {
	case s := <-report:
		return pids(t, s)
	case <-time.After(procTimeout):
		t.Fatal("the command never reported its pids")
		return nil
	}
}

// groupOf returns the process group of the shell and of its background
// child, failing unless both are alive in one group led by neither the
// test nor (when guarded) the shell.
func groupOf(t *testing.T, m execMode, shell, child int) int {
	t.Helper()
	_, g, ok := procState(shell)
	if !ok {
		t.Fatalf("shell %d not found", shell)
	}
	if st, gc, ok := procState(child); !ok || st == 'Z' || gc != g {
		t.Fatalf("child %d: state %c, group %d, exists %v; want it alive in group %d", child, st, gc, ok, g)
	}
	// Directly, the shell leads the group; guarded, the guard does.
	if wantShell := m.guard == nil; (g == shell) != wantShell || g == syscall.Getpgrp() {
		t.Fatalf("group %d of shell %d (test's group %d), want the shell leading it: %v", g, shell, syscall.Getpgrp(), wantShell)
	}
	return g
}

// The shell reports its pid and its background child's through the FIFO
// $1, then waits for the child: only a group kill stops both.
const reportAndWait = `sleep 100 & echo $$ $! > "$1"; wait`

func TestExecCancelKillsGroup(t *testing.T) {
	forModes(t, func(t *testing.T, m execMode) {
		fifo := reportFIFO(t)
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		done := make(chan error, 1)
		go func() {
			_, err := m.run(t, ctx, nil, "--", "sh", "-c", reportAndWait, "sh", fifo)
			done <- err
		}()
		ps := readPIDs(t, fifo)
		if len(ps) != 2 {
			t.Fatalf("pids %v, want the shell's and sleep's", ps)
		}
		g := groupOf(t, m, ps[0], ps[1])
		cancel()
		select {
		case err := <-done:
			if !errors.Is(err, context.Canceled) {
				t.Errorf("cancelled exec: %v, want context.Canceled", err)
			}
		case <-time.After(procTimeout):
			t.Fatal("cancelled exec did not return")
		}
		waitNoGroup(t, g, ps...)
	})
}

func TestExecKillsLeftovers(t *testing.T) {
	forModes(t, func(t *testing.T, m execMode) {
		// The shell exits at once, leaving sleep behind in its group,
		// holding the stdout pipe: the kernel kills it and returns.
		start := time.Now()
		out, err := m.run(t, t.Context(), nil, "--", "sh", "-c", "sleep 100 & echo $$ $! $(cut -d' ' -f5 /proc/$$/stat)")
		if err != nil {
			t.Fatal(err)
		}
		ps := pids(t, string(out))
		if len(ps) != 3 {
			t.Fatalf("output %q, want two pids and a group", out)
		}
		if d := time.Since(start); d > 90*time.Second {
			t.Errorf("exec waited %v for the leftover process", d)
		}
		waitNoGroup(t, ps[2], ps[:2]...)
	})
}

// TestExecGuardRankKilled kills -9 a process playing a worker rank while
// its exec task's command (a shell) waits for a child of its own: the
// guard kills both.
func TestExecGuardRankKilled(t *testing.T) {
	fifo := reportFIFO(t)
	rank := exec.Command("/proc/self/exe", fakeRankArg, "--", "sh", "-c", reportAndWait, "sh", fifo)
	var stderr bytes.Buffer
	rank.Stderr = &stderr
	if err := rank.Start(); err != nil {
		t.Fatal(err)
	}
	ps := readPIDs(t, fifo)
	if len(ps) != 2 {
		rank.Process.Kill()
		t.Fatalf("pids %v, want the shell's and sleep's", ps)
	}
	g := groupOf(t, execModes[1], ps[0], ps[1])
	rank.Process.Kill()
	if err := rank.Wait(); err == nil {
		t.Fatalf("rank killed -9 exited 0; stderr:\n%s", &stderr)
	}
	waitNoGroup(t, g, append(ps, g)...)
}

func TestRunExecGuardBadArgs(t *testing.T) {
	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		{"none", nil, "exec guard: want -- PARENT_PID PATH ARGV0 [ARG…]"},
		{"no-dashes", []string{"1", "/bin/true", "true", "x"}, "exec guard: want -- PARENT_PID PATH ARGV0 [ARG…]"},
		{"no-argv0", []string{"--", "1", "/bin/true"}, "exec guard: want -- PARENT_PID PATH ARGV0 [ARG…]"},
		{"bad-pid", []string{"--", "x", "/bin/true", "true"}, `exec guard: bad parent pid "x"`},
		{"zero-pid", []string{"--", "0", "/bin/true", "true"}, `exec guard: bad parent pid "0"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			if err := kernels.RunExecGuard(c.args); err == nil || err.Error() != c.want {
				t.Errorf("got %v, want %q", err, c.want)
			}
		})
	}
}

// BenchmarkExec measures an exec task running true, directly and under the
// exec guard (one more process start per task).
func BenchmarkExec(b *testing.B) {
	for _, m := range execModes {
		b.Run(m.name, func(b *testing.B) {
			reg, err := kernels.NewRegistry(kernels.BuiltinWith(kernels.BuiltinOptions{ExecGuard: m.guard})...)
			if err != nil {
				b.Fatal(err)
			}
			rt := kerneltest.New(reg, 1)
			for b.Loop() {
				if _, err := rt.Run(b.Context(), kernels.Task{Kernel: "exec", Args: []string{"true"}}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// alive reports whether pid is a live (not zombie) process.
func alive(pid int) bool {
	st, _, ok := procState(pid)
	return ok && st != 'Z'
}

// waitGone waits, at most procTimeout, until none of pids is alive.
func waitGone(t *testing.T, what string, pids ...int) {
	t.Helper()
	deadline := time.Now().Add(procTimeout)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		var left []int
		for _, p := range pids {
			if alive(p) {
				left = append(left, p)
			}
		}
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: processes %v still alive after %v", what, left, procTimeout)
		}
		<-tick.C
	}
}

// setsidChild starts, in the background, a process that leaves the
// command's session and group (setsid) and reports its pid to $1.
const setsidChild = `setsid sh -c 'echo $$ > "$1"; exec sleep 100' sh "$1" &`

// TestExecGuardEndsSetsidChild: a process that left the command's group
// with setsid is ended by the guard when the command exits, when the task
// is cancelled, and when the rank is killed -9.
func TestExecGuardEndsSetsidChild(t *testing.T) {
	t.Run("command exits", func(t *testing.T) {
		// The shell waits for the report, prints the pid and exits,
		// leaving the setsid child behind.
		file := filepath.Join(t.TempDir(), "pid")
		out, err := execModes[1].run(t, t.Context(), nil, "--", "sh", "-c",
			setsidChild+` while [ ! -s "$1" ]; do sleep 0.01; done; cat "$1"`, "sh", file)
		if err != nil {
			t.Fatal(err)
		}
		ps := pids(t, string(out))
		if len(ps) != 1 {
			t.Fatalf("output %q, want the setsid child's pid", out)
		}
		waitGone(t, "setsid child after its command exited", ps[0])
	})
	t.Run("cancelled", func(t *testing.T) {
		fifo := reportFIFO(t)
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		done := make(chan error, 1)
		go func() {
			_, err := execModes[1].run(t, ctx, nil, "--", "sh", "-c", setsidChild+" wait", "sh", fifo)
			done <- err
		}()
		ps := readPIDs(t, fifo)
		if len(ps) != 1 || !alive(ps[0]) {
			t.Fatalf("pids %v, want the live setsid child's", ps)
		}
		if _, g, _ := procState(ps[0]); g != ps[0] {
			t.Fatalf("setsid child %d in group %d, want a group of its own", ps[0], g)
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
		waitGone(t, "setsid child after cancel", ps[0])
	})
	t.Run("rank killed", func(t *testing.T) {
		fifo := reportFIFO(t)
		rank := exec.Command("/proc/self/exe", fakeRankArg, "--", "sh", "-c", setsidChild+" wait", "sh", fifo)
		if err := rank.Start(); err != nil {
			t.Fatal(err)
		}
		ps := readPIDs(t, fifo)
		rank.Process.Kill()
		rank.Wait()
		if len(ps) != 1 {
			t.Fatalf("pids %v, want the setsid child's", ps)
		}
		waitGone(t, "setsid child after the rank was killed -9", ps[0])
	})
}

// BenchmarkExecGuarded is the cost of one guarded exec task (true).
func BenchmarkExecGuarded(b *testing.B) {
	reg, err := kernels.NewRegistry(kernels.BuiltinWith(kernels.BuiltinOptions{ExecGuard: testGuard})...)
	if err != nil {
		b.Fatal(err)
	}
	rt := kerneltest.New(reg, 1)
	for b.Loop() {
		if _, err := rt.Run(b.Context(), kernels.Task{Kernel: "exec", Args: []string{"--", "true"}}); err != nil {
			b.Fatal(err)
		}
	}
}
