package executor

import (
	"reflect"
	"testing"
)

// core is the type under test: tasks are ints, parked kernels strings.
type core = Core[int, string]

func pushN(c *core, from, n int) {
	for i := range n {
		c.Push(from + i)
	}
}

func TestDispatchStartsRunnersWithFairBatchesNewestFirst(t *testing.T) {
	c := New[int, string](2)
	pushN(c, 0, 40)
	fx := c.Dispatch(false)
	// Half the queue over the tokens: 40/(2*2) = 10, then 30/4 = 7.
	want := [][]int{{39, 38, 37, 36, 35, 34, 33, 32, 31, 30}, {29, 28, 27, 26, 25, 24, 23}}
	if !reflect.DeepEqual(fx.Start, want) || fx.Inline != nil || fx.Wake != nil {
		t.Fatalf("effects %+v, want start %v", fx, want)
	}
	if c.Free() != 0 || c.Queued() != 23 {
		t.Fatalf("free %d queued %d, want 0 and 23", c.Free(), c.Queued())
	}
	// No token left: nothing more starts.
	if fx := c.Dispatch(false); fx.Start != nil {
		t.Fatalf("dispatch without a free token started %v", fx.Start)
	}
}

func TestBatchBounds(t *testing.T) {
	c := New[int, string](1)
	pushN(c, 0, 1000)
	if fx := c.Dispatch(false); len(fx.Start) != 1 || len(fx.Start[0]) != MaxBatch {
		t.Fatalf("batch of %v, want one of MaxBatch", fx.Start)
	}
	c = New[int, string](8)
	pushN(c, 0, 3)
	fx := c.Dispatch(false)
	if len(fx.Start) != 3 || len(fx.Start[0]) != 1 {
		t.Fatalf("3 tasks on 8 tokens started %v, want three batches of one", fx.Start)
	}
}

func TestDispatchKeepReturnsInlineBatch(t *testing.T) {
	c := New[int, string](2)
	pushN(c, 0, 1)
	fx := c.Dispatch(true)
	if !reflect.DeepEqual(fx.Inline, []int{0}) || fx.Start != nil || c.Free() != 1 {
		t.Fatalf("effects %+v free %d, want inline [0] and one token free", fx, c.Free())
	}
}

func TestParkedKernelsGetTokensBeforeQueuedTasks(t *testing.T) {
	c := New[int, string](1)
	pushN(c, 0, 4)
	batch := c.Dispatch(false).Start[0] // the only token
	// A kernel of batch waits: it helps first.
	if h := c.Help(0); len(h) == 0 {
		t.Fatal("a waiting kernel with work queued got nothing to help with")
	}
	if h := c.Help(MaxHelpDepth); h != nil {
		t.Fatalf("help at the depth bound returned %v, want nil", h)
	}
	// It parks: its token runs the rest of the queue.
	fx := c.Park()
	if len(fx.Start) != 1 {
		t.Fatalf("park started %v, want one runner for the queue", fx.Start)
	}
	// Its future completes while the runner holds the token: no token.
	if c.TakeToken() {
		t.Fatal("took a token while none was free")
	}
	c.WaitToken("k1")
	// The runner finishes its batch: the token goes to k1, not the queue.
	pushN(c, 100, 3)
	next, wake, woke, done := c.Continue(batch)
	if !woke || wake != "k1" || !done || next != nil {
		t.Fatalf("continue = %v %q %v %v, want the token handed to k1", next, wake, woke, done)
	}
	if c.Free() != 0 {
		t.Fatalf("free %d after the hand-over, want 0", c.Free())
	}
	// k1 returns: Release gives its token to queued work.
	fx = c.Release()
	if len(fx.Start) != 1 || fx.Wake != nil {
		t.Fatalf("release = %+v, want one runner for the queue", fx)
	}
}

func TestTakeTokenQueuesBehindParked(t *testing.T) {
	c := New[int, string](1)
	c.Dispatch(false) // nothing queued: token stays free
	c.WaitToken("first")
	// A token is free but someone parked first: wait behind them.
	if c.TakeToken() {
		t.Fatal("took a token ahead of a parked kernel")
	}
	c.WaitToken("second")
	fx := c.Dispatch(false)
	if !reflect.DeepEqual(fx.Wake, []string{"first"}) {
		t.Fatalf("woke %v, want [first]", fx.Wake)
	}
	if fx := c.Release(); !reflect.DeepEqual(fx.Wake, []string{"second"}) {
		t.Fatalf("release woke %v, want [second]", fx.Wake)
	}
}

func TestContinueDrainsThenReleases(t *testing.T) {
	c := New[int, string](1)
	pushN(c, 0, 3)
	batch := c.Dispatch(false).Start[0]
	var ran []int
	for {
		ran = append(ran, batch...)
		next, _, woke, done := c.Continue(batch)
		if woke {
			t.Fatal("woke a kernel nobody parked")
		}
		if done {
			break
		}
		batch = next
	}
	if !reflect.DeepEqual(ran, []int{2, 1, 0}) || c.Free() != 1 {
		t.Fatalf("ran %v free %d, want [2 1 0] and the token back", ran, c.Free())
	}
}

func TestStopWakesParkedAndStartsNothing(t *testing.T) {
	c := New[int, string](1)
	pushN(c, 0, 2)
	batch := c.Dispatch(false).Start[0]
	c.WaitToken("a")
	c.WaitToken("b")
	if got := c.Stop(); !reflect.DeepEqual(got, []string{"a", "b"}) {
		t.Fatalf("stop returned %v, want [a b]", got)
	}
	if _, _, woke, done := c.Continue(batch); woke || !done {
		t.Fatal("a stopping runner went on")
	}
	if fx := c.Release(); fx.Start != nil || fx.Inline != nil {
		t.Fatalf("release while stopping = %+v, want nothing started", fx)
	}
	if h := c.Help(0); h != nil {
		t.Fatalf("help while stopping = %v", h)
	}
}

func TestStealOldestFirst(t *testing.T) {
	c := New[int, string](1)
	c.Dispatch(false)
	pushN(c, 0, 5)
	if got := c.StealOldest(2); !reflect.DeepEqual(got, []int{0, 1}) {
		t.Fatalf("stole %v, want [0 1]", got)
	}
	if got := c.StealOldest(10); !reflect.DeepEqual(got, []int{2, 3, 4}) || c.Queued() != 0 {
		t.Fatalf("stole %v, queued %d; want [2 3 4] and none", got, c.Queued())
	}
}

func TestLoadReports(t *testing.T) {
	c := New[int, string](2)
	type step struct {
		do   func()
		want Load
		ok   bool
	}
	steps := []step{
		{func() {}, Load{}, false},                                    // idle, as reported at start
		{func() { pushN(c, 0, 1); c.Dispatch(false) }, Load{}, false}, // busy alone: not reported
		{func() { pushN(c, 1, 1); c.Dispatch(false) }, Load{}, false}, // all busy, queue empty
		{func() { pushN(c, 2, 1) }, Load{}, false},                    // one queued is no surplus
		{func() { pushN(c, 3, 1) }, Load{Idle: 0, Queued: 2}, true},   // 2 queued: a power of two passed
		{func() { pushN(c, 4, 1) }, Load{}, false},                    // 3: same power
		{func() { pushN(c, 5, 1) }, Load{Idle: 0, Queued: 4}, true},   // 4
		{func() { c.StealOldest(4) }, Load{Idle: 0, Queued: 0}, true}, // back below 2
		{func() { c.Continue(nil) }, Load{Idle: 1, Queued: 0}, true},  // idle again
		{func() { c.ForgetLoad() }, Load{Idle: 1, Queued: 0}, true},   // after a steal: say it again
		{func() {}, Load{}, false},
	}
	for i, s := range steps {
		s.do()
		got, ok := c.Load()
		if ok != s.ok || got != s.want {
			t.Fatalf("step %d: load %+v %v, want %+v %v", i, got, ok, s.want, s.ok)
		}
	}
}

func TestInlinePolicy(t *testing.T) {
	c := New[int, string](1)
	turn, check := c.BeginInline()
	if turn == 0 || !check {
		t.Fatalf("first inline batch: turn %d check %v, want a turn and the check started", turn, check)
	}
	// A kernel of another batch waits: no hand-off.
	if c.HandOff(0) || c.HandOff(turn+1) {
		t.Fatal("handed off for a batch that is not the reader's")
	}
	// The check right after: the batch has not run a whole period.
	if h, again := c.CheckTurn(); h || !again {
		t.Fatalf("first check = %v %v, want no hand-off, again", h, again)
	}
	// At the next check it has: hand the reading over, once.
	if h, again := c.CheckTurn(); !h || !again {
		t.Fatalf("second check = %v %v, want a hand-off", h, again)
	}
	if c.EndInline(turn) {
		t.Fatal("the goroutine of a batch taken over still reads")
	}
	// A new batch whose kernel waits: hand off at once.
	turn, check = c.BeginInline()
	if check {
		t.Fatal("the check was started twice")
	}
	if !c.HandOff(turn) || c.HandOff(turn) {
		t.Fatal("want exactly one hand-off for a waiting kernel")
	}
	// A batch that ends before any check goes on reading.
	turn, _ = c.BeginInline()
	if !c.EndInline(turn) {
		t.Fatal("a batch that ended in time lost the reading")
	}
	// The check stops after TurnIdleChecks checks without a batch.
	n := 0
	for {
		n++
		if _, again := c.CheckTurn(); !again {
			break
		}
		if n > 2*TurnIdleChecks {
			t.Fatal("the check never stopped")
		}
	}
	if n != TurnIdleChecks+1 {
		t.Fatalf("check stopped after %d idle checks, want %d", n, TurnIdleChecks+1)
	}
	if _, check := c.BeginInline(); !check {
		t.Fatal("the check was not started again")
	}
}
