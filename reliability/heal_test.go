package reliability_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/qlaunch/qlaunch/kernels"
	"github.com/qlaunch/qlaunch/launcher/client"
	"github.com/qlaunch/qlaunch/launcher/wire"
	"github.com/qlaunch/qlaunch/reliability"
)

// The self-healing tests: worker ranks that the runtime started (qlaunch
// run, qlaunch manager -n) die or hang; the runtime reaps and replaces
// them, retries their retryable tasks on the replacement, fails the others
// naming the rank and the signal, and, when it may not replace them, fails
// every later task at once saying that no slot is left.

// killBound is how long a client may wait for the outcome of a task whose
// rank was killed: the runtime sees the death at once (the socket's EOF,
// the process's wait), so this only absorbs a loaded test machine.
const killBound = time.Second

// attachedRun is a "qlaunch run TOPOLOGY -- reldriver idle" of a test: an
// attached runtime that stays up until SIGINT.
type attachedRun struct {
	t      *testing.T
	dir    string
	run    *proc
	addr   string
	secret wire.Secret
}

// startAttached starts an attached runtime with one worker rank (rank 1)
// of two slots; extra is more TOML: keys of [workers] first, then tables.
func startAttached(t *testing.T, workers, tables string) *attachedRun {
	t.Helper()
	dir := t.TempDir()
	a := &attachedRun{t: t, dir: dir}
	t.Cleanup(func() {
		for _, p := range reliability.Processes(reliability.CmdlineContains(dir)) {
			syscall.Kill(p.PID, syscall.SIGCONT)
			syscall.Kill(p.PID, syscall.SIGKILL)
		}
	})
	topo := filepath.Join(dir, "topology.toml")
	text := "[workers]\nranks_per_node = 1\nslots_per_rank = 2\n" + workers + "\n" + tables
	if err := os.WriteFile(topo, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	secretPath, addrPath := filepath.Join(dir, "secret"), filepath.Join(dir, "addr")
	env := []string{"QLAUNCH_ADDR=", "QLAUNCH_SECRET_FILE=" + secretPath, "QLAUNCH_ADDRESS_FILE=" + addrPath}
	a.run = startProc(t, env, "qlaunch run", qlaunchBin, "run", topo, "--", driverBin, "idle", "-dir", dir)
	deadline := time.Now().Add(startBound)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		b, err := os.ReadFile(addrPath)
		if err == nil && len(strings.TrimSpace(string(b))) > 0 {
			// The address is the file's first line; pid, host and the
			// secret file follow.
			a.addr, _, _ = strings.Cut(strings.TrimSpace(string(b)), "\n")
			a.addr = strings.TrimSpace(a.addr)
			break
		}
		if time.Now().After(deadline) || a.run.exited(0) {
			t.Fatalf("attached runtime not ready after %v:\n%s", startBound, a.run.out)
		}
		<-tick.C
	}
	s, err := wire.LoadSecretFile(secretPath)
	if err != nil {
		t.Fatal(err)
	}
	a.secret = s
	return a
}

func (a *attachedRun) client() *client.Client {
	a.t.Helper()
	c, err := client.Dial(a.t.Context(), a.addr, client.Options{Secret: a.secret, Host: "reliability-test"})
	if err != nil {
		a.t.Fatal(err)
	}
	a.t.Cleanup(func() { c.Close() })
	return c
}

// shutdown stops the runtime with SIGINT and checks that nothing of it is
// left, zombies included.
func (a *attachedRun) shutdown() {
	a.t.Helper()
	a.run.cmd.Process.Signal(syscall.SIGINT)
	if !a.run.exited(exitBound) {
		a.t.Errorf("qlaunch run still running %v after SIGINT:\n%s", exitBound, a.run.out)
	}
	if left := leftUnder(a.dir, exitBound); len(left) > 0 {
		a.t.Errorf("processes left after the shutdown: %v", left)
	}
}

// leftUnder waits up to bound for every process naming dir, zombies
// included, to be gone; it returns those still there.
func leftUnder(dir string, bound time.Duration) []reliability.Process {
	deadline := time.Now().Add(bound)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		var left []reliability.Process
		for _, p := range reliability.Processes(func(reliability.Process) bool { return true }) {
			if strings.Contains(p.Cmdline, dir) {
				left = append(left, p)
			}
		}
		left = append(left, zombiesOf(dir)...)
		if len(left) == 0 || time.Now().After(deadline) {
			return left
		}
		<-tick.C
	}
}

// zombiesOf lists zombie processes whose parent names dir (a rank that a
// runtime process did not reap).
func zombiesOf(dir string) []reliability.Process {
	parents := map[int]bool{}
	for _, p := range reliability.Processes(reliability.CmdlineContains(dir)) {
		parents[p.PID] = true
	}
	ents, _ := os.ReadDir("/proc")
	var out []reliability.Process
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if p, ok := reliability.FindProcess(pid); ok && p.State == "Z" && parents[p.PPID] {
			out = append(out, p)
		}
	}
	return out
}

// workerPID returns the pid of the live worker-rank process rank of the
// runtime under dir, waiting up to startBound for one other than not.
func workerPID(t *testing.T, dir string, rank, not int) int {
	t.Helper()
	deadline := time.Now().Add(startBound)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		for _, p := range reliability.Processes(reliability.CmdlineContains(dir)) {
			f := strings.Fields(p.Cmdline)
			if len(f) > 1 && f[1] == "worker" && strings.Contains(p.Cmdline, " --rank "+strconv.Itoa(rank)+" ") && p.PID != not && p.State != "T" {
				return p.PID
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no worker rank %d (other than pid %d) within %v", rank, not, startBound)
		}
		<-tick.C
	}
}

// reaped waits for pid to be gone (not even a zombie).
func reaped(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(exitBound)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		if _, ok := reliability.FindProcess(pid); !ok {
			return
		}
		if time.Now().After(deadline) {
			p, _ := reliability.FindProcess(pid)
			t.Fatalf("dead worker rank %v not reaped after %v", p, exitBound)
		}
		<-tick.C
	}
}

// lostWith checks that err is a lost-rank error naming rank on this host
// and saying cause.
func lostWith(t *testing.T, err error, rank int, cause string) {
	t.Helper()
	lostError(t, err, rank)
	t.Logf("error: %v", err)
	if !strings.Contains(err.Error(), cause) {
		t.Fatalf("error %q does not say %q", err, cause)
	}
}

// resultOf waits for the result of future f of c (one task).
func resultOf(t *testing.T, c *client.Client, f kernels.Future, bound time.Duration) ([]byte, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), bound)
	defer cancel()
	vs, err := c.Wait(ctx, f)
	if errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("no result within %v", bound)
	}
	if err != nil {
		return nil, err
	}
	return vs[0], nil
}

func submit(t *testing.T, c *client.Client, task kernels.Task) kernels.Future {
	t.Helper()
	f, err := c.Submit(t.Context(), task)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// killMidTask runs a gated (non-retryable) exec task and a retryable sleep
// on worker rank rank (under dir), kills -9 the rank once the gated task
// runs, and checks the gated task's error: it names the rank, its host and
// the signal. It returns the two futures, the rank's old pid and how long
// the error took.
func killMidTask(t *testing.T, c *client.Client, dir string, rank int) (sleep kernels.Future, old int, detect time.Duration) {
	t.Helper()
	g := newGates(t, dir, 1)
	gated := submit(t, c, reliability.GatedTask(dir, 0))
	sleep = submit(t, c, kernels.Task{Kernel: "sleep", Args: []string{"300"}})
	g.next()
	old = workerPID(t, dir, rank, 0)
	t0 := time.Now()
	syscall.Kill(old, syscall.SIGKILL)
	_, err := resultOf(t, c, gated, startBound)
	detect = time.Since(t0)
	lostWith(t, err, rank, "killed by signal 9 (SIGKILL)")
	if detect > killBound {
		t.Errorf("the killed rank's task failed after %v, want within %v", detect, killBound)
	}
	return sleep, old, detect
}

// healed checks that the killed rank was reaped and replaced, that the
// retryable task ran on the replacement, and that a new task runs.
func healed(t *testing.T, c *client.Client, dir string, rank, old int, sleep kernels.Future) {
	t.Helper()
	if _, err := resultOf(t, c, sleep, startBound); err != nil {
		t.Fatalf("retryable task of the killed rank: %v, want it retried on the replacement", err)
	}
	reaped(t, old)
	workerPID(t, dir, rank, old)
	v, err := resultOf(t, c, submit(t, c, kernels.Task{Kernel: "echo", Args: []string{"after"}}), startBound)
	if err != nil || string(v) != "after" {
		t.Fatalf("a task after the restart: %q, %v", v, err)
	}
}

// noSlotLeft checks that a task submitted after rank was lost for good
// fails within 1 s, saying that no slot is left and naming the rank.
func noSlotLeft(t *testing.T, c *client.Client, rank int) time.Duration {
	t.Helper()
	t0 := time.Now()
	_, err := resultOf(t, c, submit(t, c, kernels.Task{Kernel: "echo", Args: []string{"late"}}), startBound)
	took := time.Since(t0)
	if err == nil {
		t.Fatal("a task ran with no worker slot left")
	}
	lostWith(t, err, rank, "no worker slot is left")
	if !strings.Contains(err.Error(), "killed by signal 9 (SIGKILL)") {
		t.Errorf("error %q does not say how the rank died", err)
	}
	if took > time.Second {
		t.Errorf("the task failed after %v, want within 1s", took)
	}
	return took
}

// TestAttachedWorkerKilledRestarted: qlaunch run, kill -9 of the only
// worker rank mid-task.
func TestAttachedWorkerKilledRestarted(t *testing.T) {
	t.Parallel()
	rec := newRecord(t, "attached: only worker rank kill -9, restarted")
	a := startAttached(t, "restarts = 2", "")
	c := a.client()
	sleep, old, detect := killMidTask(t, c, a.dir, 1)
	rec.Detection = ms(detect)
	healed(t, c, a.dir, 1, old, sleep)
	rec.Note = "exec task: lost naming rank 1 and signal 9; retryable sleep retried on the replacement; reaped; new task ran"
	a.shutdown()
	rec.Left = strconv.Itoa(len(leftUnder(a.dir, 0)))
}

// TestAttachedNoRestartNoSlot: qlaunch run with restarts = 0: the rank's
// tasks and every later one fail at once naming the rank.
func TestAttachedNoRestartNoSlot(t *testing.T) {
	t.Parallel()
	rec := newRecord(t, "attached: restarts = 0, later task fails")
	a := startAttached(t, "restarts = 0", "")
	c := a.client()
	sleep, old, detect := killMidTask(t, c, a.dir, 1)
	rec.Detection = ms(detect)
	if _, err := resultOf(t, c, sleep, startBound); err == nil {
		t.Fatal("the retryable task ran with no worker slot left")
	} else {
		lostWith(t, err, 1, "no worker slot is left")
	}
	reaped(t, old)
	took := noSlotLeft(t, c, 1)
	rec.Note = fmt.Sprintf("later task failed after %v naming rank 1 and signal 9", took.Round(time.Millisecond))
	a.shutdown()
	rec.Left = strconv.Itoa(len(leftUnder(a.dir, 0)))
}

// TestAttachedWorkerHungReplaced: a SIGSTOPped worker rank is found by the
// heartbeats, killed, reaped and replaced.
func TestAttachedWorkerHungReplaced(t *testing.T) {
	t.Parallel()
	rec := newRecord(t, "attached: only worker rank SIGSTOP, killed and restarted")
	const heartbeat, timeout = 200 * time.Millisecond, time.Second
	a := startAttached(t, "restarts = 2", fmt.Sprintf("[runtime]\nheartbeat = %q\nheartbeat_timeout = %q\n", heartbeat, timeout))
	c := a.client()
	g := newGates(t, a.dir, 1)
	gated := submit(t, c, reliability.GatedTask(a.dir, 0))
	g.next()
	old := workerPID(t, a.dir, 1, 0)
	t0 := time.Now()
	syscall.Kill(old, syscall.SIGSTOP)
	_, err := resultOf(t, c, gated, startBound)
	detect := time.Since(t0)
	lostWith(t, err, 1, "no heartbeat")
	rec.Detection = ms(detect)
	if lo, hi := timeout-heartbeat, timeout+2*heartbeat+time.Second; detect < lo || detect > hi {
		t.Errorf("hang found after %v, want within [%v, %v]", detect, lo, hi)
	}
	reaped(t, old)
	v, err := resultOf(t, c, submit(t, c, kernels.Task{Kernel: "echo", Args: []string{"after"}}), startBound)
	if err != nil || string(v) != "after" {
		t.Fatalf("a task after the restart: %q, %v", v, err)
	}
	workerPID(t, a.dir, 1, old)
	rec.Note = "heartbeat 200ms, timeout 1s: lost naming rank 1; stopped process killed, reaped, replaced"
	a.shutdown()
	rec.Left = strconv.Itoa(len(leftUnder(a.dir, 0)))
}

// manualTree starts qlaunch manager -n 2 (worker rank 2) with restarts
// and a server.
func manualTree(t *testing.T, restarts int) *tree {
	r := newTree(t)
	_, port := r.manager(1, "-n", "2", "--restarts", strconv.Itoa(restarts))
	r.startServer(3, hostPort(port))
	return r
}

// TestManualWorkerKilledRestarted: qlaunch manager -n, kill -9 of its
// worker rank mid-task.
func TestManualWorkerKilledRestarted(t *testing.T) {
	t.Parallel()
	rec := newRecord(t, "manual: manager -n worker rank kill -9, restarted")
	r := manualTree(t, 2)
	c := r.client()
	sleep, old, detect := killMidTask(t, c, r.dir, 2)
	rec.Detection = ms(detect)
	healed(t, c, r.dir, 2, old, sleep)
	rec.Note = "exec task: lost naming rank 2 and signal 9; retryable sleep retried on the replacement; reaped; new task ran"
	left := r.shutdown()
	if z := zombiesOf(r.dir); len(z) > 0 {
		t.Errorf("zombies: %v", z)
	}
	rec.Left = strconv.Itoa(len(left))
}

// TestManualNoRestartNoSlot: qlaunch manager -n --restarts 0: a later
// task fails at once at the server, naming the rank the manager lost.
func TestManualNoRestartNoSlot(t *testing.T) {
	t.Parallel()
	rec := newRecord(t, "manual: --restarts 0, later task fails")
	r := manualTree(t, 0)
	c := r.client()
	_, old, detect := killMidTask(t, c, r.dir, 2)
	rec.Detection = ms(detect)
	reaped(t, old)
	took := noSlotLeft(t, c, 2)
	rec.Note = fmt.Sprintf("later task failed after %v naming rank 2 and signal 9", took.Round(time.Millisecond))
	rec.Left = strconv.Itoa(len(r.shutdown()))
}
