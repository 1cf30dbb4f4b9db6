package bench_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"reflect"
	"strings"
	"testing"

	"github.com/qlaunch/qlaunch/kernels"
	"github.com/qlaunch/qlaunch/launcher/bench"
	"github.com/qlaunch/qlaunch/launcher/launchertest"
)

func TestLenKernel(t *testing.T) {
	reg, err := kernels.NewRegistry(append(kernels.Builtin(), bench.Kernels()...)...)
	if err != nil {
		t.Fatal(err)
	}
	k, ok := reg.Lookup("len")
	if !ok {
		t.Fatal("len is not registered")
	}
	tests := []struct {
		name    string
		args    []string
		payload []byte
		want    string
		wantErr string
	}{
		{"empty", nil, nil, "0", ""},
		{"three", nil, []byte("abc"), "3", ""},
		{"mebibyte", nil, make([]byte, 1<<20), "1048576", ""},
		{"args", []string{"x"}, nil, "", "len: takes no arguments, got 1 (usage: len)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := k.Func(context.Background(), nil, tc.args, tc.payload)
			if tc.wantErr != "" {
				var ue *kernels.UsageError
				if !errors.As(err, &ue) || err.Error() != tc.wantErr {
					t.Fatalf("err %v, want UsageError %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || string(got) != tc.want {
				t.Fatalf("len = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

// figures are the figure names of a result, in order.
func figures(r bench.Result) []string {
	var names []string
	for _, f := range r.Figures {
		names = append(names, f.Name)
	}
	return names
}

// checkResult checks the shape of a result and that every figure is
// positive and ordered min ≤ median ≤ max; it asserts no absolute times.
func checkResult(t *testing.T, r bench.Result, name string, tasks, repeat int, figs []string) {
	t.Helper()
	if r.Name() != name || r.Tasks != tasks || r.Repeat != repeat {
		t.Errorf("result %s tasks %d repeat %d, want %s %d %d", r.Name(), r.Tasks, r.Repeat, name, tasks, repeat)
	}
	if got := figures(r); !reflect.DeepEqual(got, figs) {
		t.Errorf("%s figures %v, want %v", name, got, figs)
	}
	stats := []bench.Stat{r.Seconds}
	for _, f := range r.Figures {
		stats = append(stats, f.Stat)
	}
	for i, s := range stats {
		if i > 0 && strings.HasPrefix(r.Figures[i-1].Name, "children_") && s.Min == 0 {
			continue // a count of tasks that took a path: may be none
		}
		if !(s.Min > 0 && s.Min <= s.Median && s.Median <= s.Max) {
			t.Errorf("%s stat %d = %+v, want 0 < min ≤ median ≤ max", name, i, s)
		}
	}
}

type want struct {
	name  string
	tasks int
	figs  []string
}

func TestRunOnTree(t *testing.T) {
	tr := launchertest.Start(t, launchertest.Shape{Workers: []int{2}}, launchertest.Options{Kernels: bench.Kernels()})
	c := tr.Client()
	tests := []struct {
		workload string
		opts     bench.Options
		want     []want
	}{
		{"tiny", bench.Options{Tasks: 50}, []want{{"tiny", 50, []string{"tasks_per_s", "children_local", "children_via_server"}}}},
		{"client-map", bench.Options{Tasks: 40}, []want{{"client-map", 40, []string{"tasks_per_s"}}}},
		{"latency", bench.Options{Tasks: 20}, []want{{"latency", 20, []string{"median_us", "p99_us"}}}},
		{"payload", bench.Options{Tasks: 5, Payload: 3000}, []want{
			{"payload/random", 5, []string{"MB_per_s"}},
			{"payload/repetitive", 5, []string{"MB_per_s"}},
		}},
		// More tasks than fit in one 16 MiB map: two maps in flight.
		{"payload", bench.Options{Tasks: 2, Payload: 9 << 20, Repeat: 1}, []want{
			{"payload/random", 2, []string{"MB_per_s"}},
			{"payload/repetitive", 2, []string{"MB_per_s"}},
		}},
		{"nested", bench.Options{Tasks: 7}, []want{{"nested", 10100, []string{"tasks_per_s", "children_local", "children_via_server"}}}},
	}
	for _, tc := range tests {
		t.Run(tc.workload, func(t *testing.T) {
			opts := tc.opts
			if opts.Repeat == 0 {
				opts.Repeat = 2
			}
			var progress bytes.Buffer
			opts.Progress = &progress
			rs, err := bench.Run(t.Context(), c, tc.workload, opts)
			if err != nil {
				t.Fatal(err)
			}
			if len(rs) != len(tc.want) {
				t.Fatalf("%d results, want %d", len(rs), len(tc.want))
			}
			for i, w := range tc.want {
				checkResult(t, rs[i], w.name, w.tasks, opts.Repeat, w.figs)
			}
			if local, ok := rs[0].Figure("children_local"); ok {
				// One worker rank, no sibling to share with: every child
				// of every repeat ran where its parent did.
				via, _ := rs[0].Figure("children_via_server")
				if local.Min != float64(rs[0].Tasks) || local.Max != float64(rs[0].Tasks) || via.Max != 0 {
					t.Errorf("children local %+v, via server %+v; want %d local, none via the server", local, via, rs[0].Tasks)
				}
			}
			if p := progress.String(); !strings.Contains(p, tc.workload) || !strings.HasSuffix(p, "\r\033[K") {
				t.Errorf("progress %q does not name the workload or does not end clearing the line", p)
			}
		})
	}
}

func TestLoopback(t *testing.T) {
	rs, err := bench.Run(t.Context(), nil, "loopback", bench.Options{Tasks: 1000, Repeat: 1})
	if err != nil {
		t.Fatal(err)
	}
	ws := []want{
		{"loopback/round-trip", 2000, []string{"median_us", "p99_us"}},
		{"loopback/pipelined", 1000, []string{"msgs_per_s"}},
		{"loopback/bulk", 64, []string{"MB_per_s"}},
	}
	if len(rs) != len(ws) {
		t.Fatalf("%d results, want %d", len(rs), len(ws))
	}
	for i, w := range ws {
		checkResult(t, rs[i], w.name, w.tasks, 1, w.figs)
	}
}

func TestStartup(t *testing.T) {
	opts := bench.Options{Repeat: 2, Launch: []string{"/bin/sh", "-c", `echo "$GREETING"`}, Env: []string{"GREETING=ready"}}
	rs, err := bench.Run(t.Context(), nil, "startup", opts)
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 2 {
		t.Fatalf("%d results, want 2", len(rs))
	}
	checkResult(t, rs[0], "startup/first-result", 1, 2, []string{"ms"})
	if rs[1].Name() != "startup/shutdown" || rs[1].Tasks != 1 || !reflect.DeepEqual(figures(rs[1]), []string{"ms"}) {
		t.Errorf("second result %+v, want startup/shutdown with ms", rs[1])
	}
}

func TestRunErrors(t *testing.T) {
	tests := []struct {
		name     string
		workload string
		opts     bench.Options
		want     error
		wantText string
	}{
		{"unknown", "warp", bench.Options{}, bench.ErrUnknownWorkload, `bench: unknown workload "warp"`},
		{"no client", "tiny", bench.Options{}, bench.ErrNoClient, "tiny: bench: workload needs a runtime, and no client was given"},
		{"no launch", "startup", bench.Options{}, bench.ErrNoLaunch, "startup: bench: startup needs a launch command"},
		{"launch fails", "startup", bench.Options{Launch: []string{"/bin/sh", "-c", "echo oops >&2; exit 3"}}, nil,
			"startup: launch [/bin/sh -c echo oops >&2; exit 3]: exit status 3: oops"},
		{"no hop", "chain", bench.Options{}, bench.ErrNoHop, "chain: bench: chain needs the hop command (qlaunch bench-hop)"},
		{"hop fails", "chain", bench.Options{Hop: []string{"/bin/sh", "-c", "echo oops >&2; exit 3"}}, nil,
			"chain: hop sh -c echo oops >&2; exit 3 echo gave no address: EOF\nhop sh -c echo oops >&2; exit 3 echo: exit status 3: oops"},
		{"launch silent", "startup", bench.Options{Launch: []string{"/bin/sh", "-c", "exit 0"}}, nil,
			"startup: launch [/bin/sh -c exit 0]: no output: EOF: "},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := bench.Run(t.Context(), nil, tc.workload, tc.opts)
			if err == nil || (tc.want != nil && !errors.Is(err, tc.want)) || err.Error() != tc.wantText {
				t.Fatalf("err %v, want %q (is %v)", err, tc.wantText, tc.want)
			}
		})
	}
}

func TestWriteJSON(t *testing.T) {
	rs := []bench.Result{
		{Workload: "tiny", Tasks: 10, Repeat: 3, Seconds: bench.Stat{Min: 0.5, Median: 1, Max: 2},
			Figures: []bench.Figure{{Name: "tasks_per_s", Stat: bench.Stat{Min: 5, Median: 10, Max: 20}}}},
		{Workload: "payload", Variant: "random", Tasks: 2, Repeat: 1, Seconds: bench.Stat{Min: 0.25, Median: 0.25, Max: 0.25},
			Figures: []bench.Figure{{Name: "MB_per_s", Stat: bench.Stat{Min: 1234.5, Median: 1234.5, Max: 1234.5}}}},
	}
	var b bytes.Buffer
	if err := bench.WriteJSON(&b, rs); err != nil {
		t.Fatal(err)
	}
	want := `{"workload":"tiny","tasks":10,"repeat":3,"seconds":1,"seconds_min":0.5,"seconds_max":2,"tasks_per_s":10,"tasks_per_s_min":5,"tasks_per_s_max":20}
{"workload":"payload","variant":"random","tasks":2,"repeat":1,"seconds":0.25,"seconds_min":0.25,"seconds_max":0.25,"MB_per_s":1234.5,"MB_per_s_min":1234.5,"MB_per_s_max":1234.5}
`
	if b.String() != want {
		t.Fatalf("got\n%s\nwant\n%s", b.String(), want)
	}
	for line := range strings.Lines(b.String()) {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Errorf("%q: %v", line, err)
		}
	}
}

func TestTableWriter(t *testing.T) {
	var b bytes.Buffer
	tw := bench.NewTableWriter(&b)
	tw.Write([]bench.Result{
		{Workload: "latency", Tasks: 2000, Repeat: 3, Seconds: bench.Stat{Min: 0.3, Median: 0.34, Max: 0.4}, Figures: []bench.Figure{
			{Name: "median_us", Stat: bench.Stat{Min: 150, Median: 160.25, Max: 170}},
			{Name: "p99_us", Stat: bench.Stat{Min: 300, Median: 310, Max: 320}},
		}},
		{Workload: "tiny", Tasks: 10000, Repeat: 3, Seconds: bench.Stat{Min: 0.002, Median: 0.002, Max: 0.002}, Figures: []bench.Figure{
			{Name: "tasks_per_s", Stat: bench.Stat{Min: 4441787.4, Median: 5000000, Max: 12345678}},
		}},
	})
	if err := tw.Flush(); err != nil {
		t.Fatal(err)
	}
	want := "" +
		"  WORKLOAD  TASKS  SECONDS       FIGURE        MIN     MEDIAN         MAX\n" +
		"   latency   2000     0.34    median_us        150      160.2         170\n" +
		"                                 p99_us        300        310         320\n" +
		"      tiny  10000    0.002  tasks_per_s  4,441,787  5,000,000  12,345,678\n"
	if got := b.String(); got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
}

func TestIdlePolicy(t *testing.T) {
	const dir = "/sys/devices/system/cpu/cpuidle/"
	for _, c := range []struct {
		files map[string]string
		want  string
	}{
		{map[string]string{dir + "current_driver": "haltpoll\n", dir + "current_governor": "haltpoll\n",
			"/sys/module/haltpoll/parameters/guest_halt_poll_ns": "0\n"}, "cpuidle haltpoll/haltpoll, guest_halt_poll_ns=0"},
		{map[string]string{dir + "current_driver": "intel_idle\n", dir + "current_governor_ro": "menu\n"}, "cpuidle intel_idle/menu"},
		{map[string]string{dir + "current_driver": "acpi_idle"}, "cpuidle acpi_idle"},
		{map[string]string{}, ""},
	} {
		read := func(path string) ([]byte, error) {
			if v, ok := c.files[path]; ok {
				return []byte(v), nil
			}
			return nil, fs.ErrNotExist
		}
		if got := bench.IdlePolicy(read); got != c.want {
			t.Errorf("files %v: got %q, want %q", c.files, got, c.want)
		}
	}
}

func TestHeader(t *testing.T) {
	shape := launchertest.Shape{Managers: []launchertest.Shape{{Workers: []int{2, 3}}, {Managers: []launchertest.Shape{{Workers: []int{1}}}}}}
	tr := launchertest.Start(t, shape)
	h, err := bench.NewHeader(t.Context(), tr.Client())
	if err != nil {
		t.Fatal(err)
	}
	if want := "7 ranks: 1 server, 3 managers, 3 worker ranks; 6 worker slots; depth 3"; h.Tree != want || h.Workers != 6 {
		t.Errorf("tree %q (%d slots), want %q (6)", h.Tree, h.Workers, want)
	}
	if h.Cores <= 0 || h.CPU == "" || !strings.HasPrefix(h.Go, "go") || h.Build == "" {
		t.Errorf("header %+v lacks the machine or build", h)
	}
	var b bytes.Buffer
	if err := bench.WriteHeaderJSON(&b, h); err != nil {
		t.Fatal(err)
	}
	var m struct {
		Workload string `json:"workload"`
		Tree     string `json:"tree"`
		Slots    int    `json:"worker_slots"`
	}
	if err := json.Unmarshal(b.Bytes(), &m); err != nil || m.Workload != "header" || m.Tree != h.Tree || m.Slots != 6 {
		t.Errorf("header JSON %s (%v)", b.String(), err)
	}
}
