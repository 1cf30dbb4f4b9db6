package bench_test

import (
	"bytes"
	"reflect"
	"testing"

	"github.com/qlaunch/qlaunch/launcher/bench"
)

func TestRatios(t *testing.T) {
	med := func(v float64) bench.Stat { return bench.Stat{Min: v / 2, Median: v, Max: 2 * v} }
	rs := []bench.Result{
		{Workload: "loopback", Variant: "round-trip", Figures: []bench.Figure{{Name: "median_us", Stat: med(10)}, {Name: "p99_us", Stat: med(20)}}},
		{Workload: "chain", Variant: "round-trip", Figures: []bench.Figure{{Name: "median_us", Stat: med(80)}, {Name: "p99_us", Stat: med(0)}}},
		{Workload: "latency", Figures: []bench.Figure{{Name: "median_us", Stat: med(120)}, {Name: "p99_us", Stat: med(300)}}},
		{Workload: "payload", Variant: "random", Figures: []bench.Figure{{Name: "MB_per_s", Stat: med(800)}}},
		{Workload: "payload", Variant: "repetitive", Figures: []bench.Figure{{Name: "MB_per_s", Stat: med(1200)}}},
	}
	want := []bench.Ratio{
		{Figure: "latency median_us", Baseline: "chain/round-trip median_us", Value: 1.5},
		{Figure: "latency median_us", Baseline: "loopback/round-trip median_us", Value: 12},
		// chain p99 is zero: no ratio. No bulk baselines ran: none for payload/random.
		{Figure: "payload/repetitive MB_per_s", Baseline: "payload/random MB_per_s", Value: 1.5},
	}
	got := bench.Ratios(rs)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Ratios = %+v\nwant %+v", got, want)
	}

	var text bytes.Buffer
	if err := bench.WriteRatios(&text, got); err != nil {
		t.Fatal(err)
	}
	wantText := "\nagainst this run's baselines (medians):\n" +
		"  latency median_us            1.50×  of chain/round-trip median_us\n" +
		"  latency median_us            12.0×  of loopback/round-trip median_us\n" +
		"  payload/repetitive MB_per_s  1.50×  of payload/random MB_per_s\n"
	if text.String() != wantText {
		t.Errorf("WriteRatios:\n%q\nwant\n%q", text.String(), wantText)
	}

	var js bytes.Buffer
	if err := bench.WriteRatiosJSON(&js, got[:1]); err != nil {
		t.Fatal(err)
	}
	wantJSON := `{"workload":"ratio","figure":"latency median_us","baseline":"chain/round-trip median_us","ratio":1.5}` + "\n"
	if js.String() != wantJSON {
		t.Errorf("WriteRatiosJSON = %q, want %q", js.String(), wantJSON)
	}

	text.Reset()
	if err := bench.WriteRatios(&text, nil); err != nil || text.Len() != 0 {
		t.Errorf("WriteRatios(nil) wrote %q, %v; want nothing", text.String(), err)
	}
}
