package reliability_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/qlaunch/qlaunch/kernels"
	"github.com/qlaunch/qlaunch/launcher/client"
	"github.com/qlaunch/qlaunch/reliability"
)

// TestChaos kills -9 and stops (SIGSTOP) worker ranks at random, seeded,
// while a client maps retryable tasks, on attached runtimes (qlaunch run,
// two worker ranks) and manual trees (qlaunch manager -n and a server),
// alternately. Every run must give every task's result (each task is
// retryable, and the runtime replaces what it started), within a bound,
// and leave no process and no zombie behind. In go test ./... 10 short
// runs, seeds 0-9 with the race detector and 10-19 without (make check's
// two lanes: 20 seeds in all); QLAUNCH_CHAOS_RUNS=N runs seeds 0 to N-1
// (make reliability: 20); QLAUNCH_SOAK=1 (make reliability-long) runs 100
// longer ones.
func TestChaos(t *testing.T) {
	t.Parallel()
	first, runs, tasks, faults := 0, 10, 300, 2
	if !raceEnabled {
		first = 10
	}
	if v := os.Getenv("QLAUNCH_CHAOS_RUNS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("QLAUNCH_CHAOS_RUNS=%q: want a number of runs, 1 or more", v)
		}
		first, runs = 0, n
	}
	if os.Getenv("QLAUNCH_SOAK") == "1" {
		first, runs, tasks, faults = 0, 100, 3000, 3
	}
	rec := newRecord(t, fmt.Sprintf("chaos: %d seeded runs (seeds %d-%d), kill -9 / SIGSTOP of worker ranks", runs, first, first+runs-1))
	var detect []time.Duration
	var restarts, deaths int
	for seed := first; seed < first+runs; seed++ {
		r := chaosRun(t, uint64(seed), tasks, faults)
		detect = append(detect, r.detect...)
		restarts += r.restarts
		deaths += r.deaths
		if t.Failed() {
			t.Fatalf("seed %d failed", seed)
		}
	}
	sort.Slice(detect, func(i, j int) bool { return detect[i] < detect[j] })
	if len(detect) > 0 {
		rec.Detection = fmt.Sprintf("median %s, max %s", ms(detect[len(detect)/2]), ms(detect[len(detect)-1]))
	}
	rec.Left = "0"
	rec.Note = fmt.Sprintf("%d runs x %d tasks, %d faults each: every task's result; %d ranks died, %d restarts", runs, tasks, faults, deaths, restarts)
}

type chaosOutcome struct {
	detect           []time.Duration // fault to the process reaped
	restarts, deaths int
}

// chaosRun is one seeded run.
func chaosRun(t *testing.T, seed uint64, tasks, faults int) (out chaosOutcome) {
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	// Not shorter: the test's own client must answer heartbeats in time
	// from a loaded test process (under -race, with other tests).
	const heartbeat, timeout = 200 * time.Millisecond, 1500 * time.Millisecond
	var (
		dir    string
		c      *client.Client
		logs   func() string
		finish func() []reliability.Process
	)
	manual := seed%2 == 1
	if manual {
		r := newTree(t)
		r.linkArgs = []string{"--heartbeat", heartbeat.String(), "--heartbeat-timeout", timeout.String()}
		_, port := r.manager(1, "-n", "2", "--restarts", "20")
		r.startServer(3, hostPort(port))
		dir, c, logs = r.dir, r.client(), r.logs
		finish = func() []reliability.Process { return r.shutdown() }
	} else {
		a := startAttached(t, "ranks_per_node = 2\nrestarts = 20",
			fmt.Sprintf("[runtime]\nheartbeat = %q\nheartbeat_timeout = %q\n", heartbeat, timeout))
		dir, c, logs = a.dir, a.client(), a.run.out.String
		finish = func() []reliability.Process { a.shutdown(); return nil }
	}
	ts := make([]kernels.Task, tasks)
	for i := range ts {
		if i%2 == 0 {
			ts[i] = kernels.Task{Kernel: "echo", Args: []string{strconv.Itoa(i)}}
		} else {
			ts[i] = kernels.Task{Kernel: "sleep", Args: []string{strconv.Itoa(1 + rng.IntN(8))}}
		}
	}
	ctx, cancel := context.WithTimeout(t.Context(), startBound)
	defer cancel()
	f, err := c.Map(ctx, ts)
	if err != nil {
		t.Fatal(err)
	}
	// Faults at random moments of the map, each on a random live rank.
	faulted := make(chan chaosOutcome, 1)
	go func() {
		var o chaosOutcome
		defer func() { faulted <- o }()
		for range faults {
			tm := time.NewTimer(time.Duration(20+rng.IntN(150)) * time.Millisecond)
			<-tm.C
			pids := liveWorkers(dir)
			if len(pids) == 0 {
				continue
			}
			pid := pids[rng.IntN(len(pids))]
			sig := syscall.SIGKILL
			if rng.IntN(3) == 0 {
				sig = syscall.SIGSTOP
			}
			syscall.Kill(pid, sig)
			if d, ok := gone(pid, exitBound); ok {
				o.detect = append(o.detect, d)
			} else {
				t.Errorf("seed %d: worker %d still there %v after %v", seed, pid, exitBound, sig)
			}
		}
	}()
	vals, err := c.Wait(ctx, f)
	o := <-faulted
	if err != nil {
		t.Fatalf("seed %d (manual %v): %v\n%s", seed, manual, err, logs())
	}
	for i, v := range vals {
		if i%2 == 0 && string(v) != strconv.Itoa(i) {
			t.Fatalf("seed %d: task %d returned %q", seed, i, v)
		}
	}
	if z := zombiesOf(dir); len(z) > 0 {
		t.Errorf("seed %d: zombies %v", seed, z)
	}
	o.restarts = strings.Count(logs(), "worker rank restarted")
	o.deaths = strings.Count(logs(), "worker rank died")
	if left := finish(); len(left) > 0 {
		t.Errorf("seed %d: left %v", seed, left)
	}
	if left := leftUnder(dir, exitBound); len(left) > 0 {
		t.Errorf("seed %d: left after the shutdown: %v", seed, left)
	}
	return o
}

// liveWorkers lists the worker-rank processes under dir that run (not
// stopped).
func liveWorkers(dir string) []int {
	var pids []int
	for _, p := range reliability.Processes(reliability.CmdlineContains(dir)) {
		f := strings.Fields(p.Cmdline)
		if len(f) > 1 && f[1] == "worker" && p.State != "T" {
			pids = append(pids, p.PID)
		}
	}
	sort.Ints(pids)
	return pids
}

// gone waits up to bound for pid to be reaped, and says how long it took.
func gone(pid int, bound time.Duration) (time.Duration, bool) {
	t0 := time.Now()
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for {
		if _, ok := reliability.FindProcess(pid); !ok {
			return time.Since(t0), true
		}
		if time.Since(t0) > bound {
			return 0, false
		}
		<-tick.C
	}
}
