package bench_test

import (
	"slices"
	"testing"
	"time"

	"github.com/qlaunch/qlaunch/launcher/bench"
	"github.com/qlaunch/qlaunch/launcher/client"
	"github.com/qlaunch/qlaunch/launcher/launchertest"
)

// The scale simulation builds an in-process tree over loopback, the shape
// of a large allocation, and runs tiny and nested on it beside a small
// tree measured in the same run: the ratio of the two shows how the
// runtime's cost grows with the tree.

// scaleShape is a server over top managers, each over sub leaf managers;
// every manager has one worker rank of slots slots. top 8, sub 7 and 64
// slots give 64 managers in two levels and 4,096 worker slots.
func scaleShape(top, sub, slots int) launchertest.Shape {
	leaf := launchertest.Shape{Workers: []int{slots}}
	mid := launchertest.Shape{Workers: []int{slots}}
	for range sub {
		mid.Managers = append(mid.Managers, leaf)
	}
	var s launchertest.Shape
	for range top {
		s.Managers = append(s.Managers, mid)
	}
	return s
}

// smallShape is the reference: one manager, one worker rank of 2 slots.
var smallShape = launchertest.Shape{Managers: []launchertest.Shape{{Workers: []int{2}}}}

type scaleFigures struct {
	connect time.Duration // from starting the tree to a connected client
	tiny    bench.Stat    // tasks_per_s
	mapped  bench.Stat    // client-map tasks_per_s
	nested  bench.Stat    // seconds
}

// scaleTree is a started tree and its client.
type scaleTree struct {
	tr      *launchertest.Tree
	c       *client.Client
	connect time.Duration
	tiny    []float64
	mapped  []float64
	nested  []float64
}

func startScale(tb testing.TB, shape launchertest.Shape) *scaleTree {
	tb.Helper()
	t0 := time.Now()
	tr := launchertest.Start(tb, shape, launchertest.Options{Kernels: bench.Kernels()})
	c := tr.Client()
	return &scaleTree{tr: tr, c: c, connect: time.Since(t0)}
}

// once runs tiny (tasks children), client-map (tasks tasks) and nested
// once each, after their warm-ups, and records the figures. client-map
// is not in the list: tiny's children may run where their parent
// does, while the client's tasks cross the whole tree.
func (st *scaleTree) once(tb testing.TB, tasks int) {
	tb.Helper()
	opts := bench.Options{Tasks: tasks, Repeat: 1}
	for _, w := range []struct {
		name string
		fig  string
		into *[]float64
	}{{"tiny", "tasks_per_s", &st.tiny}, {"client-map", "tasks_per_s", &st.mapped}, {"nested", "", &st.nested}} {
		rs, err := bench.Run(tb.Context(), st.c, w.name, opts)
		if err != nil {
			tb.Fatal(err)
		}
		r := rs[0]
		if (w.name == "nested" && r.Tasks != 10100) || (w.name != "nested" && r.Tasks != tasks) {
			tb.Fatalf("%s result %+v", w.name, r)
		}
		v := r.Seconds.Median
		if w.fig != "" {
			s, _ := r.Figure(w.fig)
			v = s.Median
		}
		*w.into = append(*w.into, v)
	}
}

func (st *scaleTree) figures() scaleFigures {
	stat := func(xs []float64) bench.Stat {
		xs = slices.Sorted(slices.Values(xs))
		return bench.Stat{Min: xs[0], Median: xs[len(xs)/2], Max: xs[len(xs)-1]}
	}
	return scaleFigures{connect: st.connect, tiny: stat(st.tiny), mapped: stat(st.mapped), nested: stat(st.nested)}
}

// measureScale starts the small tree and the tree of shape side by side
// and runs the workloads on each in turn, rounds times, so that a change
// of load on a shared machine falls on both alike.
func measureScale(tb testing.TB, shape launchertest.Shape, tasks, rounds int) (small, big scaleFigures) {
	tb.Helper()
	s := startScale(tb, smallShape)
	defer s.tr.Close()
	b := startScale(tb, shape)
	defer b.tr.Close()
	for range rounds {
		s.once(tb, tasks)
		b.once(tb, tasks)
	}
	return s.figures(), b.figures()
}

func countShape(s launchertest.Shape) (managers, slots int) {
	for _, w := range s.Workers {
		slots += w
	}
	for _, m := range s.Managers {
		mm, ms := countShape(m)
		managers, slots = managers+1+mm, slots+ms
	}
	return managers, slots
}

func TestScaleShape(t *testing.T) {
	tests := []struct {
		top, sub, slots    int
		managers, allSlots int
		ranks              int
	}{
		{8, 7, 64, 64, 4096, 129},
		{2, 3, 8, 8, 64, 17},
		{1, 0, 2, 1, 2, 3},
	}
	for _, tc := range tests {
		s := scaleShape(tc.top, tc.sub, tc.slots)
		m, n := countShape(s)
		if m != tc.managers || n != tc.allSlots || s.Ranks() != tc.ranks {
			t.Errorf("scaleShape(%d, %d, %d): %d managers, %d slots, %d ranks; want %d, %d, %d",
				tc.top, tc.sub, tc.slots, m, n, s.Ranks(), tc.managers, tc.allSlots, tc.ranks)
		}
	}
}

// TestScaleReduced is the scale simulation at a size the race detector
// runs in seconds: 8 managers in two levels and 64 slots, against the
// small tree. It checks that both trees form and finish both workloads
// with the right counts; the figures are logged, never asserted.
func TestScaleReduced(t *testing.T) {
	small, big := measureScale(t, scaleShape(2, 3, 8), 2000, 1)
	t.Logf("small tree: connect %v, tiny %.0f tasks/s, client-map %.0f tasks/s, nested %.1f ms",
		small.connect, small.tiny.Median, small.mapped.Median, small.nested.Median*1e3)
	t.Logf("8 managers, 64 slots: connect %v, tiny %.0f tasks/s (%.0f%% of small), client-map %.0f tasks/s (%.0f%%), nested %.1f ms",
		big.connect, big.tiny.Median, 100*big.tiny.Median/small.tiny.Median,
		big.mapped.Median, 100*big.mapped.Median/small.mapped.Median, big.nested.Median*1e3)
}

// BenchmarkScale is the full scale simulation: 1 server, 64 managers in
// two levels and 4,096 worker slots over loopback, against the small tree
// (1 manager, 2 slots) in the same run. Run it with
//
//	go test -run='^$' -bench=Scale -benchtime=1x ./launcher/bench
func BenchmarkScale(b *testing.B) {
	var small, big scaleFigures
	for b.Loop() {
		small, big = measureScale(b, scaleShape(8, 7, 64), 50000, 7)
	}
	b.ReportMetric(float64(small.connect.Microseconds())/1e3, "small-connect-ms")
	b.ReportMetric(float64(big.connect.Microseconds())/1e3, "connect-ms")
	b.ReportMetric(small.tiny.Median, "small-tiny-tasks/s")
	b.ReportMetric(big.tiny.Median, "tiny-tasks/s")
	b.ReportMetric(big.tiny.Median/small.tiny.Median, "tiny-ratio")
	b.ReportMetric(small.mapped.Median, "small-client-map-tasks/s")
	b.ReportMetric(big.mapped.Median, "client-map-tasks/s")
	b.ReportMetric(big.mapped.Median/small.mapped.Median, "client-map-ratio")
	b.ReportMetric(small.nested.Median*1e3, "small-nested-ms")
	b.ReportMetric(big.nested.Median*1e3, "nested-ms")
	b.ReportMetric(small.nested.Median/big.nested.Median, "nested-ratio")
}
