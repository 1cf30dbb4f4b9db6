// Package futures is the one futures table of qlaunch: the results of the
// Submit and Map calls a client or a running kernel made, and the one
// contract of Wait, Next and Cancel on them. The client
// (launcher/client), the worker's in-task runtime (launcher) and
// kerneltest each keep their futures in a Table; what differs between
// them is only how a caller blocks (handing a slot back, helping with
// queued work) and what cancelling a future stops, which they pass in.
//
// # Ownership
//
// A Table and its futures belong to one owner (a client, a running task)
// and are guarded by the owner's lock: every method is called with that
// lock held, and the Block function a waiting call is given is entered
// with it held and must return with it held. Nothing here starts a
// goroutine or takes a lock.
//
// # The contract
//
//   - New issues a future of n results; Handle is the kernels.Future
//     that names it. A future's ID carries its table's scope, so a
//     future used with a table that did not issue it is
//     kernels.ErrUnknownFuture, as is a made-up one.
//   - Wait blocks until every result is in and returns the values in
//     input order, or the first error by index, as the task reported it:
//     never wrapped, so errors.Is, errors.As and its text are the same as
//     Next reports for that index.
//   - Next blocks until at least one result not yet taken is in and
//     returns every such result, in arrival order; a result is never
//     returned twice.
//   - Cancel marks the future cancelled and wakes its waiter; the owner
//     stops the tasks it returns. Wait and Next on a cancelled future
//     return kernels.ErrCancelled. Cancelling a future again, or one
//     already drained, does nothing.
//   - A future is freed (forgotten by the table) as soon as it is
//     drained (Wait returned its values, or Next returned its last
//     result) or cancelled. Wait or Next on a drained future return
//     kernels.ErrNoMoreResults; on one of the last RecentCancels
//     cancelled, kernels.ErrCancelled. So a long-lived owner holds only
//     the futures still in use (Len).
//   - Close fails every call still waiting, and every later one on a
//     future not complete, with the owner's error (a lost connection).
package futures

import (
	"context"
	"errors"
	"fmt"
	"iter"

	"github.com/qlaunch/qlaunch/kernels"
)

// RecentCancels is how many cancelled futures a table remembers as
// cancelled after forgetting them; Wait or Next on an older one returns
// kernels.ErrNoMoreResults.
const RecentCancels = 1024

// seqBits is the width of a future's sequence number within its table;
// the bits above hold the table's scope.
const seqBits = 32

// ErrTooMany is returned by New once a table issued 2^32-1 futures.
var ErrTooMany = errors.New("futures: table issued its 4294967295 futures; use a new one")

// Block waits for progress on a future: it is called with the owner's
// lock held, returns with it held, and returns when woken fires or ctx
// ends (with the error Wait or Next should return), or earlier (having
// done other work meanwhile, such as running queued tasks): the caller
// checks again either way.
type Block func(ctx context.Context, woken <-chan struct{}) error

// Future is the state of one Submit or Map: n results, which arrived,
// which were taken. Data is the owner's own state of the future (its
// child tasks, its context).
type Future[X any] struct {
	Data X

	id        uint64
	n         int
	vals      [][]byte
	errs      []error // nil until a result fails
	arrived   []int32 // indices in arrival order
	seen      []uint64
	seenSmall [1]uint64
	done      int // results in
	taken     int // arrived[:taken] were returned by Next
	cancelled bool
	waiting   bool // a Wait or Next is blocked on it
	next      bool // the waiter is in Next: wake on every result
	wake      chan struct{}
}

// ID is the future's id, as in its kernels.Future.
func (f *Future[X]) ID() uint64 { return f.id }

// N is the number of results.
func (f *Future[X]) N() int { return f.n }

// Complete reports whether every result is in.
func (f *Future[X]) Complete() bool { return f.done == f.n }

// Cancelled reports whether the future was cancelled.
func (f *Future[X]) Cancelled() bool { return f.cancelled }

// Has reports whether result i is in.
func (f *Future[X]) Has(i int) bool { return f.seen[i/64]&(1<<(i%64)) != 0 }

// Missing calls fn with each index whose result is not in, in order.
func (f *Future[X]) Missing(fn func(i int)) {
	for i := range f.n {
		if !f.Has(i) {
			fn(i)
		}
	}
}

// Deliver records result i and wakes the waiter when it has something to
// return. It reports whether the result was taken: one out of range,
// already in, or for a cancelled future is dropped.
func (f *Future[X]) Deliver(i int, val []byte, err error) bool {
	if i < 0 || i >= f.n || f.cancelled || f.Has(i) {
		return false
	}
	f.seen[i/64] |= 1 << (i % 64)
	f.vals[i] = val
	if err != nil {
		if f.errs == nil {
			f.errs = make([]error, f.n)
		}
		f.errs[i] = err
	}
	f.arrived = append(f.arrived, int32(i))
	f.done++
	if f.waiting && (f.next || f.Complete()) {
		f.wakeUp()
	}
	return true
}

func (f *Future[X]) wakeUp() {
	if f.wake == nil {
		return
	}
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

// Table holds the futures of one owner: see the package comment.
type Table[X any] struct {
	scope uint64
	live  map[uint64]*Future[X]
	seq   uint64 // the last sequence number issued
	err   error  // set by Close

	// recent holds the ids of the last RecentCancels futures cancelled;
	// ring is their order, oldest at ringAt once full.
	recent map[uint64]struct{}
	ring   []uint64
	ringAt int
}

// NewTable returns an empty table whose futures' IDs carry scope in their
// upper 32 bits: owners that hand out futures from several tables (one
// per running task) give each its own scope, so that a future is never
// mistaken for another table's. The zero Table is an empty table of
// scope 0; a table allocates nothing until its first future.
func NewTable[X any](scope uint32) Table[X] {
	return Table[X]{scope: uint64(scope) << seqBits}
}

// New issues a future of n results.
func (t *Table[X]) New(n int) (*Future[X], error) {
	if t.err != nil {
		return nil, t.err
	}
	if t.seq == 1<<seqBits-1 {
		return nil, ErrTooMany
	}
	if t.live == nil {
		t.live = make(map[uint64]*Future[X])
	}
	t.seq++
	f := &Future[X]{id: t.scope | t.seq, n: n, vals: make([][]byte, n)}
	if n <= 64 {
		f.seen = f.seenSmall[:]
	} else {
		f.seen = make([]uint64, (n+63)/64)
	}
	t.live[f.id] = f
	return f, nil
}

// Handle is the kernels.Future naming f.
func (f *Future[X]) Handle() kernels.Future { return kernels.Future{ID: f.id, N: f.n} }

// Get returns the live future called id, or nil (never issued, forgotten):
// results for a forgotten future are dropped.
func (t *Table[X]) Get(id uint64) *Future[X] { return t.live[id] }

// Len is the number of futures the table holds: issued and not yet
// drained or cancelled.
func (t *Table[X]) Len() int { return len(t.live) }

// Live yields the futures the table holds, in no particular order.
func (t *Table[X]) Live() iter.Seq[*Future[X]] {
	return func(yield func(*Future[X]) bool) {
		for _, f := range t.live {
			if !yield(f) {
				return
			}
		}
	}
}

// Lookup returns the future kf names, or why there is none: it was never
// issued by this table (kernels.ErrUnknownFuture), it was cancelled
// (kernels.ErrCancelled) or it was drained (kernels.ErrNoMoreResults).
func (t *Table[X]) Lookup(kf kernels.Future) (*Future[X], error) {
	if f, ok := t.live[kf.ID]; ok && f.n == kf.N {
		return f, nil
	}
	seq := kf.ID &^ t.scope
	switch {
	case kf.ID&^(1<<seqBits-1) != t.scope || seq == 0 || seq > t.seq:
		return nil, fmt.Errorf("future %d: %w (futures are valid only where Submit or Map returned them)", kf.ID, kernels.ErrUnknownFuture)
	case t.live[kf.ID] != nil:
		return nil, fmt.Errorf("future %d of %d results: %w (it has %d)", kf.ID, kf.N, kernels.ErrUnknownFuture, t.live[kf.ID].n)
	}
	if _, ok := t.recent[kf.ID]; ok {
		return nil, kernels.ErrCancelled
	}
	return nil, fmt.Errorf("future %d: %w (a future is freed once Wait returned, Next returned its last result, or it was cancelled)", kf.ID, kernels.ErrNoMoreResults)
}

// forget drops f from the table, remembering it as cancelled if it was.
func (t *Table[X]) forget(f *Future[X]) {
	delete(t.live, f.id)
	if !f.cancelled {
		return
	}
	if t.recent == nil {
		t.recent = make(map[uint64]struct{})
	}
	if len(t.ring) < RecentCancels {
		t.ring = append(t.ring, f.id)
	} else {
		delete(t.recent, t.ring[t.ringAt])
		t.ring[t.ringAt] = f.id
		t.ringAt = (t.ringAt + 1) % RecentCancels
	}
	t.recent[f.id] = struct{}{}
}

// block marks f waited on and calls b.
func (f *Future[X]) block(ctx context.Context, b Block, next bool) error {
	if f.wake == nil {
		f.wake = make(chan struct{}, 1)
	}
	f.waiting, f.next = true, next
	err := b(ctx, f.wake)
	f.waiting, f.next = false, false
	return err
}

// Wait blocks (through b) until every result of kf is in, frees the
// future and returns the values in input order, or the first error by
// index as the task reported it.
func (t *Table[X]) Wait(ctx context.Context, kf kernels.Future, b Block) ([][]byte, error) {
	f, err := t.Lookup(kf)
	if err != nil {
		return nil, err
	}
	for !f.Complete() && !f.cancelled && t.err == nil {
		if err := f.block(ctx, b, false); err != nil {
			return nil, err
		}
	}
	switch {
	case f.cancelled:
		return nil, kernels.ErrCancelled
	case !f.Complete():
		return nil, t.err
	}
	t.forget(f)
	for _, e := range f.errs {
		if e != nil {
			return nil, e
		}
	}
	return f.vals, nil
}

// Next blocks (through b) until at least one result of kf not yet taken
// is in and returns every such result; the future is freed with its last.
func (t *Table[X]) Next(ctx context.Context, kf kernels.Future, b Block) ([]kernels.Result, error) {
	f, err := t.Lookup(kf)
	if err != nil {
		return nil, err
	}
	for {
		switch {
		case f.cancelled:
			return nil, kernels.ErrCancelled
		case f.taken < len(f.arrived):
			out := make([]kernels.Result, 0, len(f.arrived)-f.taken)
			for _, i := range f.arrived[f.taken:] {
				r := kernels.Result{Index: int(i), Value: f.vals[i]}
				if f.errs != nil {
					r.Err = f.errs[i]
				}
				out = append(out, r)
			}
			f.taken = len(f.arrived)
			if f.taken == f.n {
				t.forget(f)
			}
			return out, nil
		case t.err != nil:
			return nil, t.err
		}
		if err := f.block(ctx, b, true); err != nil {
			return nil, err
		}
	}
}

// Cancel marks kf cancelled, frees it and wakes its waiter, and returns
// it for the owner to stop its tasks (those still missing: Missing). It
// returns nil and no error for a future already cancelled or drained.
func (t *Table[X]) Cancel(kf kernels.Future) (*Future[X], error) {
	f, err := t.Lookup(kf)
	switch {
	case errors.Is(err, kernels.ErrUnknownFuture):
		return nil, err
	case err != nil:
		return nil, nil
	}
	t.CancelFuture(f)
	return f, nil
}

// CancelFuture marks f cancelled, frees it and wakes its waiter, unless
// it was cancelled before. Its values are dropped; which results were in
// stays known (Has, Missing).
func (t *Table[X]) CancelFuture(f *Future[X]) {
	if f.cancelled {
		return
	}
	f.cancelled = true
	if t.live[f.id] == f {
		t.forget(f)
	}
	f.vals, f.errs, f.arrived = nil, nil, nil
	f.wakeUp()
}

// Close fails every waiting call, and every later call on a future not
// complete, with err; New then returns err. The first error stays.
func (t *Table[X]) Close(err error) {
	if t.err != nil {
		return
	}
	t.err = err
	for _, f := range t.live {
		f.wakeUp()
	}
}

// Err is the error Close was given, or nil.
func (t *Table[X]) Err() error { return t.err }
