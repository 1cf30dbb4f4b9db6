package cli

import (
	"encoding/json"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/qlaunch/qlaunch/kernels"
	"github.com/qlaunch/qlaunch/kernels/synth"
	"github.com/qlaunch/qlaunch/launcher"
	"github.com/qlaunch/qlaunch/launcher/client"
)

// slotRuntime is an attached runtime whose one worker rank is a qlaunch
// worker process with a given number of slots, and a client of it.
type slotRuntime struct {
	slots  int
	a      *launcher.Attached
	c      *client.Client
	worker *exec.Cmd
}

// startSlotRuntime starts the runtime; procs, when positive, is the
// GOMAXPROCS of the worker process.
func startSlotRuntime(tb testing.TB, slots, procs int) *slotRuntime {
	tb.Helper()
	reg, err := Registry()
	if err != nil {
		tb.Fatal(err)
	}
	ctx := tb.Context()
	var worker *exec.Cmd
	a, err := launcher.StartAttached(ctx, launcher.AttachedConfig{
		NodeConfig: launcher.NodeConfig{Host: "localhost", Registry: reg},
		Workers:    []launcher.WorkerSpec{{Rank: 1, Slots: slots}},
		Command: func(spec launcher.WorkerSpec, parent, secretFile string) *exec.Cmd {
			worker = exec.Command(qlaunchBin, "worker", strconv.Itoa(spec.Slots), "--manager", parent,
				"--rank", strconv.Itoa(spec.Rank), "--secret-file", secretFile)
			if procs > 0 {
				worker.Env = append(os.Environ(), "GOMAXPROCS="+strconv.Itoa(procs))
			}
			return worker
		},
	})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { a.Close() })
	c, err := client.Dial(ctx, a.Addr, client.Options{Secret: a.Secret})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { c.Close() })
	return &slotRuntime{slots: slots, a: a, c: c, worker: worker}
}

// run runs one task and returns its result and the wall time it took.
func (r *slotRuntime) run(tb testing.TB, t kernels.Task) ([]byte, time.Duration) {
	tb.Helper()
	start := time.Now()
	f, err := r.c.Submit(tb.Context(), t)
	if err != nil {
		tb.Fatal(err)
	}
	vals, err := r.c.Wait(tb.Context(), f)
	if err != nil {
		tb.Fatalf("%d slots: %v", r.slots, err)
	}
	return vals[0], time.Since(start)
}

// BenchmarkSynthToffoliSlots synthesises toffoli on two attached runtimes
// started side by side, one worker process with 1 slot and one with 2,
// alternating between them, and reports the speed-up of 2 slots over 1:
// the median (and extremes) over iterations of the ratio of the two
// times, each pair measured back to back so that load from elsewhere hits
// both alike, and the CPU time of the worker processes and of this one
// (server and client). The worker processes run with Go's default
// GOMAXPROCS (every CPU), or with GOMAXPROCS equal to their slots.
func BenchmarkSynthToffoliSlots(b *testing.B) {
	for _, procs := range []string{"default", "slots"} {
		b.Run("gomaxprocs="+procs, func(b *testing.B) { benchSynthSlots(b, procs == "slots") })
	}
}

// toffoliTask is the synth task of the toffoli target, seed 1.
func toffoliTask(tb testing.TB) kernels.Task {
	tb.Helper()
	target, err := synth.Target("toffoli")
	if err != nil {
		tb.Fatal(err)
	}
	payload, err := json.Marshal(synth.Request{Target: target, Seed: 1})
	if err != nil {
		tb.Fatal(err)
	}
	return kernels.Task{Kernel: synth.KernelSynth, Payload: payload}
}

func benchSynthSlots(b *testing.B, procsIsSlots bool) {
	task := toffoliTask(b)
	one, two := startSlotRuntime(b, 1, 0), startSlotRuntime(b, 2, 0)
	if procsIsSlots {
		one, two = startSlotRuntime(b, 1, 1), startSlotRuntime(b, 2, 2)
	}
	var res synth.Result
	check := func(out []byte) {
		if err := json.Unmarshal(out, &res); err != nil || !res.Success {
			b.Fatalf("synthesis failed: %v %+v", err, res)
		}
	}
	// One warm-up run each: page faults, connections, JIT-free but cold caches.
	out, _ := one.run(b, task)
	check(out)
	out, _ = two.run(b, task)
	check(out)
	var ratios []float64
	var t1, t2 time.Duration
	w1, w2 := procCPU(b, one.worker.Process.Pid), procCPU(b, two.worker.Process.Pid)
	self := selfCPU()
	i := 0
	for b.Loop() {
		// Alternate which runs first so that neither gets a systematic
		// advantage from the other's leftovers.
		first, second := one, two
		if i%2 == 1 {
			first, second = two, one
		}
		i++
		outA, da := first.run(b, task)
		outB, db := second.run(b, task)
		check(outA)
		check(outB)
		if first == two {
			da, db = db, da
		}
		t1 += da
		t2 += db
		ratios = append(ratios, da.Seconds()/db.Seconds())
	}
	slices.Sort(ratios)
	n := float64(len(ratios))
	w1, w2 = procCPU(b, one.worker.Process.Pid)-w1, procCPU(b, two.worker.Process.Pid)-w2
	self = selfCPU() - self
	b.ReportMetric(w1.Seconds()/n, "cpu-s/op-worker-1slot")
	b.ReportMetric(w2.Seconds()/n, "cpu-s/op-worker-2slots")
	b.ReportMetric(self.Seconds()/n/2, "cpu-s/op-server")
	b.ReportMetric(t1.Seconds()/n, "s/op-1slot")
	b.ReportMetric(t2.Seconds()/n, "s/op-2slots")
	b.ReportMetric(ratios[0], "speedup-min")
	b.ReportMetric(ratios[len(ratios)/2], "speedup-median")
	b.ReportMetric(ratios[len(ratios)-1], "speedup-max")
	b.ReportMetric(float64(res.CNOTs), "cnots")
	if load, ok := loadAverage(); ok {
		// Other processes' load is what most moves the speed-up on a
		// small machine: report it beside it.
		b.ReportMetric(load, "loadavg-1min")
	}
	b.ReportMetric(0, "ns/op")
}

// procCPU returns the CPU time (user and system) process pid has used,
// from /proc/PID/stat.
func procCPU(tb testing.TB, pid int) time.Duration {
	tb.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		tb.Fatal(err)
	}
	// Fields after the command name (which ends with the last ')'):
	// state is field 3, utime 14, stime 15.
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * time.Second / clockTicks
}

// selfCPU returns the CPU time this process (server and client) has used.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// clockTicks is USER_HZ, the unit of /proc/PID/stat times on Linux.
const clockTicks = 100

// TestSynthToffoliOnOneAndTwoSlots synthesises toffoli on attached
// runtimes (worker processes) of 1 and 2 slots: the results must be the
// same bytes, 6 CNOTs, with at least 36 independent tasks per step from
// the third on. The speed-up is logged, never asserted (load varies).
func TestSynthToffoliOnOneAndTwoSlots(t *testing.T) {
	if testing.Short() {
		t.Skip("starts two runtimes")
	}
	task := toffoliTask(t)
	one, two := startSlotRuntime(t, 1, 0), startSlotRuntime(t, 2, 0)
	out1, d1 := one.run(t, task)
	out2, d2 := two.run(t, task)
	if string(out1) != string(out2) {
		t.Fatalf("1 slot and 2 slots differ:\n%s\n%s", out1, out2)
	}
	var res synth.Result
	if err := json.Unmarshal(out1, &res); err != nil {
		t.Fatal(err)
	}
	if !res.Success || res.CNOTs != 6 {
		t.Errorf("%d CNOTs at distance %g, want 6 below the threshold", res.CNOTs, res.Distance)
	}
	for i, n := range res.StepTasks {
		if i >= 2 && n < 36 {
			t.Errorf("step %d maps %d tasks, want at least 36", i, n)
		}
	}
	t.Logf("toffoli: 1 slot %v, 2 slots %v, speed-up %.2f; tasks per step %v", d1, d2, d1.Seconds()/d2.Seconds(), res.StepTasks)
}

// loadAverage returns the machine's load average over the last minute,
// from /proc/loadavg.
func loadAverage() (float64, bool) {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0, false
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0, false
	}
	v, err := strconv.ParseFloat(f[0], 64)
	return v, err == nil
}
