package decide

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func at(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }

// step is one line of a scripted history: the observation at a time and
// the actions (kind:id) wanted, then what the shell reports back.
type step struct {
	at      float64
	backlog int
	jobs    map[string]Job // nil: not asked
	tree    map[string]Ranks
	want    []string // "submit", "drain:ID", "cancel:ID"
	submit  string   // the id the scheduler gives a submission ("" with fail)
	fail    string   // a submission's error
	phases  map[string]Phase
}

var policy = Policy{MaxAllocations: 2, Backlog: 10, BacklogFor: 2 * time.Second, IdleTimeout: 5 * time.Second, DrainTimeout: 30 * time.Second}

func run(t *testing.T, p Policy, steps []step) *Core {
	t.Helper()
	c := New(p)
	for i, s := range steps {
		acts := c.Step(Observation{Now: at(s.at), Backlog: s.backlog, Jobs: s.jobs, Tree: s.tree})
		var got []string
		for _, a := range acts {
			g := a.Kind.String()
			if a.ID != "" {
				g += ":" + a.ID
			}
			got = append(got, g)
			if a.Kind == Submit {
				if s.fail != "" {
					c.SubmitFailed(errors.New(s.fail), at(s.at))
				} else {
					c.Submitted(s.submit, at(s.at), false)
				}
			}
		}
		if !slices.Equal(got, s.want) {
			t.Fatalf("step %d (t=%vs): actions %q, want %q\nallocations %+v", i, s.at, got, s.want, c.List())
		}
		for id, ph := range s.phases {
			j := slices.IndexFunc(c.List(), func(a Allocation) bool { return a.ID == id })
			if j < 0 || c.List()[j].Phase != ph {
				t.Fatalf("step %d: allocation %s: %+v, want phase %s", i, id, c.List(), ph)
			}
		}
	}
	return c
}

func jobs(kv ...any) map[string]Job {
	m := map[string]Job{}
	for i := 0; i < len(kv); i += 2 {
		m[kv[i].(string)] = kv[i+1].(Job)
	}
	return m
}

var (
	pending = Job{State: JobPending, Detail: "PENDING"}
	running = Job{State: JobRunning, Detail: "RUNNING"}
)

// A backlog lasting backlog_for submits one allocation; it joins, takes
// the work, goes idle, drains after idle_timeout and ends.
func TestGrowAndShrink(t *testing.T) {
	c := run(t, policy, []step{
		{at: 0, backlog: 5},    // below the threshold
		{at: 1, backlog: 10},   // crosses it: counting
		{at: 2.9, backlog: 50}, // 1.9 s: not yet
		{at: 3, backlog: 50, want: []string{"submit"}, submit: "101"},
		{at: 3.2, backlog: 50, jobs: jobs("101", pending), tree: map[string]Ranks{}, phases: map[string]Phase{"101": Pending}},
		{at: 4, backlog: 50, jobs: jobs("101", running), phases: map[string]Phase{"101": Running}},
		// Waiting for 101 to join: no second one however long the backlog.
		{at: 9, backlog: 50, jobs: jobs("101", running), tree: map[string]Ranks{}},
		{at: 10, backlog: 20, jobs: jobs("101", running), tree: map[string]Ranks{"101": {Ranks: 2, Busy: 4}}, phases: map[string]Phase{"101": Joined}},
		{at: 11, backlog: 0, jobs: jobs("101", running), tree: map[string]Ranks{"101": {Ranks: 2, Busy: 1}}},
		{at: 12, backlog: 0, tree: map[string]Ranks{"101": {Ranks: 2}}}, // idle from 12
		{at: 16.9, backlog: 0, tree: map[string]Ranks{"101": {Ranks: 2}}},
		{at: 17, backlog: 0, tree: map[string]Ranks{"101": {Ranks: 2}}, want: []string{"drain:101"}, phases: map[string]Phase{"101": Draining}},
		{at: 18, backlog: 0, jobs: jobs("101", running), tree: map[string]Ranks{}},
		{at: 19, backlog: 0, jobs: jobs(), tree: map[string]Ranks{}, phases: map[string]Phase{"101": Ended}},
	})
	a := c.List()[0]
	if !strings.HasPrefix(a.Reason, "drained (idle for 5s)") || !a.Submitted.Equal(at(3)) || !a.Joined.Equal(at(10)) || !a.Ended.Equal(at(19)) {
		t.Fatalf("allocation %+v", a)
	}
	if c.Err() != nil || len(c.Live()) != 0 {
		t.Fatalf("err %v live %v", c.Err(), c.Live())
	}
}

// A backlog that dips below the threshold starts counting again.
func TestBacklogMustLast(t *testing.T) {
	run(t, policy, []step{
		{at: 0, backlog: 10},
		{at: 1.5, backlog: 9},
		{at: 2.5, backlog: 10},
		{at: 4.4, backlog: 10},
		{at: 4.5, backlog: 10, want: []string{"submit"}, submit: "7"},
	})
}

// Busy or queued ranks are not idle, nor is an idle allocation while
// tasks queue elsewhere.
func TestNoDrainWhileWorkRemains(t *testing.T) {
	p := policy
	p.MaxAllocations = 1
	run(t, p, []step{
		{at: 0, backlog: 10},
		{at: 2, backlog: 10, want: []string{"submit"}, submit: "1"},
		{at: 3, backlog: 10, tree: map[string]Ranks{"1": {Ranks: 1}}},            // joined, idle, but a backlog
		{at: 9, backlog: 3, tree: map[string]Ranks{"1": {Ranks: 1}}},             // still queued tasks
		{at: 10, backlog: 0, tree: map[string]Ranks{"1": {Ranks: 1, Queued: 2}}}, // its own queue
		{at: 16, backlog: 0, tree: map[string]Ranks{"1": {Ranks: 1, Busy: 1}}},   // busy
		{at: 17, backlog: 0, tree: map[string]Ranks{"1": {Ranks: 1}}},            // idle from 17
		{at: 21, backlog: 0, tree: nil},                                          // not asked: no change
		{at: 22, backlog: 0, tree: map[string]Ranks{"1": {Ranks: 1}}, want: []string{"drain:1"}},
	})
}

// max_allocations bounds the active ones; a draining one does not count.
func TestMaxAllocations(t *testing.T) {
	run(t, policy, []step{
		{at: 0, backlog: 100},
		{at: 2, backlog: 100, want: []string{"submit"}, submit: "1"},
		{at: 3, backlog: 100, tree: map[string]Ranks{"1": {Ranks: 1, Busy: 1}}},
		{at: 4.9, backlog: 100, tree: map[string]Ranks{"1": {Ranks: 1, Busy: 1}}},
		{at: 5, backlog: 100, want: []string{"submit"}, submit: "2"}, // 2 s after the last submission
		{at: 6, backlog: 100, tree: map[string]Ranks{"1": {Ranks: 1, Busy: 1}, "2": {Ranks: 1, Busy: 1}}},
		{at: 60, backlog: 100, tree: map[string]Ranks{"1": {Ranks: 1, Busy: 1}, "2": {Ranks: 1, Busy: 1}}}, // at the most
	})
}

// scancel of a joined allocation without a drain: it ends undrained, and
// a lasting backlog submits a replacement.
func TestReplacementAfterScancel(t *testing.T) {
	p := policy
	p.MaxAllocations = 1
	c := run(t, p, []step{
		{at: 0, backlog: 50},
		{at: 2, backlog: 50, want: []string{"submit"}, submit: "1"},
		{at: 3, backlog: 50, jobs: jobs("1", running), tree: map[string]Ranks{"1": {Ranks: 2, Busy: 2}}},
		{at: 4, backlog: 50, jobs: jobs("1", Job{State: JobEnded, Detail: "CANCELLED"}), tree: map[string]Ranks{}, phases: map[string]Phase{"1": Ended}},
		{at: 5, backlog: 50, want: []string{"submit"}, submit: "2"}, // backlog_for after the join
	})
	a := c.List()[0]
	if !strings.Contains(a.Reason, "ended without a drain (CANCELLED)") || !strings.Contains(a.Reason, "retried or failed") {
		t.Fatalf("reason %q", a.Reason)
	}
}

// Repeated submission failures back off, then give up with the last
// error; alloc add clears it.
func TestGiveUp(t *testing.T) {
	c := run(t, policy, []step{
		{at: 0, backlog: 50},
		{at: 2, backlog: 50, want: []string{"submit"}, fail: "sbatch: error: invalid partition specified: nope"},
		{at: 2.9, backlog: 50},
		{at: 3, backlog: 50, want: []string{"submit"}, fail: "sbatch: error: invalid partition specified: nope"},
		{at: 4.9, backlog: 50},
		{at: 5, backlog: 50, want: []string{"submit"}, fail: "sbatch: error: invalid partition specified: nope"},
		{at: 100, backlog: 50},
	})
	err := c.Err()
	if !errors.Is(err, ErrGaveUp) || !strings.Contains(err.Error(), "after 3 failed submissions in a row") || !strings.Contains(err.Error(), "invalid partition") {
		t.Fatalf("err %v", err)
	}
	if err := c.Add(); err != nil || c.Err() != nil {
		t.Fatalf("add after giving up: %v, err %v", err, c.Err())
	}
}

// A job that ends before any rank joined (its script failed) counts as
// a failed submission.
func TestJobFailingBeforeJoinCounts(t *testing.T) {
	p := policy
	p.MaxFailures = 2
	c := run(t, p, []step{
		{at: 0, backlog: 50},
		{at: 2, backlog: 50, want: []string{"submit"}, submit: "1"},
		{at: 3, backlog: 50, jobs: jobs("1", Job{State: JobEnded, Detail: "FAILED"}), tree: map[string]Ranks{}},
		{at: 4, backlog: 50, want: []string{"submit"}, submit: "2"},
		{at: 5, backlog: 50, jobs: jobs(), tree: map[string]Ranks{}},
		{at: 60, backlog: 50},
	})
	if err := c.Err(); err == nil || !strings.Contains(err.Error(), "job 2 ended before any rank joined (no longer listed)") {
		t.Fatalf("err %v", err)
	}
}

// A drained allocation the scheduler still lists after DrainTimeout is
// cancelled, once.
func TestDrainTimeoutCancels(t *testing.T) {
	run(t, policy, []step{
		{at: 0, backlog: 50},
		{at: 2, backlog: 50, want: []string{"submit"}, submit: "1"},
		{at: 3, backlog: 0, tree: map[string]Ranks{"1": {Ranks: 1}}},
		{at: 8, backlog: 0, tree: map[string]Ranks{"1": {Ranks: 1}}, want: []string{"drain:1"}},
		{at: 37.9, backlog: 0, jobs: jobs("1", running)},
		{at: 38, backlog: 0, jobs: jobs("1", running), want: []string{"cancel:1"}},
		{at: 39, backlog: 0, jobs: jobs("1", running)},
		{at: 40, backlog: 0, jobs: jobs(), phases: map[string]Phase{"1": Ended}},
	})
}

// By hand: add respects max_allocations, remove drains a joined one and
// cancels a waiting one; Stop cancels every live one.
func TestManualAndStop(t *testing.T) {
	c := New(Policy{MaxAllocations: 2, Backlog: 1, IdleTimeout: time.Hour})
	for i, id := range []string{"1", "2"} {
		if err := c.Add(); err != nil {
			t.Fatal(err)
		}
		c.Submitted(id, at(float64(i)), true)
	}
	if err := c.Add(); err == nil || !strings.Contains(err.Error(), "max_allocations") {
		t.Fatalf("third add: %v", err)
	}
	c.Step(Observation{Now: at(3), Tree: map[string]Ranks{"1": {Ranks: 1}}})
	if a, err := c.Remove("1", at(4)); err != nil || a.Kind != Drain {
		t.Fatalf("remove joined: %+v %v", a, err)
	}
	if a, err := c.Remove("2", at(4)); err != nil || a.Kind != Cancel {
		t.Fatalf("remove pending: %+v %v", a, err)
	}
	if _, err := c.Remove("2", at(5)); err == nil || !strings.Contains(err.Error(), "draining already") {
		t.Fatalf("remove twice: %v", err)
	}
	if _, err := c.Remove("9", at(5)); err == nil {
		t.Fatal("remove of an unknown id")
	}
	if err := c.Add(); err != nil {
		t.Fatalf("add once both drain: %v", err)
	}
	c.Submitted("3", at(6), true)
	var got []string
	for _, a := range c.Stop() {
		got = append(got, fmt.Sprintf("%s:%s", a.Kind, a.ID))
	}
	if want := []string{"cancel:1", "cancel:2", "cancel:3"}; !slices.Equal(got, want) {
		t.Fatalf("stop: %v, want %v", got, want)
	}
	c.Step(Observation{Now: at(7), Jobs: map[string]Job{}})
	if len(c.Live()) != 0 || len(c.Stop()) != 0 {
		t.Fatalf("live after every job left: %v", c.Live())
	}
}
