package reliability_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/qlaunch/qlaunch/reliability"
)

// TestSoakShort is the quick soak: 10^4 tiny tasks, then 100 of 1 MiB.
func TestSoakShort(t *testing.T) {
	t.Parallel()
	soak(t, "soak short (10^4 tiny, 100 x 1 MiB)", 10_000, 100, 1000, 2*time.Minute)
}

// TestSoakLong is the long soak, run when QLAUNCH_SOAK=1 (make
// reliability-long): 10^6 tiny tasks, then 10^4 of 1 MiB.
func TestSoakLong(t *testing.T) {
	if os.Getenv("QLAUNCH_SOAK") != "1" {
		t.Skip("the long soak runs with QLAUNCH_SOAK=1 (make reliability-long)")
	}
	soak(t, "soak long (10^6 tiny, 10^4 x 1 MiB)", 1_000_000, 10_000, 50_000, 50*time.Minute)
}

// Growth bounds of resident memory from after warm-up (the second fifth
// of a phase) to its end (the last fifth), medians, per process.
const (
	tinyGrowthKiB = 32 << 10
	bigGrowthKiB  = 64 << 10
)

func soak(t *testing.T, name string, tiny, big, every int, bound time.Duration) {
	rec := newRecord(t, name)
	dir := t.TempDir()
	topo, err := filepath.Abs("../configs/local.toml")
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "soak.json")
	env := []string{"QLAUNCH_ADDR=", "QLAUNCH_SECRET_FILE=" + filepath.Join(dir, "secret"), "QLAUNCH_ADDRESS_FILE=" + filepath.Join(dir, "addr")}
	p := startProc(t, env, "qlaunch run", qlaunchBin, "run", topo, "--", driverBin, "soak",
		"-tiny", strconv.Itoa(tiny), "-big", strconv.Itoa(big), "-every", strconv.Itoa(every), "-out", out)
	if !p.exited(bound) {
		t.Fatalf("soak still running after %v:\n%s", bound, p.out)
	}
	if p.err != nil {
		t.Fatalf("qlaunch run: %v\n%s", p.err, p.out)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var rep reliability.SoakReport
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	var mem []string
	for _, phase := range []string{"tiny", "big"} {
		limit, total := tinyGrowthKiB, tiny
		if phase == "big" {
			limit, total = bigGrowthKiB, big
		}
		var ss []reliability.SoakSample
		for _, s := range rep.Samples {
			if s.Phase == phase {
				ss = append(ss, s)
			}
		}
		if len(ss) < 3 {
			t.Fatalf("%s phase: %d samples", phase, len(ss))
		}
		// A leak grows with the tasks run; the collector's cycles make
		// resident memory swing around a level (by tens of MiB at the
		// roles' GOGC=400 in the big phase). So the median of the second
		// fifth of a phase (after warm-up) is compared with the median of
		// its last fifth, not one sample with another.
		early := window(ss, total/5, 2*total/5)
		late := window(ss, 4*total/5, total+1)
		names := make([]string, 0, len(ss[0].RSSKiB))
		for n := range ss[0].RSSKiB {
			names = append(names, n)
		}
		sort.Strings(names)
		var parts []string
		for _, n := range names {
			w, last, peak := medianRSS(early, n), medianRSS(late, n), 0
			for _, s := range ss {
				peak = max(peak, s.RSSKiB[n])
			}
			if last-w > limit {
				t.Errorf("%s phase: %s grew from a median %d KiB after warm-up to %d KiB in the last fifth (peak %d), bound %d KiB", phase, n, w, last, peak, limit)
			}
			parts = append(parts, fmt.Sprintf("%s %.0f→%.0f", n, float64(w)/1024, float64(last)/1024))
			t.Logf("%s phase: %s RSS median after warm-up %d KiB, in the last fifth %d KiB, peak %d KiB (first sample %d KiB)", phase, n, w, last, peak, ss[0].RSSKiB[n])
		}
		mem = append(mem, phase+": "+strings.Join(parts, ", ")+" MiB")
	}
	if rep.GoroutinesAfter > rep.GoroutinesBefore {
		t.Errorf("client goroutines: %d before, %d after", rep.GoroutinesBefore, rep.GoroutinesAfter)
	}
	rec.Memory = strings.Join(mem, "; ")
	rec.Note = fmt.Sprintf("tiny %.0f tasks/s, big %.0f MiB/s; client goroutines %d→%d",
		float64(rep.Tiny)/rep.TinySeconds, float64(rep.Big)*float64(rep.PayloadBytes)/(1<<20)/rep.BigSeconds,
		rep.GoroutinesBefore, rep.GoroutinesAfter)
	left := reliability.Processes(reliability.CmdlineContains(dir))
	rec.Left = strconv.Itoa(len(left))
	if len(left) > 0 {
		t.Errorf("processes left after qlaunch run: %v", left)
	}
}

// window returns the samples with lo ≤ Tasks < hi, or the sample nearest
// to lo when none is.
func window(ss []reliability.SoakSample, lo, hi int) []reliability.SoakSample {
	var out []reliability.SoakSample
	for _, s := range ss {
		if s.Tasks >= lo && s.Tasks < hi {
			out = append(out, s)
		}
	}
	if len(out) > 0 {
		return out
	}
	best := ss[0]
	for _, s := range ss {
		if abs(s.Tasks-lo) < abs(best.Tasks-lo) {
			best = s
		}
	}
	return []reliability.SoakSample{best}
}

func abs(x int) int { return max(x, -x) }

// medianRSS is the median resident memory of process n over ss (not empty).
func medianRSS(ss []reliability.SoakSample, n string) int {
	v := make([]int, len(ss))
	for i, s := range ss {
		v[i] = s.RSSKiB[n]
	}
	sort.Ints(v)
	if len(v)%2 == 0 {
		return (v[len(v)/2-1] + v[len(v)/2]) / 2
	}
	return v[len(v)/2]
}
