package launcher_test

import (
	"context"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/qlaunch/qlaunch/launcher"
)

// TestRankFrozenBeforeJoinIsKilled: a worker-rank process that never
// connects (here a process that is not a rank at all, as one SIGSTOPped
// between its start and its hello looks to the runtime) is killed once
// the join timeout after its start passed, and its loss names why; before,
// the runtime waited for it for ever (the chaos test's frozen rank).
func TestRankFrozenBeforeJoinIsKilled(t *testing.T) {
	t.Parallel()
	a, err := launcher.LaunchAttached(launcher.AttachedConfig{
		NodeConfig: launcher.NodeConfig{Host: "here", Link: launcher.LinkConfig{Heartbeat: 100 * time.Millisecond, HeartbeatTimeout: time.Second}},
		Workers:    []launcher.WorkerSpec{{Rank: 1, Slots: 1}}, Restarts: -1,
		StartTimeout: time.Minute,
		Command:      func(launcher.WorkerSpec, string, string) *exec.Cmd { return exec.Command("sleep", "1000") },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	pid := a.Supervisor().PIDs()[1]
	if pid == 0 {
		t.Fatal("no process for rank 1")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	err = a.WaitReady(ctx)
	if err == nil || !strings.Contains(err.Error(), "started, but not connected within 5s") || !strings.Contains(err.Error(), "SIGKILL") {
		t.Fatalf("WaitReady: %v; want the rank killed for not connecting within the join timeout", err)
	}
	if err := syscall.Kill(pid, 0); err == nil {
		t.Fatalf("the frozen rank's process %d still exists", pid)
	}
}
