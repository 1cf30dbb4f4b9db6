package futures

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/qlaunch/qlaunch/kernels"
)

// owner is the smallest owner of a table: one lock, and a Block that
// waits on the future's wake-up with the lock released.
type owner struct {
	mu sync.Mutex
	t  Table[string]
}

func newOwner() *owner { return &owner{t: NewTable[string](3)} }

func (o *owner) block(ctx context.Context, woken <-chan struct{}) error {
	o.mu.Unlock()
	defer o.mu.Lock()
	select {
	case <-woken:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (o *owner) issue(t *testing.T, n int) kernels.Future {
	t.Helper()
	o.mu.Lock()
	defer o.mu.Unlock()
	f, err := o.t.New(n)
	if err != nil {
		t.Fatal(err)
	}
	return f.Handle()
}

func (o *owner) deliver(id uint64, i int, val string, err error) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	f := o.t.Get(id)
	return f != nil && f.Deliver(i, []byte(val), err)
}

func (o *owner) wait(ctx context.Context, kf kernels.Future) ([][]byte, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.t.Wait(ctx, kf, o.block)
}

func (o *owner) next(ctx context.Context, kf kernels.Future) ([]kernels.Result, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.t.Next(ctx, kf, o.block)
}

func (o *owner) len() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.t.Len()
}

func TestWaitReturnsInOrderAndFrees(t *testing.T) {
	o := newOwner()
	kf := o.issue(t, 3)
	if kf.ID>>32 != 3 || kf.N != 3 {
		t.Fatalf("handle %+v: want scope 3 in the upper bits and N 3", kf)
	}
	for _, i := range []int{2, 0, 1} {
		if !o.deliver(kf.ID, i, string(rune('a'+i)), nil) {
			t.Fatalf("result %d dropped", i)
		}
	}
	vs, err := o.wait(t.Context(), kf)
	if err != nil || string(vs[0])+string(vs[1])+string(vs[2]) != "abc" {
		t.Fatalf("Wait: %q, %v", vs, err)
	}
	if o.len() != 0 {
		t.Fatalf("%d futures held after Wait, want 0", o.len())
	}
	if _, err := o.wait(t.Context(), kf); !errors.Is(err, kernels.ErrNoMoreResults) {
		t.Fatalf("second Wait: %v", err)
	}
	if _, err := o.next(t.Context(), kf); !errors.Is(err, kernels.ErrNoMoreResults) {
		t.Fatalf("Next after Wait: %v", err)
	}
}

func TestDeliverDropsDuplicatesAndStrays(t *testing.T) {
	o := newOwner()
	kf := o.issue(t, 70) // past one word of the seen bitset
	if !o.deliver(kf.ID, 69, "x", nil) {
		t.Fatal("result 69 dropped")
	}
	for _, c := range []struct {
		i    int
		what string
	}{{69, "a duplicate"}, {70, "an index out of range"}, {-1, "a negative index"}} {
		if o.deliver(kf.ID, c.i, "y", nil) {
			t.Errorf("%s was taken", c.what)
		}
	}
	o.mu.Lock()
	f := o.t.Get(kf.ID)
	var missing int
	f.Missing(func(int) { missing++ })
	o.mu.Unlock()
	if missing != 69 {
		t.Errorf("%d results missing, want 69", missing)
	}
}

func TestFirstErrorByIndexUnwrapped(t *testing.T) {
	o := newOwner()
	kf := o.issue(t, 3)
	e1, e2 := errors.New("one"), errors.New("two")
	o.deliver(kf.ID, 2, "", e2)
	o.deliver(kf.ID, 1, "", e1)
	o.deliver(kf.ID, 0, "ok", nil)
	if _, err := o.wait(t.Context(), kf); err != e1 {
		t.Fatalf("Wait: %v, want the error of index 1 itself", err)
	}
}

func TestNextTakesEachOnceAndFreesWithTheLast(t *testing.T) {
	o := newOwner()
	kf := o.issue(t, 3)
	o.deliver(kf.ID, 1, "b", nil)
	o.deliver(kf.ID, 0, "a", nil)
	rs, err := o.next(t.Context(), kf)
	if err != nil || len(rs) != 2 || rs[0].Index != 1 || rs[1].Index != 0 {
		t.Fatalf("Next: %v, %v; want indices 1 then 0 (arrival order)", rs, err)
	}
	done := make(chan []kernels.Result)
	go func() {
		rs, _ := o.next(t.Context(), kf)
		done <- rs
	}()
	// The blocked Next is woken by the next result.
	o.deliver(kf.ID, 2, "c", errors.New("boom"))
	rs = <-done
	if len(rs) != 1 || rs[0].Index != 2 || rs[0].Err == nil {
		t.Fatalf("blocked Next: %v", rs)
	}
	if o.len() != 0 {
		t.Fatal("the drained future is still held")
	}
	if _, err := o.wait(t.Context(), kf); !errors.Is(err, kernels.ErrNoMoreResults) {
		t.Fatalf("Wait after Next took all: %v", err)
	}
}

func TestBlockedWaitWokenOnlyWhenComplete(t *testing.T) {
	o := newOwner()
	kf := o.issue(t, 2)
	type out struct {
		vs  [][]byte
		err error
	}
	done := make(chan out)
	go func() {
		vs, err := o.wait(t.Context(), kf)
		done <- out{vs, err}
	}()
	o.deliver(kf.ID, 0, "a", nil)
	o.deliver(kf.ID, 1, "b", nil)
	if r := <-done; r.err != nil || len(r.vs) != 2 {
		t.Fatalf("Wait: %q, %v", r.vs, r.err)
	}
}

func TestCancel(t *testing.T) {
	o := newOwner()
	kf := o.issue(t, 2)
	o.deliver(kf.ID, 0, "a", nil)
	waitErr := make(chan error)
	go func() {
		_, err := o.wait(t.Context(), kf)
		waitErr <- err
	}()
	o.mu.Lock()
	f, err := o.t.Cancel(kf)
	if err != nil || f == nil {
		t.Fatalf("Cancel: %v, %v", f, err)
	}
	var missing []int
	f.Missing(func(i int) { missing = append(missing, i) })
	if f.Deliver(1, []byte("late"), nil) {
		t.Error("a result for a cancelled future was taken")
	}
	o.mu.Unlock()
	if len(missing) != 1 || missing[0] != 1 {
		t.Errorf("missing %v, want [1]", missing)
	}
	if err := <-waitErr; !errors.Is(err, kernels.ErrCancelled) {
		t.Fatalf("blocked Wait: %v, want ErrCancelled", err)
	}
	if _, err := o.next(t.Context(), kf); !errors.Is(err, kernels.ErrCancelled) {
		t.Fatalf("Next: %v, want ErrCancelled", err)
	}
	o.mu.Lock()
	f, err = o.t.Cancel(kf)
	o.mu.Unlock()
	if f != nil || err != nil {
		t.Fatalf("second Cancel: %v, %v; want nothing", f, err)
	}
	if o.len() != 0 {
		t.Fatal("the cancelled future is still held")
	}
}

func TestRecentCancelsAreBounded(t *testing.T) {
	o := newOwner()
	first := o.issue(t, 1)
	o.mu.Lock()
	_, _ = o.t.Cancel(first)
	for range RecentCancels {
		f, _ := o.t.New(1)
		o.t.CancelFuture(f)
	}
	n := len(o.t.recent)
	o.mu.Unlock()
	if n != RecentCancels {
		t.Fatalf("%d cancellations remembered, want %d", n, RecentCancels)
	}
	if _, err := o.wait(t.Context(), first); !errors.Is(err, kernels.ErrNoMoreResults) {
		t.Fatalf("Wait on the oldest, forgotten cancellation: %v, want ErrNoMoreResults", err)
	}
}

func TestUnknownFutures(t *testing.T) {
	o := newOwner()
	kf := o.issue(t, 1)
	other := NewTable[string](4)
	g, _ := other.New(1)
	for _, c := range []struct {
		what string
		kf   kernels.Future
	}{
		{"another table's", g.Handle()},
		{"a made-up", kernels.Future{ID: 3<<32 | 99, N: 1}},
		{"the zero", kernels.Future{}},
		{"a wrong N", kernels.Future{ID: kf.ID, N: 2}},
	} {
		if _, err := o.wait(t.Context(), c.kf); !errors.Is(err, kernels.ErrUnknownFuture) {
			t.Errorf("Wait on %s future: %v, want ErrUnknownFuture", c.what, err)
		}
		o.mu.Lock()
		_, err := o.t.Cancel(c.kf)
		o.mu.Unlock()
		if !errors.Is(err, kernels.ErrUnknownFuture) {
			t.Errorf("Cancel of %s future: %v, want ErrUnknownFuture", c.what, err)
		}
	}
}

func TestContextEndsAWait(t *testing.T) {
	o := newOwner()
	kf := o.issue(t, 1)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := o.wait(ctx, kf); !errors.Is(err, context.Canceled) {
		t.Fatalf("Wait: %v", err)
	}
	if _, err := o.next(ctx, kf); !errors.Is(err, context.Canceled) {
		t.Fatalf("Next: %v", err)
	}
	// The future is intact.
	o.deliver(kf.ID, 0, "a", nil)
	if vs, err := o.wait(t.Context(), kf); err != nil || string(vs[0]) != "a" {
		t.Fatalf("Wait after: %q, %v", vs, err)
	}
}

func TestCloseFailsWaitersAndNewCalls(t *testing.T) {
	o := newOwner()
	kf := o.issue(t, 2)
	done := o.issue(t, 1)
	o.deliver(done.ID, 0, "in", nil)
	o.deliver(kf.ID, 0, "a", nil)
	waitErr := make(chan error)
	go func() {
		_, err := o.wait(t.Context(), kf)
		waitErr <- err
	}()
	lost := errors.New("connection lost")
	o.mu.Lock()
	o.t.Close(lost)
	o.t.Close(errors.New("second"))
	_, newErr := o.t.New(1)
	o.mu.Unlock()
	if err := <-waitErr; err != lost {
		t.Fatalf("blocked Wait: %v, want the close error", err)
	}
	if newErr != lost {
		t.Fatalf("New after Close: %v", newErr)
	}
	// Results in before Close are still taken: Next gives the arrived
	// one, then the close error; a complete future still waits.
	if rs, err := o.next(t.Context(), kf); err != nil || len(rs) != 1 {
		t.Fatalf("Next: %v, %v", rs, err)
	}
	if _, err := o.next(t.Context(), kf); err != lost {
		t.Fatalf("second Next: %v, want the close error", err)
	}
	if vs, err := o.wait(t.Context(), done); err != nil || string(vs[0]) != "in" {
		t.Fatalf("Wait on a complete future after Close: %q, %v", vs, err)
	}
}

func TestTooMany(t *testing.T) {
	tab := NewTable[struct{}](0)
	tab.seq = 1<<seqBits - 2
	if _, err := tab.New(1); err != nil {
		t.Fatal(err)
	}
	if _, err := tab.New(1); !errors.Is(err, ErrTooMany) {
		t.Fatalf("New past 2^32-1: %v", err)
	}
}
