package lab_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/qlaunch/qlaunch/kernels"
	"github.com/qlaunch/qlaunch/lab"
	"github.com/qlaunch/qlaunch/launcher/alloc"
	"github.com/qlaunch/qlaunch/launcher/alloc/decide"
	"github.com/qlaunch/qlaunch/launcher/client"
	"github.com/qlaunch/qlaunch/launcher/wire"
)

// allocTopology is a job of one node (a server+manager rank and one worker
// rank of 4 slots) whose server submits allocations of one more node (not
// n1) under the job name name.
func allocTopology(name string, backlogFor, idle time.Duration) string {
	return fmt.Sprintf(`[workers]
ranks_per_node = 1
slots_per_rank = 4
[alloc]
scheduler = "slurm"
nodes = 1
max_allocations = 1
backlog = 8
backlog_for = %q
idle_timeout = %q
walltime = "10m"
drain_lead = "30s"
options = ["--job-name=%s", "--exclude=n1"]
`, backlogFor, idle, name)
}

// startAllocJob starts the first job on n1 and returns it, its client and
// the job name of the allocations its server submits.
func startAllocJob(t *testing.T, c lab.Cluster, idle time.Duration) (*job, *client.Client, string) {
	needNodes(t, c, 2)
	name := jobName(t) + "-alloc"
	t.Cleanup(func() { cancelJobs(t, name) })
	j := newJob(t, c, allocTopology(name, 500*time.Millisecond, idle), c.Nodes[:1], nil)
	j.start(slurm(t, 240*time.Second, j.env, "srun", "-N1", "-w", c.Nodes[0], "-n2", "-O", "--cpu-bind=none", qlaunch(t), j.topo))
	j.wait()
	return j, j.dial(), name
}

// allocList is qlaunch alloc list --format json.
func allocList(t *testing.T, j *job) alloc.Snapshot {
	t.Helper()
	// The server writes its address file once ready and the allocator's
	// control file as soon as ready closes, just after: "no allocator" yet
	// is asked again, for 30 s at most.
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, err := j.qlaunch("alloc", "list", "--address-file", filepath.Join(j.dir, "addr"), "--format", "json")
		if err != nil && strings.Contains(err.Error(), "no allocator:") && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond) // polling for the control file
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		s, err := alloc.DecodeSnapshot(out)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
}

// waitAlloc polls qlaunch alloc list until ok holds (bounded by ctx).
func waitAlloc(t *testing.T, ctx context.Context, j *job, what string, ok func(alloc.Snapshot) bool) alloc.Snapshot {
	t.Helper()
	for {
		s := allocList(t, j)
		if ok(s) {
			return s
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s: not within the test's bound; allocations %+v\nserver stderr:\n%s", what, s, j.err.String())
		case <-time.After(100 * time.Millisecond): // polling the allocator's list
		}
	}
}

// squeueNamed lists the jobs named name that SLURM still runs or queues.
func squeueNamed(t *testing.T, name string) string {
	t.Helper()
	out, err := exec.Command("squeue", "-h", "-n", name, "-o", "%i %T").Output()
	if err != nil {
		t.Fatalf("squeue: %v", err)
	}
	return strings.TrimSpace(string(out))
}

// workerDone sums the tasks every joined worker rank ran, and those of
// the ranks of allocation id.
func workerDone(rows []wire.RankStatus, id string) (all, of uint64) {
	for _, r := range rows {
		if r.Role == "worker" && r.State == wire.RankJoined {
			all += r.Done
			if r.Alloc == id {
				of += r.Done
			}
		}
	}
	return all, of
}

// sleepTasks returns n sleep tasks of ms milliseconds.
func sleepTasks(n, ms int) []kernels.Task {
	ts := make([]kernels.Task, n)
	for i := range ts {
		ts[i] = kernels.Task{Kernel: "sleep", Args: []string{strconv.Itoa(ms)}}
	}
	return ts
}

// TestAllocGrowsAndShrinks: a job on n1 whose topology has an [alloc]
// table gets a backlog of 10^4 sleep tasks; its server submits an
// allocation (sbatch of a job running srun qlaunch TOPOLOGY --join), whose
// ranks join and take work; every task runs exactly once; once idle the
// allocation drains and ends (status: drained, not lost), and when the
// server stops squeue lists nothing and no process is left. It reports
// backlog→submission and submission→first task on the new node.
func TestAllocGrowsAndShrinks(t *testing.T) {
	c := lab.Require(t, os.Getenv)
	j, cl, name := startAllocJob(t, c, 3*time.Second)
	ctx, cancel := context.WithTimeout(t.Context(), 180*time.Second)
	defer cancel()
	if s := allocList(t, j); s.Scheduler != "slurm" || len(s.Allocations) != 0 {
		t.Fatalf("before any backlog: %+v", s)
	}

	const n, ms = 10000, 10
	t0 := time.Now()
	f, err := cl.Map(ctx, sleepTasks(n, ms))
	if err != nil {
		t.Fatal(err)
	}
	s := waitAlloc(t, ctx, j, "an allocation submitted", func(s alloc.Snapshot) bool { return len(s.Allocations) == 1 })
	a := s.Allocations[0]
	// The backlog crossed the threshold as the map arrived; backlog_for
	// (500 ms) is the policy's own wait.
	toSubmit := a.Submitted.Sub(t0) - 500*time.Millisecond
	t.Logf("backlog → sbatch accepted job %s: %v after backlog_for (%v from the map)", a.ID, toSubmit.Round(time.Millisecond), a.Submitted.Sub(t0).Round(time.Millisecond))

	// The first task on the new allocation's ranks.
	var first time.Time
	var ranks []int // the allocation's ranks
	for first.IsZero() {
		rows := statusRows(t, ctx, cl)
		for _, r := range rows {
			if r.Alloc == a.ID && r.Role == "worker" && (r.Done > 0 || r.Busy > 0) {
				first = time.Now()
			}
		}
		if !first.IsZero() {
			for _, r := range rows {
				if r.Alloc == a.ID {
					ranks = append(ranks, r.Rank)
				}
			}
		}
		if ctx.Err() != nil {
			t.Fatalf("no task ran on allocation %s; allocations %+v\n%s", a.ID, allocList(t, j), j.err.String())
		}
		if first.IsZero() {
			time.Sleep(20 * time.Millisecond) // polling status: the tree has no event for a task's start
		}
	}
	startOut, _ := exec.Command("scontrol", "show", "job", a.ID).Output()
	t.Logf("submission → first task on %s: %v (scontrol: %s)", a.ID, first.Sub(a.Submitted).Round(time.Millisecond),
		strings.Join(strings.Fields(grepLine(string(startOut), "StartTime=")), " "))

	if _, err := cl.Wait(ctx, f); err != nil {
		t.Fatalf("the map: %v", err)
	}
	tMap := time.Since(t0)
	rows := statusRows(t, ctx, cl)
	all, of := workerDone(rows, a.ID)
	if all != n || of == 0 {
		t.Fatalf("worker ranks ran %d tasks (%d on allocation %s), want %d, some on it\n%+v", all, of, a.ID, n, rows)
	}
	t.Logf("%d tasks of %d ms in %v: %d on the new allocation, each exactly once", n, ms, tMap.Round(time.Millisecond), of)

	// Idle for idle_timeout: drained, and the job ends.
	s = waitAlloc(t, ctx, j, "the idle allocation ended", func(s alloc.Snapshot) bool { return s.Allocations[0].Phase == decide.Ended })
	a = s.Allocations[0]
	if !strings.HasPrefix(a.Reason, "drained (idle for ") || len(s.Allocations) != 1 {
		t.Fatalf("the allocation ended so: %+v", s)
	}
	t.Logf("drain → job ended: %v (%s)", a.Ended.Sub(a.Drained).Round(time.Millisecond), a.Reason)
	if q := squeueNamed(t, name); q != "" {
		t.Fatalf("squeue still lists the allocation: %s", q)
	}
	// Its top rank (the manager under the server) left drained, with its
	// rank below it; none is lost or still in the tree.
	drained := 0
	for _, r := range statusRows(t, ctx, cl) {
		if !slices.Contains(ranks, r.Rank) {
			continue
		}
		if r.State != wire.RankDrained || r.Rank != slices.Min(ranks) {
			t.Fatalf("rank %d of the drained allocation (ranks %v): %+v", r.Rank, ranks, r)
		}
		drained++
	}
	if drained != 1 || len(ranks) != 2 {
		t.Fatalf("allocation ranks %v: %d shown drained, want its top rank", ranks, drained)
	}
	v, err := cl.Wait(ctx, must(cl.Submit(ctx, kernels.Task{Kernel: "echo", Args: []string{"still serving"}})))
	if err != nil || string(v[0]) != "still serving" {
		t.Fatalf("the first job after the allocation left: %q %v", v, err)
	}

	// By hand: qlaunch alloc add submits one, which joins; remove drains it.
	addr := filepath.Join(j.dir, "addr")
	out, err := j.qlaunch("alloc", "add", "--address-file", addr)
	if err != nil || !strings.HasPrefix(out, "submitted allocation ") {
		t.Fatalf("alloc add: %q %v", out, err)
	}
	id := strings.TrimSpace(strings.TrimPrefix(out, "submitted allocation "))
	waitAlloc(t, ctx, j, "the allocation added by hand joined", func(s alloc.Snapshot) bool {
		return len(s.Allocations) == 2 && s.Allocations[1].ID == id && s.Allocations[1].Phase == decide.Joined
	})
	table, err := j.qlaunch("alloc", "list", "--address-file", addr)
	if err != nil || !strings.Contains(table, "JOB ") || !regexp.MustCompile(`(?m)^`+id+` +joined +2 .*\(by hand\)`).MatchString(table) {
		t.Fatalf("alloc list: %v\n%s", err, table)
	}
	t.Logf("qlaunch alloc list:\n%s", table)
	if st, err := j.qlaunch("status", "--address-file", addr); err != nil || !strings.Contains(st, "scheduler slurm, backlog") || !strings.Contains(st, "(by hand)") {
		t.Fatalf("qlaunch status lacks the allocations: %v\n%s", err, st)
	}
	if out, err := j.qlaunch("alloc", "remove", "--address-file", addr, id); err != nil || strings.TrimSpace(out) != "draining allocation "+id {
		t.Fatalf("alloc remove: %q %v", out, err)
	}
	s = waitAlloc(t, ctx, j, "the allocation removed by hand ended", func(s alloc.Snapshot) bool { return s.Allocations[1].Phase == decide.Ended })
	if r := s.Allocations[1].Reason; !strings.HasPrefix(r, "drained (removed by hand)") {
		t.Fatalf("removed allocation: %q", r)
	}
	stopServer(t, j)
	if q := squeueNamed(t, name); q != "" {
		t.Fatalf("squeue lists allocations after the server stopped: %s", q)
	}
}

func grepLine(text, key string) string {
	for _, f := range strings.Fields(text) {
		if strings.HasPrefix(f, key) {
			return f
		}
	}
	return ""
}

// TestAllocReplacesKilledAllocation: SIGKILL to every rank of a joined
// allocation, as a node failure does (no drain; scancel's SIGTERM, even
// scancel -s KILL's, which SLURM turns into a step cancel, would drain
// them): its ranks are lost, the job ends, their sleep tasks (a
// retryable kernel) run again elsewhere, the allocation is recorded as
// ended without a drain, and, the backlog remaining, the server submits a
// replacement, which joins. Stopping the server then cancels it: squeue
// lists nothing.
func TestAllocReplacesKilledAllocation(t *testing.T) {
	c := lab.Require(t, os.Getenv)
	j, cl, name := startAllocJob(t, c, time.Minute)
	ctx, cancel := context.WithTimeout(t.Context(), 180*time.Second)
	defer cancel()

	const n, ms = 4000, 20
	f, err := cl.Map(ctx, sleepTasks(n, ms))
	if err != nil {
		t.Fatal(err)
	}
	s := waitAlloc(t, ctx, j, "the first allocation joined", func(s alloc.Snapshot) bool {
		return len(s.Allocations) == 1 && s.Allocations[0].Phase == decide.Joined
	})
	first := s.Allocations[0]
	// Once its ranks run tasks, kill the whole job: no SIGTERM, no drain.
	var ranks []int
	for {
		rows := statusRows(t, ctx, cl)
		_, of := workerDone(rows, first.ID)
		if of > 0 {
			for _, r := range rows {
				if r.Alloc == first.ID {
					ranks = append(ranks, r.Rank)
				}
			}
			break
		}
		if ctx.Err() != nil {
			t.Fatal("no task ran on the first allocation")
		}
		time.Sleep(20 * time.Millisecond) // polling status
	}
	killed := killJobRanks(t, j.topo, first.ID)
	t.Logf("killed the ranks of allocation %s: pids %v", first.ID, killed)
	tKill := time.Now()
	s = waitAlloc(t, ctx, j, "a replacement joined", func(s alloc.Snapshot) bool {
		return len(s.Allocations) == 2 && s.Allocations[1].Phase == decide.Joined
	})
	if a := s.Allocations[0]; a.Phase != decide.Ended || !strings.Contains(a.Reason, "ended without a drain") {
		t.Fatalf("the killed allocation: %+v", a)
	}
	t.Logf("kill of %s → replacement %s submitted %v later, joined %v after its submission",
		first.ID, s.Allocations[1].ID, s.Allocations[1].Submitted.Sub(tKill).Round(time.Millisecond),
		s.Allocations[1].Joined.Sub(s.Allocations[1].Submitted).Round(time.Millisecond))
	// The server lost the killed allocation's top rank, and the ranks
	// below it with it.
	lost := 0
	for _, r := range statusRows(t, ctx, cl) {
		if slices.Contains(ranks, r.Rank) && r.State == wire.RankLost {
			t.Logf("rank %d on %s: lost: %s", r.Rank, r.Host, r.Reason)
			lost++
		}
	}
	if lost == 0 {
		t.Fatalf("no rank of the killed allocation %s (ranks %v) is shown lost: %+v", first.ID, ranks, statusRows(t, ctx, cl))
	}
	vals, err := cl.Wait(ctx, f)
	if err != nil || len(vals) != n {
		t.Fatalf("the map after the kill: %d results, %v", len(vals), err)
	}
	stopServer(t, j)
	if q := squeueNamed(t, name); q != "" {
		t.Fatalf("squeue lists allocations after the server stopped: %s", q)
	}
}

// killJobRanks sends SIGKILL to every qlaunch rank of topo running in
// SLURM job id and returns their pids.
func killJobRanks(t *testing.T, topo, id string) []int {
	t.Helper()
	var pids []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err != nil || !strings.Contains(string(cmdline), topo) || !strings.Contains(string(cmdline), "--join") {
			continue
		}
		env, _ := os.ReadFile("/proc/" + e.Name() + "/environ")
		vars := strings.Split(string(env), "\x00")
		if slices.Contains(vars, "SLURM_JOB_ID="+id) && slices.ContainsFunc(vars, func(v string) bool { return strings.HasPrefix(v, "SLURM_PROCID=") }) {
			if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			pids = append(pids, pid)
		}
	}
	if len(pids) == 0 {
		t.Fatalf("no rank of job %s found to kill", id)
	}
	return pids
}

// TestAllocGivesUp: with a partition SLURM does not have, every sbatch
// fails; after three failures in a row (1 s and 2 s apart) the server
// stops submitting and qlaunch alloc list says why, quoting sbatch; the
// job goes on serving on its own node.
func TestAllocGivesUp(t *testing.T) {
	c := lab.Require(t, os.Getenv)
	needNodes(t, c, 1)
	name := jobName(t) + "-alloc"
	t.Cleanup(func() { cancelJobs(t, name) })
	topo := strings.Replace(allocTopology(name, 0, time.Minute), "nodes = 1\n", "nodes = 1\npartition = \"nosuchpartition\"\n", 1)
	j := newJob(t, c, topo, c.Nodes[:1], nil)
	j.start(slurm(t, 120*time.Second, j.env, "srun", "-N1", "-w", c.Nodes[0], "-n2", "-O", "--cpu-bind=none", qlaunch(t), j.topo))
	j.wait()
	cl := j.dial()
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	f, err := cl.Map(ctx, sleepTasks(1000, 50)) // 12 s on 4 slots
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	s := waitAlloc(t, ctx, j, "the allocator gave up", func(s alloc.Snapshot) bool { return s.Error != "" })
	t.Logf("gave up %v after the backlog: %s", time.Since(t0).Round(time.Millisecond), s.Error)
	if !strings.Contains(s.Error, "after 3 failed submissions in a row") || !strings.Contains(s.Error, "nosuchpartition") ||
		!strings.Contains(s.Error, "sbatch") || len(s.Allocations) != 0 {
		t.Fatalf("gave up so: %+v", s)
	}
	if _, err := cl.Wait(ctx, f); err != nil {
		t.Fatalf("the map on the job's own node: %v", err)
	}
	if s2 := allocList(t, j); len(s2.Allocations) != 0 || s2.Error != s.Error {
		t.Fatalf("submitted after giving up: %+v", s2)
	}
	stopServer(t, j)
}
