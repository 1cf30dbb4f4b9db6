package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
)

// Ratio is a figure of a run against a baseline of the same run: the
// medians' quotient. Load on a shared machine moves both ends together,
// so ratios compare across runs where absolute figures do not.
type Ratio struct {
	Figure   string  `json:"figure"`   // "latency median_us"
	Baseline string  `json:"baseline"` // "chain/round-trip median_us"
	Value    float64 `json:"ratio"`    // Figure / Baseline
}

// ratioPairs are the comparisons a run reports where both ends ran:
// each figure against the raw TCP of the runtime's own shape (chain), and
// of one hop (loopback).
func ratioPairs() [][2]string {
	return [][2]string{
		{"latency median_us", "chain/round-trip median_us"},
		{"latency median_us", "loopback/round-trip median_us"},
		{"latency p99_us", "chain/round-trip p99_us"},
		{"payload/random MB_per_s", "chain/bulk MB_per_s"},
		{"payload/random MB_per_s", "loopback/bulk MB_per_s"},
		{"payload/repetitive MB_per_s", "payload/random MB_per_s"},
		{"tiny tasks_per_s", "loopback/pipelined msgs_per_s"},
		{"client-map tasks_per_s", "loopback/pipelined msgs_per_s"},
	}
}

// Ratios returns the ratios that rs allows, in a fixed order.
func Ratios(rs []Result) []Ratio {
	medians := make(map[string]float64)
	for _, r := range rs {
		for _, f := range r.Figures {
			medians[r.Name()+" "+f.Name] = f.Stat.Median
		}
	}
	var out []Ratio
	for _, p := range ratioPairs() {
		a, okA := medians[p[0]]
		b, okB := medians[p[1]]
		if okA && okB && b > 0 {
			out = append(out, Ratio{Figure: p[0], Baseline: p[1], Value: a / b})
		}
	}
	return out
}

// WriteRatios prints ratios as an aligned block after a run's table.
func WriteRatios(w io.Writer, ratios []Ratio) error {
	if len(ratios) == 0 {
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "\nagainst this run's baselines (medians):")
	for _, r := range ratios {
		fmt.Fprintf(tw, "  %s\t%s×\tof %s\n", r.Figure, ratioText(r.Value), r.Baseline)
	}
	return tw.Flush()
}

// ratioText gives a ratio about three significant digits.
func ratioText(v float64) string {
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	case v >= 1:
		return fmt.Sprintf("%.2f", v)
	}
	return fmt.Sprintf("%.3g", v)
}

// WriteRatiosJSON prints each ratio as one JSON object per line, with
// workload "ratio".
func WriteRatiosJSON(w io.Writer, ratios []Ratio) error {
	for _, r := range ratios {
		b, err := json.Marshal(struct {
			Workload string `json:"workload"`
			Ratio
		}{"ratio", r})
		if err != nil {
			return err
		}
		if _, err := w.Write(append(b, '\n')); err != nil {
			return err
		}
	}
	return nil
}
