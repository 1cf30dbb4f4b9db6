package cli

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/qlaunch/qlaunch/launcher/wire"
)

func TestMakeSnapshot(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	rows := []wire.RankStatus{
		{Rank: 0, Parent: -1, Role: "server", Host: "n0", Done: 30},
		{Rank: 1, Parent: 0, Depth: 1, Role: "worker", Host: "n0", Slots: 4, Busy: 3, Queued: 2, Done: 10, Silent: 250 * time.Millisecond},
		{Rank: 2, Parent: 0, Depth: 1, Role: "manager", Host: "n1", Done: 20, Silent: time.Second},
		{Rank: 3, Parent: 2, Depth: 2, Role: "worker", Host: "n1", Slots: 2, Busy: 1, Done: 20},
		{Rank: 4, Parent: 2, Depth: 2, Role: "worker", Host: "n1", State: wire.RankLost, Since: t0.UnixNano(), Reason: "connection lost: EOF"},
	}
	first := makeSnapshot(t0, rows, nil)
	rate := func(v float64) *float64 { return &v }
	want := []statusRank{
		{Rank: 0, Parent: -1, Role: "server", Host: "n0", State: "joined", Slots: 6, Busy: 4, Idle: 2, Running: 4, Done: 30},
		{Rank: 1, Parent: 0, Depth: 1, Role: "worker", Host: "n0", State: "joined", Slots: 4, Busy: 3, Idle: 1, Queued: 2, Running: 3, Done: 10, HeartbeatAge: 0.25},
		{Rank: 2, Parent: 0, Depth: 1, Role: "manager", Host: "n1", State: "joined", Slots: 2, Busy: 1, Idle: 1, Running: 1, Done: 20, HeartbeatAge: 1},
		{Rank: 3, Parent: 2, Depth: 2, Role: "worker", Host: "n1", State: "joined", Slots: 2, Busy: 1, Idle: 1, Running: 1, Done: 20},
		{Rank: 4, Parent: 2, Depth: 2, Role: "worker", Host: "n1", State: "lost", LostAt: "2026-01-02T03:04:05Z", Reason: "connection lost: EOF"},
	}
	if !reflect.DeepEqual(first.Ranks, want) {
		t.Fatalf("first snapshot\n%+v\nwant\n%+v", first.Ranks, want)
	}
	// Two seconds later: rates from the done counts.
	rows[0].Done, rows[1].Done, rows[3].Done = 50, 30, 20
	second := makeSnapshot(t0.Add(2*time.Second), rows, &first)
	for i, w := range []*float64{rate(10), rate(10), rate(0), rate(0), nil} {
		g := second.Ranks[i].TasksPerSecond
		if (g == nil) != (w == nil) || g != nil && *g != *w {
			t.Errorf("rank %d: %v tasks/s, want %v", second.Ranks[i].Rank, g, w)
		}
	}
	var buf bytes.Buffer
	if err := writeStatus(&buf, second, "text", true); err != nil {
		t.Fatal(err)
	}
	wantText := "RANK   ROLE     HOST  STATE   SLOTS  BUSY  IDLE  QUEUED  RUNNING  DONE  TASKS/S  HEARTBEAT\n" +
		"0      server   n0    joined  6      4     2     0       4        50    10.0     -\n" +
		"  1    worker   n0    joined  4      3     1     2       3        30    10.0     250ms ago\n" +
		"  2    manager  n1    joined  2      1     1     0       1        20    0.0      1s ago\n" +
		"    3  worker   n1    joined  2      1     1     0       1        20    0.0      0s ago\n" +
		"    4  worker   n1    lost    -      -     -     -       -        -     -        at " + t0.Local().Format("15:04:05") + ": connection lost: EOF\n"
	if buf.String() != wantText {
		t.Errorf("text:\n%s\nwant:\n%s", buf.String(), wantText)
	}
}

func TestWatchFlag(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want watchFlag
		err  bool
	}{
		{"true", watchFlag{true, time.Second}, false},
		{"false", watchFlag{false, time.Second}, false},
		{"250ms", watchFlag{true, 250 * time.Millisecond}, false},
		{"-1s", watchFlag{false, time.Second}, true},
		{"soon", watchFlag{false, time.Second}, true},
	} {
		w := watchFlag{interval: time.Second}
		err := w.Set(tt.in)
		if (err != nil) != tt.err || w != tt.want {
			t.Errorf("Set(%q): %+v %v, want %+v (error %v)", tt.in, w, err, tt.want, tt.err)
		}
	}
}

// TestStatusWatchSeparateValue checks that the older "--watch 1s" form
// fails as bad usage with a message that gives the form to write.
func TestStatusWatchSeparateValue(t *testing.T) {
	for _, tt := range []struct {
		args   []string
		stderr string
	}{
		{[]string{"--watch", "1s"}, "qlaunch: status: --watch takes its interval after \"=\": write --watch=1s (or --watch --interval 1s)\n"},
		{[]string{"-watch", "250ms", "--format", "json"}, "qlaunch: status: --watch takes its interval after \"=\": write --watch=250ms (or --watch --interval 250ms)\n"},
		{[]string{"--format", "json", "--watch", "2m"}, "qlaunch: status: --watch takes its interval after \"=\": write --watch=2m (or --watch --interval 2m)\n"},
		{[]string{"--watch", "0s"}, "qlaunch: status: unexpected arguments [\"0s\"]\n"},
		{[]string{"--watch", "soon"}, "qlaunch: status: unexpected arguments [\"soon\"]\n"},
		{[]string{"1s"}, "qlaunch: status: unexpected arguments [\"1s\"]\n"},
	} {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			code, stdout, stderr := runQlaunch(t, nil, append([]string{"status"}, tt.args...)...)
			if code != 2 || stdout != "" || stderr != tt.stderr+"see \"qlaunch status --help\"\n" {
				t.Errorf("exit %d, stdout %q, stderr %q; want exit 2, stderr %q", code, stdout, stderr, tt.stderr)
			}
		})
	}
}

// TestStatusRestartsColumn: RESTARTS shows when a rank was restarted,
// before ALLOC, on joined and departed rows alike; JSON always has the
// count.
func TestStatusRestartsColumn(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	rows := []wire.RankStatus{
		{Rank: 0, Parent: -1, Role: "server", Host: "n0", Alloc: "56"},
		{Rank: 1, Parent: 0, Depth: 1, Role: "worker", Host: "n0", Slots: 1, Restarts: 2, Alloc: "56"},
		{Rank: 57000, Parent: 0, Depth: 1, Role: "manager", Host: "n1", State: wire.RankDrained, Since: t0.UnixNano(), Reason: "drained", Alloc: "57"},
		{Rank: 3, Parent: 0, Depth: 1, Role: "worker", Host: "n2", State: wire.RankLost, Since: t0.UnixNano(), Reason: "EOF", Restarts: 3},
	}
	snap := makeSnapshot(t0, rows, nil)
	var buf bytes.Buffer
	if err := writeStatus(&buf, snap, "text", true); err != nil {
		t.Fatal(err)
	}
	at := "at " + t0.Local().Format("15:04:05") + ": "
	want := "RANK     ROLE     HOST  STATE    SLOTS  BUSY  IDLE  QUEUED  RUNNING  DONE  TASKS/S  HEARTBEAT             RESTARTS  ALLOC\n" +
		"0        server   n0    joined   1      0     1     0       0        0     -        -                     0         56\n" +
		"  1      worker   n0    joined   1      0     1     0       0        0     -        0s ago                2         56\n" +
		"  57000  manager  n1    drained  -      -     -     -       -        -     -        " + at + "drained  0         57\n" +
		"  3      worker   n2    lost     -      -     -     -       -        -     -        " + at + "EOF      3         -\n"
	if buf.String() != want {
		t.Errorf("text:\n%s\nwant:\n%s", buf.String(), want)
	}
	buf.Reset()
	if err := writeStatus(&buf, snap, "json", false); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(buf.String(), `"restarts":`); n != len(rows) || !strings.Contains(buf.String(), `"restarts":3`) {
		t.Errorf("json has %d restarts fields, want %d with rank 3's 3: %s", n, len(rows), buf.String())
	}
}
