package sched

import (
	"reflect"
	"slices"
	"testing"
)

func kinds(as []Action) []ActionKind {
	var k []ActionKind
	for _, a := range as {
		k = append(k, a.Kind)
	}
	return k
}

func TestRouting(t *testing.T) {
	s := New()
	const client, a, b Peer = 1, 2, 3
	s.AddChild(a, 1)
	s.AddChild(b, 1)
	s.Submit(client, 100, []byte("t0"), false)
	s.Submit(client, 101, []byte("t1"), false)
	got := s.Ready()
	if len(got) != 2 || got[0].To != a || got[1].To != b || string(got[0].Body) != "t0" {
		t.Fatalf("placement: %+v", got)
	}
	idA, idB := got[0].ID, got[1].ID
	s.Result(b, idB, []byte("r1"))
	s.Result(a, idA, []byte("r0"))
	want := []Action{
		{Kind: SendResult, To: client, ID: 101, Body: []byte("r1")},
		{Kind: SendResult, To: client, ID: 100, Body: []byte("r0")},
	}
	if got := s.Ready(); !reflect.DeepEqual(got, want) {
		t.Fatalf("results: got %+v, want %+v", got, want)
	}
	if s.Pending() != 0 {
		t.Fatalf("pending %d, want 0", s.Pending())
	}
}

func TestLeastLoadedBySlots(t *testing.T) {
	s := New()
	s.AddChild(1, 1)
	s.AddChild(2, 3)
	s.Load(1, 0, 0)
	s.Load(2, 0, 0)
	s.Ready()
	count := map[Peer]int{}
	for i := range 8 {
		s.Submit(9, uint64(i), nil, false)
	}
	for _, a := range s.Ready() {
		count[a.To]++
	}
	if count[1] != 2 || count[2] != 6 {
		t.Fatalf("placement %v, want 2 on the 1-slot child and 6 on the 3-slot child", count)
	}
}

func TestHeldUntilAChildJoins(t *testing.T) {
	s := New()
	s.Submit(1, 5, []byte("x"), false)
	if got := s.Ready(); len(got) != 0 || s.Held() != 1 {
		t.Fatalf("placed with no child: %+v, %d held", got, s.Held())
	}
	s.AddChild(2, 1)
	got := s.Ready()
	if len(got) != 1 || got[0].Kind != SendTask || got[0].To != 2 || s.Held() != 0 {
		t.Fatalf("after join: %+v, %d held", got, s.Held())
	}
}

func TestLostChildFailsItsTasks(t *testing.T) {
	s := New()
	s.AddChild(2, 1)
	s.AddChild(3, 1)
	s.Submit(1, 10, nil, false)
	s.Submit(1, 11, nil, false)
	placed := s.Ready()
	lost := placed[0].To
	s.RemoveChild(lost)
	got := s.Ready()
	if len(got) != 1 || got[0].Kind != FailTask || got[0].To != 1 || got[0].ID != 10 || got[0].Lost != lost {
		t.Fatalf("after loss: %+v", got)
	}
	// The next task goes to the survivor.
	s.Submit(1, 12, nil, false)
	if got := s.Ready(); len(got) != 1 || got[0].To == lost {
		t.Fatalf("after loss, placement: %+v", got)
	}
}

func TestCancelAndDropSource(t *testing.T) {
	s := New()
	s.AddChild(2, 4)
	s.Submit(1, 10, nil, false)
	s.Submit(1, 11, nil, false)
	s.Submit(7, 10, nil, false)
	placed := slices.Clone(s.Ready())
	s.Cancel(1, []uint64{11})
	got := s.Ready()
	if !reflect.DeepEqual(kinds(got), []ActionKind{SendCancel}) || got[0].ID != placed[1].ID {
		t.Fatalf("cancel: %+v", got)
	}
	// The cancelled task's result goes up (the source, when a relay,
	// frees its entry with it), and the entry is freed.
	s.Result(2, placed[1].ID, []byte("c"))
	if got := s.Ready(); len(got) != 1 || got[0].Kind != SendResult || got[0].To != 1 || got[0].ID != 11 {
		t.Fatalf("result of a cancelled task: %+v, want it sent to its source", got)
	}
	// Cancelling again sends nothing more.
	s.Cancel(1, []uint64{10})
	s.Cancel(1, []uint64{10})
	if got := s.Ready(); len(got) != 1 {
		t.Fatalf("cancel twice: %+v, want one SendCancel", got)
	}
	s.DropSource(7)
	got = s.Ready()
	if len(got) != 1 || got[0].Kind != SendCancel || got[0].ID != placed[2].ID {
		t.Fatalf("drop source: %+v", got)
	}
	// The dropped source's result goes nowhere; the entry is freed.
	s.Result(2, placed[2].ID, nil)
	s.Result(2, placed[0].ID, nil)
	if got := s.Ready(); len(got) != 1 || got[0].To != 1 {
		t.Fatalf("results after the drop: %+v, want only task 10's, to source 1", got)
	}
	if s.Pending() != 0 {
		t.Fatalf("%d entries left", s.Pending())
	}
}

// TestCancelHeldAnswers: a held task that its source cancels is answered
// at once, so a relay above frees its entry.
func TestCancelHeldAnswers(t *testing.T) {
	s := New()
	s.Submit(1, 10, nil, false)
	s.Cancel(1, []uint64{10})
	want := []Action{{Kind: Cancelled, To: 1, ID: 10}}
	if got := s.Ready(); !reflect.DeepEqual(got, want) || s.Pending() != 0 || s.Held() != 0 {
		t.Fatalf("cancel of a held task: %+v, want %+v", got, want)
	}
}

func TestStealWhenSiblingIdle(t *testing.T) {
	s := New()
	s.AddChild(1, 1)
	s.AddChild(2, 1)
	s.Load(1, 0, 10)
	s.Load(2, 1, 0)
	got := s.Ready()
	if len(got) != 1 || got[0].Kind != Steal || got[0].To != 1 || got[0].N != 4 {
		t.Fatalf("steal: %+v", got)
	}
	// A second report while the steal is outstanding asks nothing more.
	s.Load(2, 1, 0)
	if got := s.Ready(); len(got) != 0 {
		t.Fatalf("second steal: %+v", got)
	}
	// Surplus handed up by child 1 goes to the idle child 2.
	s.Submit(1, 50, nil, false)
	if got := s.Ready(); len(got) != 1 || got[0].To != 2 {
		t.Fatalf("surplus placement: %+v", got)
	}
}

func BenchmarkSubmitResult(b *testing.B) {
	s := New()
	s.AddChild(1, 2)
	body := []byte("task")
	for b.Loop() {
		s.Submit(9, 1, body, false)
		a := s.Ready()
		s.Result(1, a[0].ID, body)
		s.Ready()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/task")
}

func TestRetryableTaskPlacedAgain(t *testing.T) {
	s := New()
	s.AddChild(2, 1)
	s.Submit(1, 10, []byte("retry me"), true)
	s.Submit(1, 11, []byte("fail me"), false)
	placed := s.Ready()
	if len(placed) != 2 || placed[0].To != 2 || placed[1].To != 2 {
		t.Fatalf("placement: %+v", placed)
	}
	cur := Peer(2)
	for i := range MaxRetries {
		next := Peer(10 + i)
		s.AddChild(next, 1)
		s.Ready()
		s.RemoveChild(cur)
		got := s.Ready()
		var sent, failed []uint64
		for _, a := range got {
			switch {
			case a.Kind == SendTask && a.To == next && string(a.Body) == "retry me":
				sent = append(sent, a.ID)
			case a.Kind == FailTask && a.Lost == cur:
				failed = append(failed, a.ID)
			default:
				t.Fatalf("loss %d: unexpected %+v", i, a)
			}
		}
		wantFailed := []uint64(nil)
		if i == 0 {
			wantFailed = []uint64{11} // not retryable
		}
		if len(sent) != 1 || !slices.Equal(failed, wantFailed) || s.Retries() != uint64(i+1) {
			t.Fatalf("loss %d: sent %v failed %v, %d retries", i, sent, failed, s.Retries())
		}
		cur = next
	}
	s.RemoveChild(cur)
	if got := s.Ready(); len(got) != 1 || got[0].Kind != FailTask || got[0].ID != 10 {
		t.Fatalf("after %d retries: %+v, want task 10 failed", MaxRetries, got)
	}
}

// TestNoSlotLeftFailsAtOnce: once the only child is lost and nothing is
// reserved, held and new tasks fail at once instead of waiting forever.
func TestNoSlotLeftFailsAtOnce(t *testing.T) {
	s := New()
	const client, a Peer = 1, 2
	s.AddChild(a, 1)
	s.Submit(client, 10, []byte("r"), true)
	s.Ready()
	s.RemoveChild(a)
	want := []Action{{Kind: Unplaceable, To: client, ID: 10}}
	if got := s.Ready(); !reflect.DeepEqual(got, want) {
		t.Fatalf("retryable task of the lost only child: %+v, want %+v", got, want)
	}
	s.Submit(client, 11, []byte("n"), false)
	want = []Action{{Kind: Unplaceable, To: client, ID: 11}}
	if got := s.Ready(); !reflect.DeepEqual(got, want) {
		t.Fatalf("new task with no slot: %+v, want %+v", got, want)
	}
	if s.Pending() != 0 || s.Held() != 0 {
		t.Fatalf("entries left: %d pending, %d held", s.Pending(), s.Held())
	}
}

// TestReservedSlotsHoldTasks: while a lost child's slots are reserved (its
// replacement is starting), its retryable tasks and new ones wait for the
// replacement, which gets them; giving the reservation up fails them.
func TestReservedSlotsHoldTasks(t *testing.T) {
	s := New()
	const client, a, b, c Peer = 1, 2, 3, 4
	s.AddChild(a, 1)
	s.Submit(client, 10, []byte("r"), true)
	s.Submit(client, 11, []byte("n"), false)
	s.Ready()
	s.Reserve(1)
	s.RemoveChild(a)
	want := []Action{{Kind: FailTask, To: client, ID: 11, Lost: a}}
	if got := s.Ready(); !reflect.DeepEqual(got, want) {
		t.Fatalf("loss with a reservation: %+v, want %+v", got, want)
	}
	s.Submit(client, 12, []byte("x"), false)
	if got := s.Ready(); len(got) != 0 || s.Held() != 2 {
		t.Fatalf("while reserved: %+v, %d held, want 2 held", got, s.Held())
	}
	s.AddChild(b, 1)
	s.Reserve(0)
	got := s.Ready()
	if len(got) != 2 || got[0].To != b || string(got[0].Body) != "r" || got[1].To != b || string(got[1].Body) != "x" {
		t.Fatalf("replacement joined: %+v, want both tasks sent to it in order", got)
	}
	if s.Retries() != 1 {
		t.Fatalf("retries %d, want 1", s.Retries())
	}
	// Lost again, reserved, then given up: the held tasks fail.
	s.Reserve(1)
	s.RemoveChild(b)
	s.Ready()
	if s.Held() != 1 {
		t.Fatalf("held %d, want the retryable task", s.Held())
	}
	s.Reserve(0)
	if got := s.Ready(); len(got) != 1 || got[0].Kind != Unplaceable || got[0].ID != 10 {
		t.Fatalf("reservation given up: %+v, want task 10 unplaceable", got)
	}
	// A child without slots (a manager whose ranks were lost) gets tasks
	// no slot can take: it names its own lost ranks.
	s.AddChild(c, 0)
	s.Submit(client, 13, nil, false)
	if got := s.Ready(); len(got) != 1 || got[0].Kind != SendTask || got[0].To != c {
		t.Fatalf("with a child without slots: %+v, want the task sent to it", got)
	}
}

// TestStartingHolds: before any child with slots joined, tasks wait.
func TestStartingHolds(t *testing.T) {
	s := New()
	s.AddChild(2, 0)
	s.Submit(1, 1, nil, false)
	if got := s.Ready(); len(got) != 0 || s.Held() != 1 {
		t.Fatalf("starting: %+v, %d held, want held", got, s.Held())
	}
}

// TestDeterministicActions: dropping a source or losing a child yields the
// same actions in the same order every time (local-id order), whatever
// Go's map iteration order.
func TestDeterministicActions(t *testing.T) {
	run := func(drop bool) []Action {
		s := New()
		const client, a, b Peer = 1, 2, 3
		s.AddChild(a, 4)
		s.AddChild(b, 4)
		for i := range 16 {
			s.Submit(client, uint64(100+i), nil, false)
		}
		s.Ready()
		if drop {
			s.DropSource(client)
		} else {
			s.RemoveChild(a)
		}
		return slices.Clone(s.Ready())
	}
	for _, drop := range []bool{true, false} {
		first := run(drop)
		if len(first) != 8 && !drop || drop && len(first) != 16 {
			t.Fatalf("drop=%v: %d actions", drop, len(first))
		}
		for i := 1; i < len(first); i++ {
			if first[i].ID < first[i-1].ID {
				t.Fatalf("drop=%v: actions out of order: %+v", drop, first)
			}
		}
		for range 50 {
			if got := run(drop); !reflect.DeepEqual(got, first) {
				t.Fatalf("drop=%v: actions differ between runs:\n%+v\n%+v", drop, got, first)
			}
		}
	}
}

func TestDrainedChildGetsNoTaskAndLeavesCleanly(t *testing.T) {
	s := New()
	const client, a, b Peer = 1, 2, 3
	s.AddChild(a, 2)
	s.AddChild(b, 2)
	for i := range 4 {
		s.Submit(client, uint64(i), []byte{byte(i)}, false)
	}
	onA := []uint64{}
	for _, x := range s.Ready() {
		if x.To == a {
			onA = append(onA, x.ID)
		}
	}
	if len(onA) != 2 {
		t.Fatalf("before the drain a got %d tasks, want 2", len(onA))
	}
	if !s.Drain(a) || !s.Draining(a) || s.Draining(b) {
		t.Fatal("Drain(a) did not mark a, or marked b")
	}
	if s.Slots() != 2 {
		t.Fatalf("slots %d after draining a, want b's 2", s.Slots())
	}
	// New tasks, a hand-back from a (a submits as a source) and load
	// reports of a's idle slots all go to b.
	s.Submit(client, 10, []byte("new"), false)
	s.Submit(a, 1, []byte("handed back"), false)
	s.Load(a, 2, 0)
	s.AddChild(a, 2) // a join report after the drain changes nothing
	for _, x := range s.Ready() {
		if x.Kind != SendTask || x.To != b {
			t.Fatalf("after the drain: %+v, want every task sent to b", x)
		}
	}
	if s.Holding(a) != 2 {
		t.Fatalf("a holds %d, want 2", s.Holding(a))
	}
	for _, id := range onA {
		s.Result(a, id, []byte("r"))
	}
	if n := len(s.Ready()); n != 2 {
		t.Fatalf("a's results: %d actions, want 2", n)
	}
	if s.Holding(a) != 0 {
		t.Fatalf("a holds %d after its results, want 0", s.Holding(a))
	}
	s.RemoveChild(a)
	for _, x := range s.Ready() {
		if x.Kind == FailTask {
			t.Fatalf("a clean leave failed a task: %+v", x)
		}
	}
}

func TestDrainingTheLastChildLeavesNoSlot(t *testing.T) {
	s := New()
	s.AddChild(2, 1)
	s.Drain(2)
	s.Submit(1, 7, nil, false)
	want := []Action{{Kind: Unplaceable, To: 1, ID: 7}}
	if got := s.Ready(); !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v, want %+v (a draining child is no capacity)", got, want)
	}
	if s.Drain(9) {
		t.Fatal("Drain of an unknown child reported true")
	}
}

// A relay child (a joined allocation's manager: no load reports) that
// joins while a worker child holds a queue takes its share: it is
// offered stolen tasks at once, and again whenever it has room.
func TestJoiningRelayTakesQueuedWork(t *testing.T) {
	s := New()
	s.AddChild(1, 2) // a worker rank
	for i := range 100 {
		s.Submit(9, uint64(i), nil, false)
	}
	s.Load(1, 0, 98)
	s.Ready()
	s.AddChild(2, 4) // the new allocation's manager
	got := s.Ready()
	if len(got) != 1 || got[0].Kind != Steal || got[0].To != 1 || got[0].N != 16 {
		t.Fatalf("on the join: %+v, want one steal of 16 from child 1", got)
	}
	// Child 1 hands 16 up; they go to the new child.
	for i := range 16 {
		s.Submit(1, uint64(1000+i), nil, false)
	}
	s.Load(1, 0, 82)
	var ids []uint64
	for _, a := range s.Ready() {
		if a.Kind != SendTask || a.To != 2 {
			t.Fatalf("handed-up task placed %+v, want on child 2", a)
		}
		ids = append(ids, a.ID)
	}
	if len(ids) != 16 {
		t.Fatalf("%d tasks placed on child 2, want 16", len(ids))
	}
	// While it holds more than its slots, no steal; once it has room, one.
	for _, id := range ids[:12] {
		s.Result(2, id, nil)
	}
	for _, a := range s.Ready() {
		if a.Kind == Steal {
			t.Fatalf("steal while child 2 holds %d tasks on 4 slots", s.Holding(2))
		}
	}
	s.Result(2, ids[12], nil)
	got = s.Ready()
	if len(got) != 2 || !slices.ContainsFunc(got, func(a Action) bool { return a.Kind == Steal && a.To == 1 && a.N == 4 }) {
		t.Fatalf("child 2 with one slot free: %+v, want a result and a steal of 4", got)
	}
	// A draining relay child is offered nothing.
	s.Drain(2)
	s.Load(1, 0, 80)
	for _, a := range s.Ready() {
		if a.Kind == Steal {
			t.Fatalf("steal for a draining child: %+v", a)
		}
	}
}

// checkLoad holds Source and Total to the entries in flight.
func checkLoad(t *testing.T, s *Sched) {
	t.Helper()
	want := map[Peer]Load{}
	var total Load
	for _, e := range s.tasks {
		l := want[e.src]
		l.Tasks++
		l.Bytes += int64(e.size)
		want[e.src] = l
		total.Tasks++
		total.Bytes += int64(e.size)
	}
	if s.Total() != total {
		t.Fatalf("Total() = %+v, the entries hold %+v", s.Total(), total)
	}
	if len(s.sources) != len(want) {
		t.Fatalf("%d sources counted, %d hold entries", len(s.sources), len(want))
	}
	for src, l := range want {
		if s.Source(src) != l {
			t.Fatalf("Source(%d) = %+v, the entries hold %+v", src, s.Source(src), l)
		}
	}
}

// TestLoadCounts: Source and Total follow every way a task enters and
// leaves (placed, held, result, cancelled held and placed, dropped source,
// lost child with retryable and other tasks, unplaceable), and come back
// to zero.
func TestLoadCounts(t *testing.T) {
	s := New()
	const c1, c2, a, b Peer = 1, 2, 10, 11
	s.Submit(c1, 1, []byte("held"), false) // held: no child yet
	checkLoad(t, s)
	if got := s.Source(c1); got != (Load{1, 4}) {
		t.Fatalf("Source after one held task: %+v", got)
	}
	s.Cancel(c1, []uint64{1})
	checkLoad(t, s)
	s.AddChild(a, 2)
	s.AddChild(b, 2)
	for i := range uint64(6) {
		s.Submit(c1, 100+i, make([]byte, 10), i%2 == 0)
		s.Submit(c2, 200+i, make([]byte, 100), false)
		checkLoad(t, s)
	}
	if got := s.Total(); got != (Load{12, 660}) {
		t.Fatalf("Total = %+v, want 12 tasks of 660 bytes", got)
	}
	placed := slices.Clone(s.Ready())
	s.Result(placed[0].To, placed[0].ID, nil)
	checkLoad(t, s)
	s.Cancel(c1, []uint64{101, 103})
	checkLoad(t, s)
	s.DropSource(c2)
	checkLoad(t, s)
	s.RemoveChild(a) // retryable tasks of c1 go to b; the rest fail
	checkLoad(t, s)
	s.RemoveChild(b) // no slot left: retried tasks fail or are unplaceable
	checkLoad(t, s)
	for _, act := range s.Ready() {
		if act.Kind == SendTask {
			s.Result(act.To, act.ID, nil)
		}
	}
	checkLoad(t, s)
	if s.Pending() != 0 || s.Total() != (Load{}) || len(s.sources) != 0 {
		t.Fatalf("after everything: %d entries, Total %+v, %d sources", s.Pending(), s.Total(), len(s.sources))
	}
}

// released returns the loans that as says were released.
func released(as []Action) []Loan {
	var ls []Loan
	for _, a := range as {
		if a.Kind == Released {
			ls = append(ls, a.Loan)
		}
	}
	return ls
}

// TestLoans: a loan is released once the caller returned it and the
// scheduler keeps no body of it: at once for tasks placed and not
// retryable, once held tasks are placed, once retryable tasks finish (a
// retry after their child was lost keeps it, and its SendTask names it
// again), and when a kept task fails.
func TestLoans(t *testing.T) {
	const client, a, b Peer = 1, 2, 3
	t.Run("placed, not retryable", func(t *testing.T) {
		s := New()
		s.AddChild(a, 2)
		s.Ready()
		s.Lend(7)
		s.SubmitLent(client, 1, []byte("x"), false, 7)
		s.SubmitLent(client, 2, []byte("y"), false, 7)
		s.Return(7)
		got := s.Ready()
		if got[0].Kind != SendTask || got[0].Loan != 7 || got[1].Loan != 7 || !slices.Equal(released(got), []Loan{7}) {
			t.Fatalf("got %+v, want two SendTask naming loan 7, then loan 7 released", got)
		}
		if s.Loans() != 0 {
			t.Fatalf("%d loans open, want 0", s.Loans())
		}
	})
	t.Run("held", func(t *testing.T) {
		s := New()
		s.Lend(7)
		s.SubmitLent(client, 1, []byte("x"), false, 7)
		s.Return(7)
		if got := s.Ready(); len(got) != 0 {
			t.Fatalf("held task: got %+v, want nothing", got)
		}
		s.AddChild(a, 1)
		got := s.Ready()
		if len(got) != 2 || got[0].Kind != SendTask || got[0].Loan != 7 || !slices.Equal(released(got), []Loan{7}) {
			t.Fatalf("placed: got %+v, want SendTask naming loan 7, then loan 7 released", got)
		}
	})
	t.Run("retryable", func(t *testing.T) {
		s := New()
		s.AddChild(a, 1)
		s.AddChild(b, 1)
		s.Ready()
		s.Lend(7)
		s.SubmitLent(client, 1, []byte("x"), true, 7)
		s.SubmitLent(client, 2, []byte("y"), true, 7)
		s.Return(7)
		got := s.Ready()
		if len(released(got)) != 0 {
			t.Fatalf("kept for retries, yet released: %+v", got)
		}
		onA, onB := got[0].ID, got[1].ID
		s.RemoveChild(a) // the task on a goes to b again, still on loan 7
		got = s.Ready()
		if len(got) != 1 || got[0].Kind != SendTask || got[0].To != b || got[0].Loan != 7 {
			t.Fatalf("retry: got %+v, want a SendTask to %d naming loan 7", got, b)
		}
		s.Result(b, onB, []byte("r"))
		if got := s.Ready(); len(released(got)) != 0 {
			t.Fatalf("one task still kept, yet released: %+v", got)
		}
		s.Result(b, onA, []byte("r"))
		if got := s.Ready(); !slices.Equal(released(got), []Loan{7}) {
			t.Fatalf("both finished: got %+v, want loan 7 released", got)
		}
	})
	t.Run("failed", func(t *testing.T) {
		s := New()
		s.AddChild(a, 1)
		s.Ready()
		s.Lend(7)
		s.SubmitLent(client, 1, []byte("x"), true, 7)
		s.Return(7)
		s.Lend(8)
		s.SubmitLent(client, 2, []byte("y"), false, 8) // placed on a, over its slot
		s.Return(8)
		s.Ready()
		s.RemoveChild(a) // no child left: both fail
		got := s.Ready()
		if !slices.Equal(released(got), []Loan{7}) {
			t.Fatalf("lost with its child: got %+v, want loan 7 released", got)
		}
		if s.Loans() != 0 {
			t.Fatalf("%d loans open, want 0", s.Loans())
		}
	})
}
