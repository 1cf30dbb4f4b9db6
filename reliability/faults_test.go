package reliability_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/qlaunch/qlaunch/kernels"
	"github.com/qlaunch/qlaunch/launcher/client"
	"github.com/qlaunch/qlaunch/reliability"
)

// keepPIDs selects the processes of pids and their children (a manager's
// spawned worker rank): the live part of a tree after a fault.
func keepPIDs(ps ...*proc) func(reliability.Process) bool {
	set := map[int]bool{}
	for _, p := range ps {
		set[p.pid()] = true
	}
	return func(p reliability.Process) bool { return set[p.PID] || set[p.PPID] }
}

func gated(dir string, n int) []kernels.Task {
	ts := make([]kernels.Task, n)
	for i := range ts {
		ts[i] = reliability.GatedTask(dir, i)
	}
	return ts
}

// nextResults takes results of f until it has n.
func nextResults(t *testing.T, c *client.Client, f kernels.Future, n int) []kernels.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), startBound)
	defer cancel()
	var out []kernels.Result
	for len(out) < n {
		rs, err := c.Next(ctx, f)
		if err != nil {
			t.Fatalf("next: %v (have %d of %d results)", err, len(out), n)
		}
		out = append(out, rs...)
	}
	return out
}

// finishes releases gated task i and checks its result.
func finishes(t *testing.T, g *gates, c *client.Client, f kernels.Future, i int) {
	t.Helper()
	g.release(i)
	rs := nextResults(t, c, f, 1)
	if len(rs) != 1 || rs[0].Index != i || rs[0].Err != nil || string(rs[0].Value) != strconv.Itoa(i)+"\n" {
		t.Fatalf("released task %d: %+v, want its value", i, rs)
	}
}

// stillServes checks that the tree runs a new task.
func stillServes(t *testing.T, c *client.Client) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), startBound)
	defer cancel()
	f, err := c.Submit(ctx, kernels.Task{Kernel: "echo", Args: []string{"still", "here"}})
	if err != nil {
		t.Fatal(err)
	}
	if vs, err := c.Wait(ctx, f); err != nil || string(vs[0]) != "still here" {
		t.Fatalf("after the fault: %q %v", vs, err)
	}
}

func leftNote(rec *record, left []reliability.Process) {
	rec.Left = strconv.Itoa(len(left))
}

// TestWorkerKilled kills -9 a worker rank while it runs a task: the task
// fails naming the rank and host, the other finishes, the rank's task
// process goes with it.
func TestWorkerKilled(t *testing.T) {
	t.Parallel()
	rec := newRecord(t, "worker rank kill -9 mid-task")
	r := newTree(t)
	workers := r.flat(2)
	g := newGates(t, r.dir, 2)
	c := r.client()
	f, err := c.Map(t.Context(), gated(r.dir, 2))
	if err != nil {
		t.Fatal(err)
	}
	a, b := g.next(), g.next()
	ra, rb := rankOf(t, a.ppid), rankOf(t, b.ppid)
	if ra == rb {
		t.Fatalf("both tasks on rank %d", ra)
	}
	t0 := time.Now()
	workers[ra].cmd.Process.Kill()
	rs := nextResults(t, c, f, 1)
	detect := time.Since(t0)
	if rs[0].Index != a.index {
		t.Fatalf("first result after the kill is task %d's, want %d's", rs[0].Index, a.index)
	}
	lostError(t, rs[0].Err, ra)
	rec.Detection = ms(detect)
	finishes(t, g, c, f, b.index)
	left := r.leftover(exitBound, keepPIDs(r.server, r.procs[0], workers[rb]))
	leftNote(rec, left)
	if len(left) > 0 {
		t.Errorf("left after the kill: %v", left)
	}
	stillServes(t, c)
	rec.Note = "exec task on the rank: lost, rank " + strconv.Itoa(ra) + " named; other task finished"
	r.shutdown()
}

// TestManagerKilled kills -9 a manager with a worker rank and a lower
// manager (with its own worker rank) under it.
func TestManagerKilled(t *testing.T) {
	t.Parallel()
	rec := newRecord(t, "manager kill -9 (sub-manager + workers below)")
	r := newTree(t)
	_, p2 := r.manager(5, "-n", "1")
	m1, p1 := r.manager(3, "-n", "1", "-m", hostPort(p2))
	m0, p0 := r.manager(1, "-n", "1")
	r.startServer(7, hostPort(p0), hostPort(p1))
	g := newGates(t, r.dir, 3)
	c := r.client()
	f, err := c.Map(t.Context(), gated(r.dir, 3))
	if err != nil {
		t.Fatal(err)
	}
	byRank := map[int]readyLine{}
	for range 3 {
		l := g.next()
		byRank[rankOf(t, l.ppid)] = l
	}
	if len(byRank) != 3 || byRank[2].ppid == 0 || byRank[4].ppid == 0 || byRank[6].ppid == 0 {
		t.Fatalf("tasks on ranks %v, want 2, 4 and 6", byRank)
	}
	t0 := time.Now()
	m1.cmd.Process.Kill()
	rs := nextResults(t, c, f, 2)
	rec.Detection = ms(time.Since(t0))
	for _, res := range rs {
		if res.Index != byRank[4].index && res.Index != byRank[6].index {
			t.Fatalf("result of task %d after the kill, want those of ranks 4 and 6", res.Index)
		}
		lostError(t, res.Err, 3)
	}
	finishes(t, g, c, f, byRank[2].index)
	left := r.leftover(exitBound, keepPIDs(r.server, m0))
	leftNote(rec, left)
	if len(left) > 0 {
		t.Errorf("left after killing the manager: %v", left)
	}
	stillServes(t, c)
	rec.Note = "2 tasks below: lost naming manager rank 3; task on rank 2 finished"
	r.shutdown()
}

// TestWorkerHung stops a worker rank (SIGSTOP): the heartbeats find it.
func TestWorkerHung(t *testing.T) {
	t.Parallel()
	rec := newRecord(t, "worker rank SIGSTOP (hang)")
	r := newTree(t)
	// A short configured failure detection: heartbeats every 200 ms, a
	// peer silent for 2 s is lost; checked every heartbeat, so a hang is
	// found within timeout + 2 heartbeats (the last heartbeat received
	// may precede the stop by one), plus scheduling slack.
	const heartbeat, timeout = 200 * time.Millisecond, 2 * time.Second
	r.linkArgs = []string{"--heartbeat", heartbeat.String(), "--heartbeat-timeout", timeout.String()}
	workers := r.flat(2)
	g := newGates(t, r.dir, 2)
	c := r.client()
	f, err := c.Map(t.Context(), gated(r.dir, 2))
	if err != nil {
		t.Fatal(err)
	}
	a, b := g.next(), g.next()
	ra, rb := rankOf(t, a.ppid), rankOf(t, b.ppid)
	victim := workers[ra]
	t0 := time.Now()
	victim.cmd.Process.Signal(syscall.SIGSTOP)
	rs := nextResults(t, c, f, 1)
	detect := time.Since(t0)
	if rs[0].Index != a.index {
		t.Fatalf("first result after the stop is task %d's, want %d's", rs[0].Index, a.index)
	}
	lostError(t, rs[0].Err, ra)
	rec.Detection = ms(detect)
	if lo, hi := timeout-heartbeat, timeout+2*heartbeat+time.Second; detect < lo || detect > hi {
		t.Errorf("hang detected after %v, want within [%v, %v] (--heartbeat %v --heartbeat-timeout %v)", detect, lo, hi, heartbeat, timeout)
	}
	finishes(t, g, c, f, b.index)
	// Continued, the rank finds its link closed and exits on its own.
	victim.cmd.Process.Signal(syscall.SIGCONT)
	if !victim.exited(exitBound) {
		t.Errorf("the hung rank still runs %v after SIGCONT", exitBound)
	}
	left := r.leftover(exitBound, keepPIDs(r.server, r.procs[0], workers[rb]))
	leftNote(rec, left)
	if len(left) > 0 {
		t.Errorf("left after the hang: %v", left)
	}
	stillServes(t, c)
	rec.Note = "--heartbeat 200ms --heartbeat-timeout 2s; found within timeout+2 heartbeats+1s; rank exits after SIGCONT"
	r.shutdown()
}

// TestClientKilled kills -9 a client process with tasks running: they are
// cancelled (their processes end) and the runtime serves a new client.
func TestClientKilled(t *testing.T) {
	t.Parallel()
	rec := newRecord(t, "client kill -9 mid-Map")
	r := newTree(t)
	r.flat(2)
	g := newGates(t, r.dir, 2)
	env := append(append([]string{}, r.env...), "QLAUNCH_ADDR="+r.serverAddr)
	holder := startProc(t, env, "client", driverBin, "hold", "-n", "2", "-dir", r.dir)
	a, b := g.next(), g.next()
	t0 := time.Now()
	holder.cmd.Process.Kill()
	if !holder.exited(exitBound) {
		t.Fatal("the killed client did not exit")
	}
	// Its tasks are cancelled: the exec kernel kills their processes.
	gone := func(pid int) bool { p, ok := reliability.FindProcess(pid); return !ok || p.State == "Z" }
	deadline := time.Now().Add(exitBound)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !gone(a.pid) || !gone(b.pid) {
		if time.Now().After(deadline) {
			t.Fatalf("tasks of the killed client still run %v later", exitBound)
		}
		<-tick.C
	}
	rec.Detection = ms(time.Since(t0))
	left := r.leftover(exitBound, keepPIDs(r.procs...))
	leftNote(rec, left)
	if len(left) > 0 {
		t.Errorf("left after the client's death: %v", left)
	}
	stillServes(t, r.client())
	rec.Note = "detection: until both task processes were killed; a new client is served"
	r.shutdown()
}

// TestServerKilled kills -9 the server: every manager and worker rank
// exits on its own.
func TestServerKilled(t *testing.T) {
	t.Parallel()
	rec := newRecord(t, "server kill -9")
	r := newTree(t)
	r.flat(2)
	g := newGates(t, r.dir, 2)
	c := r.client()
	f, err := c.Map(t.Context(), gated(r.dir, 2))
	if err != nil {
		t.Fatal(err)
	}
	g.next()
	g.next()
	t0 := time.Now()
	r.server.cmd.Process.Kill()
	ctx, cancel := context.WithTimeout(t.Context(), startBound)
	defer cancel()
	if _, err := c.Next(ctx, f); err == nil || errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("client after the server's death: %v, want the connection lost", err)
	}
	rec.Detection = ms(time.Since(t0))
	for _, p := range r.procs {
		if !p.exited(exitBound) {
			t.Errorf("%s still runs %v after the server's death", p.name, exitBound)
		}
	}
	left := r.leftover(exitBound, nil)
	leftNote(rec, left)
	if len(left) > 0 {
		t.Errorf("left after the server's death: %v", left)
	}
	rec.Note = "every rank exited in " + ms(time.Since(t0))
}

// proxy forwards connections to target until cut.
type proxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	conns  []net.Conn
	wg     sync.WaitGroup
}

func newProxy(t *testing.T, target string) *proxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, target: target}
	p.wg.Go(func() {
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			out, err := net.Dial("tcp", target)
			if err != nil {
				in.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, in, out)
			p.mu.Unlock()
			p.wg.Go(func() { io.Copy(out, in); out.Close() })
			p.wg.Go(func() { io.Copy(in, out); in.Close() })
		}
	})
	t.Cleanup(func() { p.cut(); p.wg.Wait() })
	return p
}

// cut closes every forwarded connection and stops accepting.
func (p *proxy) cut() {
	p.ln.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
}

// TestLinkCut closes the server–manager link from outside (a proxy in
// between): the manager's tasks are lost, the manager and its worker rank
// exit, the rest goes on.
func TestLinkCut(t *testing.T) {
	t.Parallel()
	rec := newRecord(t, "server-manager link cut")
	r := newTree(t)
	m1, p1 := r.manager(3, "-n", "1")
	m0, p0 := r.manager(1, "-n", "1")
	px := newProxy(t, hostPort(p1))
	r.startServer(5, hostPort(p0), px.ln.Addr().String())
	g := newGates(t, r.dir, 2)
	c := r.client()
	f, err := c.Map(t.Context(), gated(r.dir, 2))
	if err != nil {
		t.Fatal(err)
	}
	byRank := map[int]readyLine{}
	for range 2 {
		l := g.next()
		byRank[rankOf(t, l.ppid)] = l
	}
	if len(byRank) != 2 || byRank[2].ppid == 0 || byRank[4].ppid == 0 {
		t.Fatalf("tasks on ranks %v, want 2 and 4", byRank)
	}
	t0 := time.Now()
	px.cut()
	rs := nextResults(t, c, f, 1)
	rec.Detection = ms(time.Since(t0))
	if rs[0].Index != byRank[4].index {
		t.Fatalf("result of task %d after the cut, want %d's", rs[0].Index, byRank[4].index)
	}
	lostError(t, rs[0].Err, 3)
	finishes(t, g, c, f, byRank[2].index)
	if !m1.exited(exitBound) {
		t.Errorf("the cut-off manager still runs %v later", exitBound)
	}
	left := r.leftover(exitBound, keepPIDs(r.server, m0))
	leftNote(rec, left)
	if len(left) > 0 {
		t.Errorf("left after the cut: %v", left)
	}
	stillServes(t, c)
	rec.Note = "task below: lost naming rank 3; cut-off manager and its rank exited"
	r.shutdown()
}

// TestWorkerKilledExecGrandchild kills -9 a worker rank whose exec task
// runs a command that itself started a process (a shell running a
// pipeline or a script): nothing of the task may be left.
func TestWorkerKilledExecGrandchild(t *testing.T) {
	t.Parallel()
	rec := newRecord(t, "worker kill -9, exec task with a grandchild")
	r := newTree(t)
	workers := r.flat(1)
	g := newGates(t, r.dir, 1)
	c := r.client()
	// The outer shell waits for a second shell (its child), which reports
	// and waits for the gate.
	inner := fmt.Sprintf(`echo "0 $PPID $$" > '%s'; read x < '%s'`, reliability.ReadyFIFO(r.dir), reliability.GateFIFO(r.dir, 0))
	script := `sh -c "$0"; echo 0`
	f, err := c.Submit(t.Context(), kernels.Task{Kernel: "exec", Args: []string{"--", "sh", "-c", script, inner}})
	if err != nil {
		t.Fatal(err)
	}
	g.next()
	t0 := time.Now()
	workers[2].cmd.Process.Kill()
	rs := nextResults(t, c, f, 1)
	rec.Detection = ms(time.Since(t0))
	lostError(t, rs[0].Err, 2)
	left := r.leftover(exitBound, keepPIDs(r.server, r.procs[0]))
	leftNote(rec, left)
	if len(left) > 0 {
		t.Errorf("left after killing the rank: %v", left)
	}
	r.shutdown()
}
