// Package client is the Go client of a qlaunch runtime: it connects to the
// server, submits kernels (Submit, Map), takes their results (Wait, Next),
// cancels them (Cancel), asks for the tree's status (Status), and receives
// the log records its tasks emit. It links only the wire protocol, never
// the server.
//
// A Client is safe for concurrent use. Tasks travel in batches: calls made
// while the connection's writer is busy are sent together in one frame.
// Closing the client (or losing its connection) cancels its tasks in the
// runtime and fails every call still waiting.
//
// A long-lived client holds only the futures still in use: it forgets a
// future once Wait returned, once Next returned its last result, or once
// it was cancelled (later results of its tasks are dropped). Wait or Next
// on a forgotten future returns kernels.ErrNoMoreResults, or the
// cancellation error for one of the last 1024 cancelled (Futures counts
// those held).
package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/qlaunch/qlaunch/kernels"
	"github.com/qlaunch/qlaunch/launcher/wire"
)

var (
	// ErrClosed is returned by calls on a closed client, and by waits it
	// interrupted.
	ErrClosed = errors.New("client: closed")
	// ErrRankLost is wrapped by the TaskError of a task whose rank was lost.
	ErrRankLost = kernels.ErrRankLost
)

// TaskError is the error of a task that failed in the runtime: see
// kernels.TaskError.
type TaskError = kernels.TaskError

// Options configure a client.
type Options struct {
	Secret wire.Secret
	Wire   wire.Options
	// Logger receives the records the client's tasks log, with their
	// rank and host as attributes. Nil drops them.
	Logger *slog.Logger
	// LogLevel is the lowest level tasks forward; records below it are not
	// sent at all. The zero value is slog.LevelInfo.
	LogLevel slog.Level
	// LogDepth limits forwarding to tasks nested less than LogDepth levels
	// below the client's own tasks (1: only the client's tasks log; 2:
	// they and their children …). Zero means no limit. BQSKit's
	// max_logging_depth d is LogDepth d+1.
	LogDepth int
	// DialTimeout bounds connecting and authenticating; zero means 10 s.
	DialTimeout time.Duration
	// Host names this client in the server's logs.
	Host string
	// TLS, if set, runs the connection inside TLS (wire.LoadTLS); the
	// secret is still proved inside it.
	TLS *wire.TLS
}

// Client is a connection to a qlaunch server.
type Client struct {
	opts Options
	nc   net.Conn
	fc   *wire.Conn

	mu         sync.Mutex
	futures    map[uint64]*future
	nextFuture uint64
	// recentCancel holds the ids of the last maxRecentCancel futures
	// cancelled (and so forgotten), for calls on them to say so; ring is
	// their order, oldest first from ringAt.
	recentCancel map[uint64]struct{}
	ring         []uint64
	ringAt       int
	submitOut    [][]byte // task batches, each of about wire.MaxBatch at most
	freeBufs     [][]byte // written batches, for reuse
	cancelOut    []uint64
	ctrlOut      []frame
	statusWait   map[uint64]chan []wire.RankStatus
	nextStatus   uint64
	maxFrame     int
	err          error
	wake         chan struct{}
	writeMu      sync.Mutex // held while writing to the connection
	wg           sync.WaitGroup
}

type frame struct {
	kind wire.Kind
	body []byte
}

type future struct {
	n         int
	vals      [][]byte
	errs      []error
	arrived   []int32
	taken     int
	done      int
	waited    bool
	cancelled bool
	waiting   bool
	next      bool
	wake      chan struct{}
}

const indexBits = 32

// maxRecentCancel is how many cancelled futures the client remembers as
// cancelled after forgetting them: Wait or Next on one of them says it was
// cancelled; on an older one they return kernels.ErrNoMoreResults.
const maxRecentCancel = 1024

// linkBuffer is the socket buffer size asked for, each way: with the
// kernel's autotuned default (16 KiB to start), maps of 1 MiB payloads ran
// at three quarters of the speed in process (BenchmarkWorkloads/payload).
const linkBuffer = 4 << 20

// maxFree is how many written batch buffers (of about wire.MaxBatch) the
// client keeps for reuse. Map sends a large map batch by batch as it
// encodes it, so a few suffice; fresh buffers are not free: zeroing new
// memory (slices.Grow of a 16 MiB map's buffer) was a fifth of the CPU
// time of the payload workload in process.
const maxFree = 4

// Dial connects to the server at addr and authenticates.
func Dial(ctx context.Context, addr string, opts Options) (*Client, error) {
	if opts.DialTimeout <= 0 {
		opts.DialTimeout = 10 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, opts.DialTimeout)
	defer cancel()
	nc, fc, err := dialBusy(ctx, addr, opts)
	if err != nil {
		return nil, err
	}
	c := &Client{
		opts: opts, nc: nc, fc: fc,
		futures: make(map[uint64]*future), statusWait: make(map[uint64]chan []wire.RankStatus),
		recentCancel: make(map[uint64]struct{}),
		wake:         make(chan struct{}, 1), maxFrame: opts.Wire.MaxFrame,
	}
	if c.maxFrame <= 0 {
		c.maxFrame = wire.DefaultMaxFrame
	}
	c.wg.Go(c.readLoop)
	c.wg.Go(c.writeLoop)
	return c, nil
}

// Close closes the connection; the runtime cancels the client's tasks.
// Calls still waiting return ErrClosed. Closing twice is harmless.
func (c *Client) Close() error {
	c.fail(ErrClosed)
	c.wg.Wait()
	return nil
}

func (c *Client) fail(err error) {
	c.mu.Lock()
	if c.err == nil {
		c.err = err
		for _, f := range c.futures {
			wakeup(f)
		}
		for id, ch := range c.statusWait {
			close(ch)
			delete(c.statusWait, id)
		}
	}
	c.mu.Unlock()
	c.nc.Close()
	c.wakeWriter()
}

func wakeup(f *future) {
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

func (c *Client) wakeWriter() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// Submit starts one task.
func (c *Client) Submit(ctx context.Context, t kernels.Task) (kernels.Future, error) {
	return c.Map(ctx, []kernels.Task{t})
}

// Map starts one task per element of ts; their results come back in input
// order.
func (c *Client) Map(ctx context.Context, ts []kernels.Task) (kernels.Future, error) {
	if err := ctx.Err(); err != nil {
		return kernels.Future{}, err
	}
	if len(ts) >= 1<<indexBits {
		return kernels.Future{}, fmt.Errorf("client: map of %d tasks is too large", len(ts))
	}
	wt := wire.Task{LogLevel: int(c.opts.LogLevel), LogDepth: -1}
	if c.opts.LogDepth > 0 {
		wt.LogDepth = c.opts.LogDepth
	}
	// A task too large for any frame is refused here rather than breaking
	// the connection.
	for i := range ts {
		wt.Kernel, wt.Args, wt.Payload = ts[i].Kernel, ts[i].Args, ts[i].Payload
		if n := wire.RecordSize(uint64(1)<<63, wire.TaskSize(&wt)); n > c.maxFrame {
			return kernels.Future{}, fmt.Errorf("client: task %d (%s): %w: %d bytes encoded, limit %d", i, ts[i].Kernel, wire.ErrFrameTooLarge, n, c.maxFrame)
		}
	}
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return kernels.Future{}, c.err
	}
	c.nextFuture++
	id := c.nextFuture
	f := &future{n: len(ts), vals: make([][]byte, len(ts)), wake: make(chan struct{}, 1)}
	c.futures[id] = f
	// Encode batch by batch, writing each full one at once (unless
	// another goroutine is writing, which then takes it): the server
	// starts on the first MiB of a large map while the rest is encoded,
	// and the buffers are few and reused.
	for i := range ts {
		wt.Kernel, wt.Args, wt.Payload = ts[i].Kernel, ts[i].Args, ts[i].Payload
		if c.appendTask(id<<indexBits|uint64(i), &wt) {
			c.mu.Unlock()
			c.flushNow()
			c.mu.Lock()
			if c.err != nil || f.cancelled {
				break
			}
		}
	}
	c.mu.Unlock()
	c.flushNow()
	return kernels.Future{ID: id, N: len(ts)}, nil
}

// appendTask adds a task record to the last submit batch, or to a new one
// when it would grow the last past wire.MaxBatch, and reports whether a
// full batch now waits to be written. Called with mu held.
func (c *Client) appendTask(id uint64, t *wire.Task) bool {
	n := wire.RecordSize(id, wire.TaskSize(t))
	last := len(c.submitOut) - 1
	if last < 0 || len(c.submitOut[last]) > 0 && len(c.submitOut[last])+n > wire.MaxBatch {
		c.submitOut = append(c.submitOut, c.newBuf(n))
		last++
	}
	c.submitOut[last] = wire.AppendTaskRecord(c.submitOut[last], id, t)
	return last > 0
}

// newBuf returns an empty buffer for at least n bytes of records. Called
// with mu held.
func (c *Client) newBuf(n int) []byte {
	for len(c.freeBufs) > 0 {
		b := c.freeBufs[len(c.freeBufs)-1]
		c.freeBufs = c.freeBufs[:len(c.freeBufs)-1]
		if cap(b) >= n {
			return b[:0]
		}
	}
	return make([]byte, 0, max(n, wire.MaxBatch))
}

// lookup returns the future kf names, or why there is none: it was never
// issued (kernels.ErrUnknownFuture), it was cancelled (a cancellation
// TaskError), or every result was taken (kernels.ErrNoMoreResults). Called
// with mu held.
func (c *Client) lookup(kf kernels.Future) (*future, error) {
	f, ok := c.futures[kf.ID]
	switch {
	case ok:
		return f, nil
	case kf.ID == 0 || kf.ID > c.nextFuture:
		return nil, fmt.Errorf("client: %w: %d", kernels.ErrUnknownFuture, kf.ID)
	}
	if _, ok := c.recentCancel[kf.ID]; ok {
		return nil, &TaskError{Cancelled: true}
	}
	return nil, fmt.Errorf("client: future %d: %w (the client forgets a future once Wait returned, Next returned its last result, or it was cancelled)", kf.ID, kernels.ErrNoMoreResults)
}

// forget drops future id from the table, remembering it among the recent
// cancellations if it was cancelled. Called with mu held.
func (c *Client) forget(id uint64, cancelled bool) {
	delete(c.futures, id)
	if !cancelled {
		return
	}
	if len(c.ring) < maxRecentCancel {
		c.ring = append(c.ring, id)
	} else {
		delete(c.recentCancel, c.ring[c.ringAt])
		c.ring[c.ringAt] = id
		c.ringAt = (c.ringAt + 1) % maxRecentCancel
	}
	c.recentCancel[id] = struct{}{}
}

// Futures returns the number of futures the client holds: issued, and not
// yet waited for, taken whole by Next, or cancelled.
func (c *Client) Futures() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.futures)
}

// block waits for progress on f. Called with mu held; returns with it held.
func (c *Client) block(ctx context.Context, f *future, next bool) error {
	f.waiting, f.next = true, next
	c.mu.Unlock()
	var err error
	select {
	case <-f.wake:
	case <-ctx.Done():
		err = ctx.Err()
	}
	c.mu.Lock()
	f.waiting = false
	return err
}

// Wait blocks until every result of f is in and returns them in input
// order, or the first task error by index.
func (c *Client) Wait(ctx context.Context, kf kernels.Future) ([][]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	f, err := c.lookup(kf)
	if err != nil {
		return nil, err
	}
	for f.done < f.n && !f.cancelled && c.err == nil {
		if err := c.block(ctx, f, false); err != nil {
			return nil, err
		}
	}
	switch {
	case f.cancelled:
		return nil, &TaskError{Cancelled: true}
	case f.done < f.n:
		return nil, c.err
	}
	f.waited = true
	c.forget(kf.ID, false)
	for _, e := range f.errs {
		if e != nil {
			return nil, e
		}
	}
	return f.vals, nil
}

// Next blocks until at least one result of f not yet taken is in and
// returns all such results. Once every result was taken (or Wait
// returned), Next returns kernels.ErrNoMoreResults.
func (c *Client) Next(ctx context.Context, kf kernels.Future) ([]kernels.Result, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	f, err := c.lookup(kf)
	if err != nil {
		return nil, err
	}
	for {
		switch {
		case f.cancelled:
			return nil, &TaskError{Cancelled: true}
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
				c.forget(kf.ID, false)
			}
			return out, nil
		case c.err != nil:
			return nil, c.err
		}
		if err := c.block(ctx, f, true); err != nil {
			return nil, err
		}
	}
}

// Cancel stops f's tasks and their descendants wherever they run, and
// the client forgets f: waiting on f then returns an error wrapping
// kernels.ErrCancelled (see the package comment).
func (c *Client) Cancel(kf kernels.Future) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	f, err := c.lookup(kf)
	if err != nil {
		return err
	}
	f.cancelled = true
	c.forget(kf.ID, true)
	wakeup(f)
	if f.done == f.n {
		return nil
	}
	got := make([]bool, f.n)
	for _, i := range f.arrived {
		got[i] = true
	}
	for i := range f.n {
		if !got[i] {
			c.cancelOut = append(c.cancelOut, kf.ID<<indexBits|uint64(i))
		}
	}
	f.vals, f.errs, f.arrived = nil, nil, nil
	c.wakeWriter()
	return nil
}

// Status returns one line per rank of the tree.
func (c *Client) Status(ctx context.Context) ([]wire.RankStatus, error) {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return nil, c.err
	}
	c.nextStatus++
	id := c.nextStatus
	ch := make(chan []wire.RankStatus, 1)
	c.statusWait[id] = ch
	c.ctrlOut = append(c.ctrlOut, frame{wire.KindStatus, wire.AppendStatus(nil, &wire.Status{ID: id})})
	c.mu.Unlock()
	c.wakeWriter()
	select {
	case ranks, ok := <-ch:
		if !ok {
			c.mu.Lock()
			defer c.mu.Unlock()
			return nil, c.err
		}
		return ranks, nil
	case <-ctx.Done():
		c.mu.Lock()
		delete(c.statusWait, id)
		c.mu.Unlock()
		return nil, ctx.Err()
	}
}

// Drain asks the server to drain the listed ranks: they take no new task,
// hand back what they have queued, finish what they run, then leave (a
// listed manager drains its whole subtree and leaves last). It returns
// once the request is sent; Status shows the ranks as drained when they
// have left.
func (c *Client) Drain(ranks []int) error {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return c.err
	}
	c.ctrlOut = append(c.ctrlOut, frame{wire.KindDrain, wire.AppendDrain(nil, &wire.Drain{Ranks: ranks})})
	c.mu.Unlock()
	c.wakeWriter()
	return nil
}

// writeLoop writes what calls queued when woken; calls also write directly
// (flushNow) when no other goroutine is writing, which saves a hand-off on
// the path of a submission.
func (c *Client) writeLoop() {
	for range c.wake {
		c.mu.Lock()
		err := c.err
		c.mu.Unlock()
		if err != nil {
			return
		}
		c.flushNow()
	}
}

// flushNow writes everything queued unless another goroutine is writing;
// that one checks again after it finishes.
func (c *Client) flushNow() {
	for c.writeMu.TryLock() {
		c.mu.Lock()
		sub, canc, ctrl, err := c.submitOut, c.cancelOut, c.ctrlOut, c.err
		if err != nil || len(sub)+len(canc)+len(ctrl) == 0 {
			c.mu.Unlock()
			c.writeMu.Unlock()
			return
		}
		c.submitOut, c.cancelOut, c.ctrlOut = nil, nil, nil
		c.mu.Unlock()
		var werr error
		put := func(k wire.Kind, b []byte) {
			if werr == nil {
				werr = c.fc.WriteFrame(k, b)
			}
		}
		for _, f := range ctrl {
			put(f.kind, f.body)
		}
		for _, b := range sub {
			put(wire.KindSubmit, b)
		}
		wire.SplitCancel(canc, func(b []byte) { put(wire.KindCancel, b) })
		if werr == nil {
			werr = c.fc.Flush()
		}
		c.mu.Lock()
		for _, b := range sub {
			if len(c.freeBufs) < maxFree && cap(b) <= 2*wire.MaxBatch {
				c.freeBufs = append(c.freeBufs, b[:0])
			}
		}
		c.mu.Unlock()
		c.writeMu.Unlock()
		if werr != nil {
			c.fail(fmt.Errorf("client: connection lost: %w", werr))
			return
		}
	}
}

func (c *Client) readLoop() {
	for {
		k, b, err := c.fc.ReadFrame()
		if err != nil {
			c.fail(fmt.Errorf("client: connection lost: %w", err))
			return
		}
		switch k {
		case wire.KindResult:
			err = c.onResult(b)
		case wire.KindLog:
			err = c.onLog(b)
		case wire.KindStatus:
			var s wire.Status
			if err = wire.DecodeStatus(b, &s); err == nil {
				c.mu.Lock()
				if ch, ok := c.statusWait[s.ID]; ok {
					delete(c.statusWait, s.ID)
					ch <- s.Ranks
				}
				c.mu.Unlock()
			}
		case wire.KindHeartbeat:
			c.mu.Lock()
			c.ctrlOut = append(c.ctrlOut, frame{wire.KindHeartbeat, nil})
			c.mu.Unlock()
			c.wakeWriter()
		case wire.KindShutdown, wire.KindError:
			msg, _ := wire.DecodeText(b)
			err = fmt.Errorf("server: %s", msg)
		default:
			err = fmt.Errorf("unexpected %v message", k)
		}
		if err != nil {
			c.fail(fmt.Errorf("client: %w", err))
			return
		}
	}
}

func (c *Client) onResult(b []byte) error {
	recs := wire.NewRecords(b)
	var r wire.Result
	c.mu.Lock()
	defer c.mu.Unlock()
	for {
		id, body, ok := recs.Next()
		if !ok {
			break
		}
		if err := wire.DecodeResult(body, &r); err != nil {
			return err
		}
		f, found := c.futures[id>>indexBits]
		idx := int(id & (1<<indexBits - 1))
		if !found || idx >= f.n || f.cancelled {
			continue
		}
		if f.vals[idx] != nil || (f.errs != nil && f.errs[idx] != nil) {
			continue
		}
		switch r.Status {
		case wire.ResultOK:
			v := make([]byte, len(r.Value))
			copy(v, r.Value)
			f.vals[idx] = v
		default:
			if f.errs == nil {
				f.errs = make([]error, f.n)
			}
			f.errs[idx] = &TaskError{
				Kernel: r.Kernel, Rank: r.Rank, Host: r.Host, Message: r.Message,
				Lost: r.Status == wire.ResultLost, Cancelled: r.Status == wire.ResultCancelled,
			}
		}
		f.arrived = append(f.arrived, int32(idx))
		f.done++
		if f.waiting && (f.next || f.done == f.n) {
			wakeup(f)
		}
	}
	return recs.Err()
}

func (c *Client) onLog(b []byte) error {
	var rec wire.LogRecord
	for len(b) > 0 {
		rest, err := wire.DecodeLog(b, &rec)
		if err != nil {
			return err
		}
		b = rest
		l := c.opts.Logger
		if l == nil || !l.Enabled(context.Background(), slog.Level(rec.Level)) {
			continue
		}
		r := slog.NewRecord(time.Unix(0, rec.Time), slog.Level(rec.Level), rec.Msg, 0)
		r.AddAttrs(slog.Int("rank", rec.Rank), slog.String("host", rec.Host))
		for i := 0; i+1 < len(rec.Attrs); i += 2 {
			r.AddAttrs(slog.String(rec.Attrs[i], rec.Attrs[i+1]))
		}
		_ = l.Handler().Handle(context.Background(), r)
	}
	return nil
}

// Stats returns the traffic of the client's connection so far.
func (c *Client) Stats() wire.Stats { return c.fc.Stats() }

// dialBusy connects and authenticates, trying again while the server
// answers that it is busy (a listener shedding a connection flood).
func dialBusy(ctx context.Context, addr string, opts Options) (net.Conn, *wire.Conn, error) {
	backoff := 10 * time.Millisecond
	for {
		nc, fc, err := dialOnce(ctx, addr, opts)
		if err == nil || !errors.Is(err, wire.ErrBusy) {
			return nc, fc, err
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, nil, err
		case <-t.C:
		}
		backoff = min(2*backoff, 500*time.Millisecond)
	}
}

func dialOnce(ctx context.Context, addr string, opts Options) (net.Conn, *wire.Conn, error) {
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, nil, fmt.Errorf("client: %w", err)
	}
	if tc, ok := nc.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
		_ = tc.SetReadBuffer(linkBuffer)
		_ = tc.SetWriteBuffer(linkBuffer)
	}
	deadline, _ := ctx.Deadline()
	_ = nc.SetDeadline(deadline)
	raw := nc
	if nc, err = opts.TLS.Dial(nc); err != nil {
		raw.Close()
		return nil, nil, fmt.Errorf("client: connect %s: %w", addr, err)
	}
	first := &firstBytes{r: nc}
	wopts := opts.Wire
	wopts.SkipMAC = opts.TLS != nil // TLS authenticates every record already
	fc := wire.NewConn(struct {
		io.Reader
		io.Writer
	}{first, nc}, wopts)
	peer, err := wire.ClientHandshake(fc, opts.Secret, wire.Hello{Role: "client", Rank: -1, Host: opts.Host})
	if err != nil {
		nc.Close()
		if nq := first.notQlaunch(addr, err); nq != err {
			return nil, nil, nq
		}
		return nil, nil, fmt.Errorf("client: connect %s: %w", addr, wire.TLSAlert(err))
	}
	if err := checkServer(addr, peer); err != nil {
		nc.Close()
		return nil, nil, err
	}
	_ = nc.SetDeadline(time.Time{})
	return nc, fc, nil
}
