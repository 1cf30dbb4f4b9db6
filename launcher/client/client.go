// Package client is the Go client of a qlaunch runtime: it connects to the
// server, submits kernels (Submit, Map), takes their results (Wait, Next),
// cancels them (Cancel), asks for the tree's status (Status), and receives
// the log records its tasks emit. It links only the wire protocol, never
// the server.
//
// A Client is safe for concurrent use. Tasks travel in batches of about
// wire.MaxBatch, written through a wire.Outbox by the calling goroutine
// (or, while another one writes, by that one): frames queued meanwhile go
// out together in one write.
// Closing the client (or losing its connection) cancels its tasks in the
// runtime and fails every call still waiting.
//
// Results are read by whoever holds the connection's read turn (see
// readTurn): a caller blocked in Wait or Next takes it when it is free and
// reads its own results from the socket, so a lone caller's round trip
// costs no hand-off between goroutines; a background reader takes the
// turn after idleHandOff without a caller, and while a map of several
// batches is being written.
//
// The client's futures keep the one contract of package kernels/futures,
// as a kernel's do: a long-lived client holds only the futures still in
// use, for it frees a future once Wait returned, once Next returned its
// last result, or once it was cancelled (later results of its tasks are
// dropped). Wait or Next on a freed future returns
// kernels.ErrNoMoreResults, or kernels.ErrCancelled for one of the last
// futures.RecentCancels cancelled (Futures counts those held).
package client

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/qlaunch/qlaunch/kernels"
	"github.com/qlaunch/qlaunch/kernels/futures"
	"github.com/qlaunch/qlaunch/launcher/transport"
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
	out  *wire.Outbox // every frame to the server

	mu sync.Mutex
	// futures holds the client's futures (scope 0: their IDs fit in the
	// upper half of a task id, id<<indexBits|index); block is the
	// futures.Block of Wait and Next.
	futures    futures.Table[struct{}]
	block      futures.Block
	batch      []byte // task records not yet queued in out
	statusWait map[uint64]chan []wire.RankStatus
	nextStatus uint64
	maxFrame   int
	err        error
	wg         sync.WaitGroup

	// The read turn (readTurn), guarded by mu: who reads the connection
	// now. Only its holder calls fc.ReadFrame.
	turn      turnHolder
	blocked   int           // callers blocked in block, not holding the turn
	bulk      int           // maps of several batches being written
	want      bool          // a lone caller asked the background reader for the turn
	kicked    bool          // a read deadline in the past interrupts the holder
	turnFreed chan struct{} // wakes a blocked caller to take the freed turn
	bgTurn    chan struct{} // hands the turn to the background reader
	idle      *time.Timer   // hands a free turn to the background reader
	closed    chan struct{} // closed by fail

	// Frames read by callers in their read turn, and by the background
	// reader.
	ownReads, bgReads atomic.Uint64

	bufMu    sync.Mutex
	freeBufs [][]byte // written batches, for reuse
}

// turnHolder is who holds the read turn.
type turnHolder uint8

const (
	turnFree       turnHolder = iota // nobody reads; frames wait in the socket
	turnCaller                       // a caller blocked in Wait or Next reads
	turnBackground                   // the background reader reads
)

// idleHandOff is how long the read turn stays free, no caller reading,
// before the background reader takes it: heartbeats, logs, and the
// results nobody waits for yet are read within it. It is long against the
// gap between a caller's Wait and its next Submit (microseconds), so that
// a caller submitting and waiting in a loop keeps reading its results
// itself, and short against heartbeat timeouts (seconds).
const idleHandOff = 5 * time.Millisecond

const indexBits = 32

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
	nc, fc, err := dial(ctx, addr, opts)
	if err != nil {
		return nil, err
	}
	c := &Client{
		opts: opts, nc: nc, fc: fc,
		statusWait: make(map[uint64]chan []wire.RankStatus),
		maxFrame:   opts.Wire.MaxFrame,
		turnFreed:  make(chan struct{}, 1),
		bgTurn:     make(chan struct{}, 1),
		closed:     make(chan struct{}),
	}
	c.out = wire.NewOutboxReusing(c.reuse)
	c.block = c.blockReading
	if c.maxFrame <= 0 {
		c.maxFrame = wire.DefaultMaxFrame
	}
	c.idle = time.AfterFunc(idleHandOff, c.onIdle)
	c.wg.Go(c.backgroundReader)
	c.wg.Go(func() {
		if err := c.out.Run(c.fc); err != nil {
			c.fail(fmt.Errorf("client: connection lost: %w", err))
		}
	})
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
		c.futures.Close(err)
		for id, ch := range c.statusWait {
			close(ch)
			delete(c.statusWait, id)
		}
		c.idle.Stop()
		close(c.closed)
	}
	c.mu.Unlock()
	c.nc.Close()
	c.out.Stop()
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
	f, err := c.futures.New(len(ts))
	if err != nil {
		c.mu.Unlock()
		return kernels.Future{}, err
	}
	id := f.ID()
	// Encode batch by batch, writing each full one at once (unless
	// another goroutine is writing, which then takes it): the server
	// starts on the first MiB of a large map while the rest is encoded,
	// and the buffers are few and reused. Meanwhile its first results
	// come back: somebody must read them, or the server, blocked writing
	// them, stops reading the rest (bulk).
	bulk := false
	for i := range ts {
		wt.Kernel, wt.Args, wt.Payload = ts[i].Kernel, ts[i].Args, ts[i].Payload
		if c.appendTask(id<<indexBits|uint64(i), &wt) {
			if !bulk {
				bulk = true
				c.bulk++
				if c.turn == turnFree {
					c.startBackground()
				}
			}
			c.mu.Unlock()
			c.drain()
			c.mu.Lock()
			if c.err != nil || f.Cancelled() {
				break
			}
		}
	}
	c.queueBatch()
	if bulk {
		c.bulk--
	}
	c.mu.Unlock()
	c.drain()
	return f.Handle(), nil
}

// appendTask adds a task record to the batch, first queueing the batch
// when the record would grow it past wire.MaxBatch, and reports whether
// it queued one. Called with mu held.
func (c *Client) appendTask(id uint64, t *wire.Task) (queued bool) {
	n := wire.RecordSize(id, wire.TaskSize(t))
	if len(c.batch) > 0 && len(c.batch)+n > wire.MaxBatch {
		c.queueBatch()
		queued = true
	}
	if c.batch == nil {
		c.batch = c.newBuf(n)
	}
	c.batch = wire.AppendTaskRecord(c.batch, id, t)
	return queued
}

// queueBatch queues the batch in the outbox. Called with mu held.
func (c *Client) queueBatch() {
	if len(c.batch) > 0 {
		c.out.Put(wire.KindSubmit, c.batch)
		c.batch = nil
	}
}

// drain writes what is queued, unless another goroutine is writing
// (which then writes it).
func (c *Client) drain() {
	if err := c.out.Drain(c.fc); err != nil {
		c.fail(fmt.Errorf("client: connection lost: %w", err))
	}
}

// reuse keeps a written batch buffer for newBuf (the outbox's hand-back).
func (c *Client) reuse(b []byte) {
	if cap(b) < wire.MaxBatch || cap(b) > 2*wire.MaxBatch {
		return // not a batch buffer, or one grown for a single huge task
	}
	c.bufMu.Lock()
	if len(c.freeBufs) < maxFree {
		c.freeBufs = append(c.freeBufs, b[:0])
	}
	c.bufMu.Unlock()
}

// newBuf returns an empty buffer for at least n bytes of records.
func (c *Client) newBuf(n int) []byte {
	c.bufMu.Lock()
	defer c.bufMu.Unlock()
	for len(c.freeBufs) > 0 {
		b := c.freeBufs[len(c.freeBufs)-1]
		c.freeBufs = c.freeBufs[:len(c.freeBufs)-1]
		if cap(b) >= n {
			return b[:0]
		}
	}
	return make([]byte, 0, max(n, wire.MaxBatch))
}

// Futures returns the number of futures the client holds: issued, and not
// yet drained (by Wait, or Next to the last result) or cancelled.
func (c *Client) Futures() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.futures.Len()
}

// Wait blocks until every result of f is in and returns them in input
// order, or the first task error by index; f is then freed.
func (c *Client) Wait(ctx context.Context, kf kernels.Future) ([][]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.futures.Wait(ctx, kf, c.block)
}

// Next blocks until at least one result of f not yet taken is in and
// returns all such results. Once every result was taken (or Wait
// returned), f is freed and Next returns kernels.ErrNoMoreResults.
func (c *Client) Next(ctx context.Context, kf kernels.Future) ([]kernels.Result, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.futures.Next(ctx, kf, c.block)
}

// Cancel stops f's tasks and their descendants wherever they run, and
// frees f: waiting on f then returns kernels.ErrCancelled (see the
// package comment). Cancelling f again, or after it was drained, does
// nothing.
func (c *Client) Cancel(kf kernels.Future) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	f, err := c.futures.Cancel(kf)
	if f == nil || f.Complete() {
		return err
	}
	if c.turn == turnCaller {
		c.kick() // its caller may be the one reading: it returns
	}
	var ids []uint64
	f.Missing(func(i int) { ids = append(ids, f.ID()<<indexBits|uint64(i)) })
	wire.SplitCancel(ids, func(b []byte) { c.out.Put(wire.KindCancel, b) })
	c.out.Kick()
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
	if c.turn == turnFree {
		c.startBackground() // the answer is read at once
	}
	c.mu.Unlock()
	c.out.Put(wire.KindStatus, wire.AppendStatus(nil, &wire.Status{ID: id}))
	c.out.Kick()
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
	c.mu.Unlock()
	c.out.Put(wire.KindDrain, wire.AppendDrain(nil, &wire.Drain{Ranks: ranks}))
	c.out.Kick()
	return nil
}

// handle acts on one frame read from the server; an error breaks the
// connection.
func (c *Client) handle(k wire.Kind, b []byte) error {
	var err error
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
		c.out.Put(wire.KindHeartbeat, nil)
		c.out.Kick()
	case wire.KindShutdown, wire.KindError:
		msg, _ := wire.DecodeText(b)
		err = fmt.Errorf("server: %s", msg)
	default:
		err = fmt.Errorf("unexpected %v message", k)
	}
	return err
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
		f := c.futures.Get(id >> indexBits)
		idx := int(id & (1<<indexBits - 1))
		if f == nil || idx >= f.N() || f.Cancelled() || f.Has(idx) {
			continue // freed, cancelled, or a duplicate
		}
		if r.Status == wire.ResultOK {
			v := make([]byte, len(r.Value))
			copy(v, r.Value)
			f.Deliver(idx, v, nil)
			continue
		}
		f.Deliver(idx, nil, &TaskError{
			Kernel: r.Kernel, Rank: r.Rank, Host: r.Host, Message: r.Message,
			Lost: r.Status == wire.ResultLost, Cancelled: r.Status == wire.ResultCancelled,
		})
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

// dial connects and authenticates through the link layer, trying again
// only while the server answers that it is busy (a listener shedding a
// connection flood), and checks that the peer is a server.
func dial(ctx context.Context, addr string, opts Options) (net.Conn, *wire.Conn, error) {
	c, err := transport.Dial(ctx, addr, transport.Config{
		Secret: opts.Secret, Wire: opts.Wire, TLS: opts.TLS,
		DialTimeout: opts.DialTimeout, HandshakeTimeout: opts.DialTimeout, FailFast: true,
	}, wire.Hello{Role: "client", Rank: -1, Host: opts.Host})
	if answered, ok := transport.Answered(err); ok {
		return nil, nil, fmt.Errorf("client: %s is %w (it answered %s)", addr, ErrNotServer, answered)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("client: %w", err)
	}
	if err := checkServer(addr, c.Peer); err != nil {
		c.NC.Close()
		return nil, nil, err
	}
	return c.NC, c.FC, nil
}
