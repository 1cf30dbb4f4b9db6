package wire

import (
	"bytes"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestTaskRoundTrip(t *testing.T) {
	for _, tc := range []Task{
		{Kernel: "noop"},
		{Kernel: "echo", Args: []string{"a", "", "ccc"}, Payload: []byte("xyz"), LogLevel: -4, LogDepth: -1},
		{Kernel: "x", LogDepth: 3},
		{Kernel: "fanout", Args: []string{"100", "2"}, LogLevel: 8},
	} {
		b := AppendTask([]byte{9}, &tc)
		var got Task
		if err := DecodeTask(b[1:], &got); err != nil {
			t.Fatalf("%+v: %v", tc, err)
		}
		if got.Kernel != tc.Kernel || got.LogLevel != tc.LogLevel || got.LogDepth != tc.LogDepth || string(got.Payload) != string(tc.Payload) || len(got.Args) != len(tc.Args) {
			t.Fatalf("got %+v, want %+v", got, tc)
		}
		for i := range tc.Args {
			if got.Args[i] != tc.Args[i] {
				t.Fatalf("arg %d: got %q, want %q", i, got.Args[i], tc.Args[i])
			}
		}
		if k := TaskKernel(b[1:]); string(k) != tc.Kernel {
			t.Fatalf("TaskKernel = %q, want %q", k, tc.Kernel)
		}
		// Every strict prefix is malformed.
		for i := range len(b) - 1 {
			if err := DecodeTask(b[1:1+i], &got); !errors.Is(err, ErrBadMessage) {
				t.Fatalf("prefix %d of %+v: err %v, want ErrBadMessage", i, tc, err)
			}
		}
	}
}

func TestResultRoundTrip(t *testing.T) {
	for _, tc := range []Result{
		{Status: ResultOK, Value: []byte("100")},
		{Status: ResultOK},
		{Status: ResultError, Message: "Boo!", Kernel: "fail", Rank: 3, Host: "node1"},
		{Status: ResultCancelled},
		{Status: ResultLost, Message: "connection lost", Rank: -1, Host: "h"},
	} {
		b := AppendResult(nil, &tc)
		var got Result
		if err := DecodeResult(b, &got); err != nil {
			t.Fatal(err)
		}
		if len(got.Value) == 0 {
			got.Value = nil
		}
		if len(tc.Value) == 0 {
			tc.Value = nil
		}
		if !reflect.DeepEqual(got, tc) {
			t.Fatalf("got %+v, want %+v", got, tc)
		}
	}
	if err := DecodeResult([]byte{7}, new(Result)); !errors.Is(err, ErrBadMessage) {
		t.Fatalf("bad status: %v", err)
	}
}

func TestRecords(t *testing.T) {
	var b []byte
	want := []struct {
		id   uint64
		body string
	}{{1, "a"}, {1 << 40, ""}, {7, "hello"}}
	for _, w := range want {
		b = AppendRecord(b, w.id, []byte(w.body))
	}
	r := NewRecords(b)
	for i, w := range want {
		id, body, ok := r.Next()
		if !ok || id != w.id || string(body) != w.body {
			t.Fatalf("record %d: got %d %q %v", i, id, body, ok)
		}
	}
	if _, _, ok := r.Next(); ok || r.Err() != nil {
		t.Fatalf("end: ok %v err %v", ok, r.Err())
	}
	if n, err := CountRecords(b[:len(b)-1]); !errors.Is(err, ErrBadMessage) {
		t.Fatalf("truncated batch: n %d err %v", n, err)
	}
}

func TestOtherMessages(t *testing.T) {
	ids, err := DecodeCancel(AppendCancel(nil, []uint64{1, 2, 1 << 50}), nil)
	if err != nil || !reflect.DeepEqual(ids, []uint64{1, 2, 1 << 50}) {
		t.Fatalf("cancel: %v %v", ids, err)
	}
	lr := LogRecord{Task: 5, Time: 123, Level: -4, Rank: 2, Host: "h", Msg: "m", Attrs: []string{"k", "v"}}
	b := AppendLog(nil, &lr)
	b = AppendLog(b, &lr)
	var got LogRecord
	rest, err := DecodeLog(b, &got)
	if err != nil || !reflect.DeepEqual(got, lr) || len(rest) != len(b)/2 {
		t.Fatalf("log: %+v %v", got, err)
	}
	st := Status{ID: 9, Reply: true, Ranks: []RankStatus{{Rank: 0, Parent: -1, Role: "server", Host: "h"}, {Rank: 1, Depth: 1, Role: "worker", Slots: 2, Busy: 1, Queued: 3, Done: 40, Kept: 1 << 20, HandedUp: 3}}}
	var gs Status
	if err := DecodeStatus(AppendStatus(nil, &st), &gs); err != nil || !reflect.DeepEqual(gs, st) {
		t.Fatalf("status: %+v %v", gs, err)
	}
	lost := Status{ID: 10, Reply: true, Ranks: []RankStatus{
		{Rank: 0, Parent: -1, Role: "server", Host: "h"},
		{Rank: 2, Parent: 0, Role: "worker", Host: "n2", State: RankLost, Since: 1_700_000_000_123, Reason: "connection reset", Silent: 1500 * time.Millisecond},
		{Rank: 3, Parent: 0, Role: "worker", Host: "n3", State: RankMissing, Reason: "never connected"},
	}}
	if err := DecodeStatus(AppendStatus(nil, &lost), &gs); err != nil || !reflect.DeepEqual(gs, lost) {
		t.Fatalf("status with states: %+v %v", gs, err)
	}
	var gr Status
	if err := DecodeStatus(AppendStatus(nil, &Status{ID: 3}), &gr); err != nil || gr.ID != 3 || gr.Reply {
		t.Fatalf("status request: %+v %v", gr, err)
	}
	var l Load
	if err := DecodeLoad(AppendLoad(nil, &Load{Idle: 1, Queued: 2, Steal: 3}), &l); err != nil || l != (Load{1, 2, 3}) {
		t.Fatalf("load: %+v %v", l, err)
	}
	var j Join
	if err := DecodeJoin(AppendJoin(nil, &Join{Ranks: 4, Slots: 8}), &j); err != nil || j != (Join{Ranks: 4, Slots: 8}) {
		t.Fatalf("join: %+v %v", j, err)
	}
	if err := DecodeJoin(AppendJoin(nil, &Join{Ranks: 3, Slots: 2, Alloc: "57"}), &j); err != nil || j != (Join{Ranks: 3, Slots: 2, Alloc: "57"}) {
		t.Fatalf("join with its allocation: %+v %v", j, err)
	}
	if s, err := DecodeText(AppendText(nil, "SIGINT")); err != nil || s != "SIGINT" {
		t.Fatalf("text: %q %v", s, err)
	}
	// A huge count in a short body is refused before allocating.
	if _, err := DecodeCancel([]byte{0xff, 0xff, 0xff, 0xff, 0x0f}, nil); !errors.Is(err, ErrBadMessage) {
		t.Fatalf("huge cancel count: %v", err)
	}
}

// FuzzDecodeMessages feeds arbitrary bytes to every message decoder: none
// may panic, and what decodes must re-encode to a body that decodes the
// same way.
func FuzzDecodeMessages(f *testing.F) {
	f.Add(AppendTask(nil, &Task{Kernel: "echo", Args: []string{"a"}, Payload: []byte("p")}))
	f.Add(AppendResult(nil, &Result{Status: ResultError, Message: "Boo!", Kernel: "fail", Rank: 1, Host: "h"}))
	f.Add(AppendRecord(AppendRecord(nil, 1, []byte("x")), 2, nil))
	f.Add(AppendCancel(nil, []uint64{1, 2}))
	f.Add(AppendLog(nil, &LogRecord{Task: 1, Msg: "m", Attrs: []string{"a", "b"}}))
	f.Add(AppendStatus(nil, &Status{ID: 1, Reply: true, Ranks: []RankStatus{{Rank: 1}}}))
	f.Add(AppendStatus(nil, &Status{ID: 2, Reply: true, Ranks: []RankStatus{{Rank: 1, Host: "n1", State: RankLost, Since: 5, Reason: "reset", Silent: 7}, {Rank: 2, State: RankMissing}}}))
	f.Add(AppendStatus(nil, &Status{ID: 3, Reply: true, Ranks: []RankStatus{{Rank: 1, Kept: 100000, HandedUp: 12}}}))
	f.Add(AppendStatus(nil, &Status{ID: 3, Reply: true, Ranks: []RankStatus{{Rank: 1, State: RankLost, Alloc: "57", Restarts: 2}, {Rank: 2, Restarts: 1}}}))
	f.Add(AppendLoad(nil, &Load{Idle: 1}))
	f.Add(AppendJoin(nil, &Join{Ranks: 2, Slots: 4, Alloc: "57"}))
	f.Fuzz(func(t *testing.T, b []byte) {
		var task Task
		if DecodeTask(b, &task) == nil {
			var again Task
			if err := DecodeTask(AppendTask(nil, &task), &again); err != nil || again.Kernel != task.Kernel || len(again.Args) != len(task.Args) {
				t.Fatalf("task round trip: %+v %+v %v", task, again, err)
			}
		}
		var res Result
		if DecodeResult(b, &res) == nil {
			var again Result
			if err := DecodeResult(AppendResult(nil, &res), &again); err != nil || again.Message != res.Message || string(again.Value) != string(res.Value) {
				t.Fatalf("result round trip: %+v %+v %v", res, again, err)
			}
		}
		_, _ = CountRecords(b)
		_, _ = DecodeCancel(b, nil)
		var lr LogRecord
		_, _ = DecodeLog(b, &lr)
		var st Status
		if DecodeStatus(b, &st) == nil {
			var again Status
			if err := DecodeStatus(AppendStatus(nil, &st), &again); err != nil || !reflect.DeepEqual(again, st) {
				t.Fatalf("status round trip: %+v %+v %v", st, again, err)
			}
		}
		var ld Load
		_ = DecodeLoad(b, &ld)
		var j Join
		if DecodeJoin(b, &j) == nil {
			var again Join
			if err := DecodeJoin(AppendJoin(nil, &j), &again); err != nil || again != j {
				t.Fatalf("join round trip: %+v %+v %v", j, again, err)
			}
		}
		_, _ = DecodeText(b)
	})
}

// TestStatusExtension: a reply in the first encoding (no extension block)
// decodes with the extension fields zero, and fields a later version adds
// at the end of an extension record are skipped.
func TestStatusExtension(t *testing.T) {
	st := Status{ID: 9, Reply: true, Ranks: []RankStatus{
		{Rank: 0, Parent: -1, Role: "server", Host: "h"},
		{Rank: 1, Depth: 1, Role: "worker", Host: "n1", Slots: 2, Busy: 1, Queued: 3, Done: 40},
	}}
	full := AppendStatus(nil, &st)
	base := func() []byte { return append([]byte(nil), full[:len(full)-5*len(st.Ranks)]...) }
	// Zero extension fields take 5 bytes a rank: length 4, state, since,
	// reason length, silent (an empty alloc is not written).
	tests := []struct {
		name string
		body []byte
		want Status
	}{
		{"first encoding", base(), st},
		{"current", full, st},
		{"later fields", func() []byte {
			b := base()
			for range st.Ranks {
				b = append(b, 11, byte(RankLost), 2, 0, 0, 0, 5, 7, 3, 0xAA, 0xBB, 0xCC) // alloc "", kept 5, handed up 7, restarts 3, then unknown bytes
			}
			return b
		}(), func() Status {
			w := st
			w.Ranks = append([]RankStatus(nil), st.Ranks...)
			for i := range w.Ranks {
				w.Ranks[i].State, w.Ranks[i].Since = RankLost, 1
				w.Ranks[i].Kept, w.Ranks[i].HandedUp, w.Ranks[i].Restarts = 5, 7, 3
			}
			return w
		}()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got Status
			if err := DecodeStatus(tt.body, &got); err != nil || !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
	bad := [][]byte{
		append(base(), 4, 9, 0, 0, 0, 4, 0, 0, 0, 0), // unknown state
		append(base(), 4, 0, 0, 0, 0),                // one record short
		append(append([]byte(nil), full...), 0),      // trailing byte
	}
	for i, b := range bad {
		var got Status
		if err := DecodeStatus(b, &got); !errors.Is(err, ErrBadMessage) {
			t.Errorf("bad body %d: %v, want ErrBadMessage", i, err)
		}
	}
}

func TestAppendTaskRecord(t *testing.T) {
	for _, tc := range []Task{
		{},
		{Kernel: "noop"},
		{Kernel: "len", Args: []string{"a", strings.Repeat("b", 200)}, Payload: make([]byte, 70000), LogLevel: -4, LogDepth: -1},
		{Kernel: "x", LogLevel: math.MaxInt32, LogDepth: math.MinInt32, Payload: []byte{1}},
	} {
		for _, id := range []uint64{0, 127, 128, math.MaxUint64} {
			want := AppendRecord([]byte{9}, id, AppendTask(nil, &tc))
			got := AppendTaskRecord([]byte{9}, id, &tc)
			if !bytes.Equal(got, want) {
				t.Errorf("AppendTaskRecord(%d, %q) = %x, want %x", id, tc.Kernel, got, want)
			}
			if n := RecordSize(id, TaskSize(&tc)); n != len(want)-1 {
				t.Errorf("RecordSize(%d, TaskSize(%q)) = %d, want %d", id, tc.Kernel, n, len(want)-1)
			}
		}
	}
}
