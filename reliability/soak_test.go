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

// Growth bounds of resident memory after warm-up (the first fifth of a
// phase), per process.
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
		warm := 0
		for warm < len(ss)-1 && ss[warm].Tasks < total/5 {
			warm++
		}
		names := make([]string, 0, len(ss[0].RSSKiB))
		for n := range ss[0].RSSKiB {
			names = append(names, n)
		}
		sort.Strings(names)
		var parts []string
		for _, n := range names {
			w, last, peak := ss[warm].RSSKiB[n], ss[len(ss)-1].RSSKiB[n], 0
			for _, s := range ss[warm:] {
				peak = max(peak, s.RSSKiB[n])
			}
			if last-w > limit {
				t.Errorf("%s phase: %s grew from %d KiB after warm-up to %d KiB (peak %d), bound %d KiB", phase, n, w, last, peak, limit)
			}
			parts = append(parts, fmt.Sprintf("%s %.0f→%.0f", n, float64(w)/1024, float64(last)/1024))
			t.Logf("%s phase: %s RSS after warm-up %d KiB, last %d KiB, peak %d KiB (first sample %d KiB)", phase, n, w, last, peak, ss[0].RSSKiB[n])
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
