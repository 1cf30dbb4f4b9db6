package alloc_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/qlaunch/qlaunch/kernels"
	"github.com/qlaunch/qlaunch/launcher"
	"github.com/qlaunch/qlaunch/launcher/alloc"
	"github.com/qlaunch/qlaunch/launcher/alloc/decide"
	"github.com/qlaunch/qlaunch/launcher/launchertest"
	"github.com/qlaunch/qlaunch/launcher/metrics"
	"github.com/qlaunch/qlaunch/launcher/wire"
	"github.com/qlaunch/qlaunch/pbs"
)

// fakePBS puts qsub, qstat and qdel on PATH (no PBS server can run
// here): qsub records its arguments and prints the next id N.fakepbs;
// qstat -x prints the default table with each job's state from the file
// state/ID (Q until a test writes another); qdel records its arguments
// and marks the jobs finished (F). It returns the log of the calls.
func fakePBS(t *testing.T) (log, stateDir string) {
	dir := t.TempDir()
	log, stateDir = filepath.Join(dir, "calls"), filepath.Join(dir, "state")
	if err := os.Mkdir(stateDir, 0o755); err != nil {
		t.Fatal(err)
	}
	scripts := map[string]string{
		"qsub": `n=$(( $(cat "$D/next" 2>/dev/null || echo 0) + 1 )); echo $n >"$D/next"
echo "qsub $*" >>"$D/calls"; echo Q >"$D/state/$n.fakepbs"; echo "$n.fakepbs"`,
		"qstat": `echo "qstat $*" >>"$D/calls"
echo "Job id            Name             User              Time Use S Queue"
echo "----------------  ---------------- ----------------  -------- - -----"
shift
for id in "$@"; do
  if [ -f "$D/state/$id" ]; then echo "$id  qlaunch-alloc  user  00:00:00 $(cat "$D/state/$id") workq"
  else echo "qstat: Unknown Job Id $id" >&2; bad=1; fi
done
exit ${bad:-0}`,
		"qdel": `echo "qdel $*" >>"$D/calls"; for id in "$@"; do echo F >"$D/state/$id"; done`,
	}
	for name, body := range scripts {
		text := "#!/bin/sh\nD=" + dir + "\n" + body + "\n"
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))
	return log, stateDir
}

func calls(t *testing.T, log string) []string {
	b, err := os.ReadFile(log)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSpace(string(b)), "\n")
}

// until polls cond (the allocator acts on its own ticks) for at most 20 s.
func until(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 20 s", what)
		}
		time.Sleep(10 * time.Millisecond) // polling the allocator's state
	}
}

// TestPBSAllocator: on a real in-process runtime with a backlog, the
// allocator submits the qsub join script with qsub (the fake one, which
// records its arguments), follows the job with qstat -x, answers the
// control link (list; remove, which qdels a job not joined; add, up to
// max_allocations), submits a replacement while the backlog lasts, refuses
// a client without the job secret, and qdels what is left when it stops.
func TestPBSAllocator(t *testing.T) {
	log, stateDir := fakePBS(t)
	mon := launcher.NewMonitor()
	tree := launchertest.Start(t, launchertest.Shape{Workers: []int{1}}, launchertest.Options{Monitor: mon})
	dir := t.TempDir()
	script, err := pbs.JoinScript(pbs.JoinScriptConfig{
		ScriptConfig: pbs.ScriptConfig{Topology: "/shared/job.toml", Queue: "workq", Time: "00:10:00", Nodes: 1, TasksPerNode: 2},
		AddressFile:  "/shared/addr", DrainAfter: 540,
	})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "alloc.pbs")
	if err := os.WriteFile(path, []byte(script), 0o700); err != nil {
		t.Fatal(err)
	}
	a := alloc.New(alloc.Config{
		Policy:    decide.Policy{MaxAllocations: 2, Backlog: 3, IdleTimeout: time.Hour},
		Scheduler: alloc.PBS{}, Script: path, Options: []string{"-l", "place=pack"}, Tree: mon,
		Poll: 20 * time.Millisecond, SchedulerPoll: 50 * time.Millisecond,
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ran := make(chan error, 1)
	go func() { ran <- a.Run(ctx) }()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan struct{})
	go func() { defer close(served); alloc.Serve(ctx, ln, tree.Secret, "host0", a, nil) }()

	// A backlog that lasts the whole test: 20 sleep tasks of 30 s on one
	// slot (cancelled when the test ends).
	cl := tree.Client()
	ts := make([]kernels.Task, 20)
	for i := range ts {
		ts[i] = kernels.Task{Kernel: "sleep", Args: []string{"30000"}}
	}
	mapCtx, cancelMap := context.WithCancel(ctx)
	defer cancelMap()
	if _, err := cl.Map(mapCtx, ts); err != nil {
		t.Fatal(err)
	}
	until(t, "a qsub", func() bool { return len(a.Snapshot().Allocations) == 1 })
	if got := calls(t, log)[0]; got != "qsub -l place=pack "+path {
		t.Fatalf("first call %q, want qsub of the script with the options", got)
	}
	until(t, "qstat -x of the job", func() bool { return strings.Contains(strings.Join(calls(t, log), "\n"), "qstat -x 1.fakepbs") })
	if err := os.WriteFile(filepath.Join(stateDir, "1.fakepbs"), []byte("R\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	until(t, "running", func() bool { return a.Snapshot().Allocations[0].Phase == decide.Running })

	list, err := alloc.Ask(ctx, ln.Addr().String(), tree.Secret, "list")
	if err != nil {
		t.Fatal(err)
	}
	snap, err := alloc.DecodeSnapshot(list)
	if err != nil || snap.Scheduler != "pbs" || len(snap.Allocations) != 1 || snap.Allocations[0].ID != "1.fakepbs" || snap.Backlog < 3 {
		t.Fatalf("list: %+v %v", snap, err)
	}
	other, _ := wire.GenerateSecret()
	if _, err := alloc.Ask(ctx, ln.Addr().String(), other, "list"); !errors.Is(err, wire.ErrAuth) {
		t.Fatalf("a client without the job secret: %v, want ErrAuth", err)
	}
	if _, err := alloc.Ask(ctx, ln.Addr().String(), tree.Secret, "remove 9.nope"); err == nil || !strings.Contains(err.Error(), "no allocation") {
		t.Fatalf("remove of an unknown job: %v", err)
	}
	if out, err := alloc.Ask(ctx, ln.Addr().String(), tree.Secret, "remove 1.fakepbs"); err != nil || out != "cancelled allocation 1.fakepbs" {
		t.Fatalf("remove: %q %v", out, err)
	}
	// The backlog remains: a replacement goes in by itself (the first
	// was pending: none while it waited); by hand, one more, up to
	// max_allocations.
	until(t, "a replacement", func() bool { return len(a.Snapshot().Allocations) == 2 })
	if ph := a.Snapshot().Allocations[0].Phase; ph != decide.Ended {
		t.Fatalf("the removed job: %s", ph)
	}
	if out, err := alloc.Ask(ctx, ln.Addr().String(), tree.Secret, "add"); err != nil || out != "submitted allocation 3.fakepbs" {
		t.Fatalf("add: %q %v", out, err)
	}
	if _, err := alloc.Ask(ctx, ln.Addr().String(), tree.Secret, "add"); err == nil || !strings.Contains(err.Error(), "max_allocations") {
		t.Fatalf("add past max_allocations: %v", err)
	}

	// The metrics count the allocations by phase.
	m := scrapeAllocations(t, mon, a)
	if m["ended"] != 1 || m["pending"] != 2 || m["joined"] != 0 || len(m) != len(metrics.AllocPhases) {
		t.Fatalf("qlaunch_allocations: %v", m)
	}

	// Stopping: the live job is qdel'd and the allocator waits for qstat
	// to show it finished.
	cancel()
	if err := <-ran; err != nil {
		t.Fatalf("stop: %v", err)
	}
	<-served
	c := calls(t, log)
	want := []string{"qdel 1.fakepbs", "qsub -l place=pack " + path, "qsub -l place=pack " + path, "qdel 2.fakepbs 3.fakepbs"}
	var got []string
	for _, l := range c {
		if !strings.HasPrefix(l, "qstat") {
			got = append(got, l)
		}
	}
	if strings.Join(got[1:], "\n") != strings.Join(want, "\n") {
		t.Fatalf("calls after the first qsub %q, want %q", got[1:], want)
	}
	for _, id := range []string{"2.fakepbs", "3.fakepbs"} {
		if st, _ := os.ReadFile(filepath.Join(stateDir, id)); strings.TrimSpace(string(st)) != "F" {
			t.Fatalf("job %s left %q", id, st)
		}
	}
}

// scrapeAllocations serves the metrics of a server with an allocator and
// returns qlaunch_allocations by phase from one scrape over HTTP.
func scrapeAllocations(t *testing.T, mon *launcher.Monitor, a *alloc.Allocator) map[string]float64 {
	t.Helper()
	src := struct {
		*launcher.Monitor
		*alloc.Allocator
	}{mon, a}
	ln, err := metrics.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	served := make(chan error, 1)
	go func() { served <- metrics.Serve(ctx, ln, src, slog.New(slog.DiscardHandler)) }()
	defer func() { cancel(); <-served }()
	resp, err := http.Get("http://" + ln.Addr().String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]float64{}
	for _, l := range strings.Split(string(body), "\n") {
		rest, ok := strings.CutPrefix(l, `qlaunch_allocations{phase="`)
		if !ok {
			continue
		}
		phase, val, _ := strings.Cut(rest, `"} `)
		v, err := strconv.ParseFloat(val, 64)
		if err != nil {
			t.Fatalf("sample %q", l)
		}
		m[phase] = v
	}
	return m
}
