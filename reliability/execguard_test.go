package reliability_test

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/qlaunch/qlaunch/kernels"
	"github.com/qlaunch/qlaunch/reliability"
)

// TestSetsidChildEndsAtShutdown: an exec task starts a child that leaves
// the command's process group and session (setsid) and outlives its
// command's shell, as a daemon would. Once the runtime was shut down
// (SIGINT to the server, every qlaunch process exited), the child is gone
// too: kill(pid, 0) says ESRCH, or it is a zombie its new parent has not
// reaped yet (it exited).
func TestSetsidChildEndsAtShutdown(t *testing.T) {
	t.Parallel()
	rec := newRecord(t, "setsid child of an exec task, runtime shut down")
	r := newTree(t)
	_, port := r.manager(1, "-n", "1")
	r.startServer(3, hostPort(port))
	c := r.client()
	pidFile := filepath.Join(r.dir, "setsid.pid")
	// The child writes its pid once it leads its own session; the task's
	// shell waits for it.
	if _, err := c.Submit(t.Context(), kernels.Task{Kernel: "exec", Args: []string{"--", "sh", "-c",
		`setsid sh -c 'echo $$ > "$1"; exec sleep 1000' sh "$1" & wait`, "sh", pidFile}}); err != nil {
		t.Fatal(err)
	}
	pid := 0
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	deadline := time.Now().Add(startBound)
	for pid == 0 {
		if b, err := os.ReadFile(pidFile); err == nil && strings.HasSuffix(string(b), "\n") {
			pid, _ = strconv.Atoi(strings.TrimSpace(string(b)))
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the task reported no setsid child within %v\n%s", startBound, r.logs())
		}
		<-tick.C
	}
	// Whatever the outcome, the child does not outlive the test.
	t.Cleanup(func() {
		if p, ok := reliability.FindProcess(pid); ok && strings.HasPrefix(p.Cmdline, "sleep 1000") {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	// The pid is written just before the shell execs sleep: wait for the
	// exec (bounded), not for a time.
	p, ok := reliability.FindProcess(pid)
	for ok && !strings.HasPrefix(p.Cmdline, "sleep 1000") && time.Now().Before(deadline) {
		<-tick.C
		p, ok = reliability.FindProcess(pid)
	}
	if !ok || p.Session != pid || !strings.HasPrefix(p.Cmdline, "sleep 1000") {
		t.Fatalf("setsid child %d: %+v (found %v), want sleep 1000 leading a session of its own", pid, p, ok)
	}
	gone := func() bool {
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			return true
		}
		p, ok := reliability.FindProcess(pid)
		return !ok || p.State == "Z"
	}
	t0 := time.Now()
	left := r.shutdown()
	goneAtShutdown := gone()
	deadline = time.Now().Add(exitBound)
	for !gone() {
		if time.Now().After(deadline) {
			t.Fatalf("the setsid child %d of an exec task still runs %v after the runtime's shutdown", pid, exitBound)
		}
		<-tick.C
	}
	rec.Detection = ms(time.Since(t0))
	rec.Left = strconv.Itoa(len(left))
	rec.Note = "child in its own session; detection: from SIGINT to the server until the child was gone"
	if goneAtShutdown {
		rec.Note += " (gone when every qlaunch process had exited)"
	} else {
		rec.Note += " (still there when every qlaunch process had exited)"
	}
}
