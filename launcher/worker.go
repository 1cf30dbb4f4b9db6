package launcher

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/qlaunch/qlaunch/kernels"
	"github.com/qlaunch/qlaunch/launcher/executor"
	"github.com/qlaunch/qlaunch/launcher/starttrace"
	"github.com/qlaunch/qlaunch/launcher/wire"
)

// WorkerConfig configures one worker rank: a process (or, in tests, a
// goroutine group) with Slots worker slots that runs kernels.
type WorkerConfig struct {
	NodeConfig
	Slots int // worker slots; 0 means 1
}

func (c WorkerConfig) withDefaults() WorkerConfig {
	if c.Slots <= 0 {
		c.Slots = 1
	}
	c.NodeConfig = c.NodeConfig.withDefaults(false)
	return c
}

// Validate reports every problem of the configuration.
func (c WorkerConfig) Validate() error {
	var errs []error
	if c.Parent == "" {
		errs = append(errs, errors.New("worker: no parent address"))
	}
	if c.Registry == nil {
		errs = append(errs, errors.New("worker: no kernel registry"))
	}
	return errors.Join(errs...)
}

type worker struct {
	cfg WorkerConfig
	log *slog.Logger

	mu        sync.Mutex
	finished  atomic.Pointer[task] // kernels returned, outcomes not yet recorded (runBatch)
	core      *executor.Core[*task, chan struct{}]
	runners   sync.WaitGroup // goroutines that run kernels or write their results (handedFlush)
	remote    map[uint64]*task
	up        map[uint64]*task
	nextUp    uint64
	nextScope uint32 // the scope of the last futures table made (table)
	cache     kernels.Cache
	done      uint64 // tasks run here
	kept      uint64 // of which children of this rank's kernels
	handedUp  uint64 // tasks handed back to the parent (steal, drain)
	draining  bool   // drained: hand back queued tasks, leave when none is held

	// what the writer sends next
	resultOut []byte
	// flushing: a goroutine is in writeOut, the rank's one flusher; it
	// writes what the others leave pending before it lets go (flush).
	flushing  bool
	submitOut []byte
	logOut    []byte
	cancelOut []uint64
	scratch   []byte

	link   *link
	out    *wire.Outbox // every frame to the parent, in the order put
	spares chan []byte  // written batch buffers, handed back by out

	// Reading the parent's frames moves between goroutines (runInline;
	// the policy is the core's: BeginInline, HandOff, CheckTurn).
	// turnTimer, while the core checks, calls turnCheck every
	// inlineTakeover; readEnd gets why reading ended (the first cause
	// only).
	turnTimer *time.Timer
	readEnd   chan error

	// While kernels run, streamTimer calls streamCheck every streamPeriod,
	// which writes results that waited through a whole period (resAged)
	// and stops after streamIdleChecks periods without a busy slot.
	streamTimer *time.Timer
	streaming   bool
	resAged     bool
	streamIdle  int
}

// inlineTakeover is the period of the check that hands the reading over
// from a batch the reader runs itself: a batch is taken over after one to
// two periods. The check runs while batches are run that way and stops
// after executor.TurnIdleChecks periods without one. A timer armed per batch instead
// cost a wake-up of the thread in the network poller per task (Go wakes it
// for any timer earlier than its own), as much as the goroutine that
// runInline saves.
const inlineTakeover = time.Millisecond

// RunWorker runs a worker rank until its parent tells it to shut down
// (ErrShutdown), its parent is lost (ErrParentLost) or ctx ends.
func RunWorker(ctx context.Context, cfg WorkerConfig) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	cfg = cfg.withDefaults()
	log := cfg.Logger.With("role", "worker", "rank", cfg.Rank, "host", cfg.Host)
	me := wire.Hello{Role: roleWorker + linkChild, Rank: cfg.Rank, Host: cfg.Host}
	starttrace.Mark(roleWorker, "dial")
	l, err := dialLink(ctx, cfg.Parent, cfg.Link, me)
	if err != nil {
		return fmt.Errorf("worker rank %d: %w", cfg.Rank, err)
	}
	starttrace.Mark(roleWorker, "connected")
	cfg.Registry.Warm(cfg.Slots)
	log.Info("ready", "parent", cfg.Parent, "parent_rank", l.peer.Rank, "slots", cfg.Slots)
	return runWorkerOn(ctx, cfg, log, l)
}

func newWorker(cfg WorkerConfig, log *slog.Logger) *worker {
	w := &worker{
		cfg: cfg, log: log, core: executor.New[*task, chan struct{}](cfg.Slots),
		remote: make(map[uint64]*task), up: make(map[uint64]*task),
		spares: make(chan []byte, 3), readEnd: make(chan error, 1),
	}
	w.out = wire.NewOutboxReusing(w.reuse)
	return w
}

func runWorkerOn(ctx context.Context, cfg WorkerConfig, log *slog.Logger, l *link) error {
	w := newWorker(cfg, log)
	w.link = l
	w.out.Put(wire.KindJoin, wire.AppendJoin(nil, &wire.Join{Ranks: 1, Slots: w.core.Slots()}))

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stopClose := context.AfterFunc(ctx, l.close)
	defer stopClose()
	var wg sync.WaitGroup
	written := make(chan struct{}) // the writer returned
	wg.Go(func() {
		defer close(written)
		if err := w.out.Run(l.fc); err != nil {
			l.close()
		}
	})
	w.out.Kick()
	wg.Go(func() { l.watch(ctx, cfg.Link, w.heartbeat) })
	w.turnTimer = time.AfterFunc(time.Hour, w.turnCheck)
	w.turnTimer.Stop()
	w.streamTimer = time.AfterFunc(time.Hour, w.streamCheck)
	w.streamTimer.Stop()
	if cfg.Drain != nil {
		wg.Go(func() {
			select {
			case <-cfg.Drain:
				w.selfDrain()
			case <-ctx.Done():
			}
		})
	}
	go w.read()
	readErr := <-w.readEnd
	w.turnTimer.Stop()
	cause := ErrParentLost
	if errors.Is(readErr, ErrDrained) {
		// Every task finished: write the last results, then leave.
		cause = ErrDrained
		log.Info("drained: every task finished; leaving")
		w.waitRunners(cfg.ShutdownWait)
		w.lock()
		w.queueOut()
		w.mu.Unlock()
		w.out.Close() // the writer returns once it wrote them
		w.waitWritten(written, cfg.ShutdownWait)
	} else if errors.Is(readErr, ErrShutdown) {
		cause = ErrShutdown
		starttrace.Mark(roleWorker, "shutdown received")
		log.Debug("shutdown requested")
	} else if ctx.Err() != nil {
		cause = ctx.Err()
	} else {
		log.Warn("parent connection lost", "err", readErr)
	}
	w.stop()
	w.stopStream()
	w.out.Stop()
	cancel()
	l.close()
	wg.Wait()
	w.waitRunners(cfg.ShutdownWait)
	return cause
}

// stop cancels everything the rank holds.
func (w *worker) stop() {
	w.lock()
	defer w.mu.Unlock()
	parked := w.core.Stop()
	// Every task and future here descends from a task of the parent.
	for _, t := range w.remote {
		w.cancelTask(t)
	}
	// Parked kernels need a token to return; hand out as many as asked.
	for _, ch := range parked {
		close(ch)
	}
}

// waitWritten waits at most grace for the writer to return.
func (w *worker) waitWritten(written <-chan struct{}, grace time.Duration) {
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-written:
	case <-t.C:
		w.log.Warn("the last results were not written within the shutdown grace", "grace", grace)
	}
}

func (w *worker) waitRunners(grace time.Duration) {
	done := make(chan struct{})
	go func() { w.runners.Wait(); close(done) }()
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		w.log.Warn("kernels still running after shutdown grace", "grace", grace)
	}
}

func (w *worker) heartbeat() {
	w.out.Put(wire.KindHeartbeat, nil)
	w.out.Kick()
}

// wakeWriter queues what is pending and, if there was anything, has the
// writer goroutine write it. Called with mu held.
func (w *worker) wakeWriter() {
	if w.queueOut() {
		w.out.Kick()
	}
}

// queueOut moves the pending batches into the outbox, in the order a
// reader above wants them: tasks handed up, cancels, log records,
// results. Called with mu held, so the frames of two goroutines keep
// their order. It reports whether it queued anything.
func (w *worker) queueOut() (queued bool) {
	queued = w.pending()
	if len(w.submitOut) > 0 {
		w.out.Put(wire.KindSubmit, w.submitOut)
		w.submitOut = w.spare()
	}
	if len(w.cancelOut) > 0 {
		wire.SplitCancel(w.cancelOut, func(b []byte) { w.out.Put(wire.KindCancel, b) })
		w.cancelOut = w.cancelOut[:0]
	}
	if len(w.logOut) > 0 {
		w.out.Put(wire.KindLog, w.logOut)
		w.logOut = w.spare()
	}
	if len(w.resultOut) > 0 {
		w.out.Put(wire.KindResult, w.resultOut)
		w.resultOut = w.spare()
		w.resAged = false
	}
	return queued
}

// spare returns a written batch buffer to fill again, or nil.
func (w *worker) spare() []byte {
	select {
	case b := <-w.spares:
		return b[:0]
	default:
		return nil
	}
}

// reuse keeps a written batch buffer for spare (the outbox's hand-back,
// from the writing goroutine).
func (w *worker) reuse(b []byte) {
	if cap(b) == 0 || cap(b) > 4*wire.MaxBatch {
		return
	}
	select {
	case w.spares <- b:
	default:
	}
}

// flushWrites is how many writes a runner that produced results makes
// itself (flush) before it hands the flushing to a goroutine of its own:
// it is back at its kernels after a few writes however busy the link,
// and results coalesce meanwhile instead of each batch going out as a
// frame of its own. The reader makes one (readerWrites): while it writes,
// the parent's frames wait unread, and the parent may be writing to it;
// with four it would write the runners' results too.
const (
	flushWrites  = 4
	readerWrites = 1
)

// flush writes what is pending, as the rank's one flusher: unless another
// goroutine is flushing (which then writes it too, so nothing is held
// back), the calling goroutine writes, and while writing takes what came
// meanwhile, for at most writes writes; then a new goroutine goes on.
// So while the link is busy, results that finish meanwhile leave in one
// frame, not one frame per runner batch: on client-map, one result frame
// per batch was ten times the frames, the server's reads, steps and
// writes to the client, and 0.8× of the build before (BENCHMARKS.md).
// Called with mu held; returns without it.
func (w *worker) flush(writes int) {
	if w.flushing {
		w.mu.Unlock()
		return
	}
	w.flushing = true
	w.writeOut(writes)
}

// writeOut writes what is pending until none is, holding the flusher's
// part: at most writes times, then, if more came meanwhile, it hands that
// part to a new goroutine. Called with mu held; returns without it.
func (w *worker) writeOut(writes int) {
	for range writes {
		if !w.queueOut() {
			w.flushing = false
			w.mu.Unlock()
			return
		}
		w.mu.Unlock()
		if err := w.out.Drain(w.link.fc); err != nil {
			w.link.close()
		}
		w.lock()
	}
	if !w.pending() {
		w.flushing = false
		w.mu.Unlock()
		return
	}
	w.mu.Unlock()
	w.runners.Add(1)
	go w.handedFlush()
}

// pending reports whether a batch waits to be queued (queueOut). Called
// with mu held.
func (w *worker) pending() bool {
	return len(w.submitOut)+len(w.cancelOut)+len(w.logOut)+len(w.resultOut) > 0
}

// handedFlush is the flusher that a producing goroutine handed its part
// to (writeOut).
func (w *worker) handedFlush() {
	defer w.runners.Done()
	w.lock()
	w.writeOut(math.MaxInt)
}

// maybeLoad queues a load report when the core says it tells the
// scheduler above something it can act on (executor.Core.Load). Called
// with mu held.
func (w *worker) maybeLoad() {
	ld, ok := w.core.Load()
	if !ok {
		return
	}
	w.out.Put(wire.KindLoad, wire.AppendLoad(nil, &wire.Load{Idle: ld.Idle, Queued: ld.Queued}))
	w.out.Kick()
}

// read handles frames from the parent until the link fails or a shutdown
// arrives (the cause goes to readEnd), or until this goroutine ran a batch
// itself (runInline) and another one took the reading over meanwhile.
func (w *worker) read() {
	l := w.link
	var ids []uint64
	for {
		k, b, err := l.fc.ReadFrame()
		if err != nil {
			l.readFailed(w.log, err)
			w.endRead(err)
			return
		}
		l.seen()
		var inline []*task
		switch k {
		case wire.KindSubmit:
			// Task bodies alias the frame: keep it (large) or our own
			// copy (small).
			if len(b) >= keepMin {
				l.fc.Keep()
			} else {
				b = append([]byte(nil), b...)
			}
			// Nothing else buffered: the reader may run a batch itself.
			inline, err = w.onSubmit(b, l.fc.Buffered() == 0)
		case wire.KindResult:
			err = w.onResult(b)
		case wire.KindCancel:
			ids, err = wire.DecodeCancel(b, ids[:0])
			if err == nil {
				w.onCancel(ids)
			}
		case wire.KindLog:
			err = w.onLog(b)
		case wire.KindLoad:
			var ld wire.Load
			if err = wire.DecodeLoad(b, &ld); err == nil && ld.Steal > 0 {
				w.onSteal(ld.Steal)
			}
		case wire.KindStatus:
			err = w.onStatus(b, l.peer.Rank)
		case wire.KindShutdown:
			err = ErrShutdown
		case wire.KindDrain:
			w.onDrain()
		case wire.KindHeartbeat:
		default:
			err = fmt.Errorf("unexpected %v message from parent", k)
		}
		if err != nil {
			w.endRead(err)
			return
		}
		if inline != nil && !w.runInline(inline) {
			return
		}
	}
}

// endRead reports why reading ended; only the first cause counts.
func (w *worker) endRead(err error) {
	select {
	case w.readEnd <- err:
	default:
	}
}

// runInline runs batch, whose token the caller holds, in the reading
// goroutine, and reports whether that goroutine still reads. A task that
// arrives alone is the case it is for: it runs without a goroutine being
// started for it, which saves the switch and, more, the idle thread the Go
// scheduler wakes for every goroutine made runnable while a processor is
// idle (on two CPUs, about a quarter of a task's round trip through the
// runtime: BenchmarkWorkloads/latency, `qlaunch bench --workload
// latency`). Frames go unread meanwhile, so another goroutine takes the
// reading over as soon as a kernel of the batch blocks (block), or when
// the batch runs longer than about inlineTakeover (turnCheck).
func (w *worker) runInline(batch []*task) (reading bool) {
	defer w.runners.Done()
	w.lock()
	turn, check := w.core.BeginInline()
	for _, t := range batch {
		t.turn = turn
	}
	if check {
		w.turnTimer.Reset(inlineTakeover)
	}
	w.mu.Unlock()
	w.runBatch(batch, 0)
	w.apply(w.core.Release())
	w.maybeLoad()
	reading = w.core.EndInline(turn)
	w.flush(readerWrites)
	return reading
}

// streamPeriod is the period of the stream check: a finished task's
// result waits at most two periods in the rank, however long the rest of
// its batch runs. Runners write after each batch, so under a load of short
// tasks the check rarely finds anything to write; for long ones it is what
// sends each result when it is ready, and a lost rank loses only the tasks
// it had not finished.
const (
	streamPeriod     = 5 * time.Millisecond
	streamIdleChecks = 10
)

// startStream starts the stream check unless it runs. Called with mu held.
func (w *worker) startStream() {
	if w.streaming || w.streamTimer == nil || w.core.Stopping() {
		return
	}
	w.streaming, w.streamIdle = true, 0
	w.streamTimer.Reset(streamPeriod)
}

func (w *worker) stopStream() {
	w.lock()
	w.streaming = false
	w.streamTimer.Stop()
	w.mu.Unlock()
}

// streamCheck writes the results that were already waiting at the last
// check, and checks again after streamPeriod unless no slot was busy for
// streamIdleChecks periods.
func (w *worker) streamCheck() {
	w.lock()
	if !w.streaming {
		w.mu.Unlock()
		return
	}
	pending := len(w.resultOut) > 0
	write := pending && w.resAged
	w.resAged = pending
	if w.core.Free() < w.core.Slots() || pending || w.finished.Load() != nil {
		w.streamIdle = 0
	} else {
		w.streamIdle++
	}
	if w.streamIdle >= streamIdleChecks || w.core.Stopping() {
		w.streaming = false
	} else {
		w.streamTimer.Reset(streamPeriod)
	}
	if write {
		w.flush(flushWrites)
		return
	}
	w.mu.Unlock()
}

// handOffReading starts another reading goroutine if turn is the reader's
// current batch: one of its kernels is about to block. Called with mu
// held.
func (w *worker) handOffReading(turn uint64) {
	if w.core.HandOff(turn) {
		go w.read()
	}
}

// turnCheck hands the reading over from a batch the reader has been
// running since the last check, and checks again after inlineTakeover
// while the core asks for it.
func (w *worker) turnCheck() {
	w.lock()
	defer w.mu.Unlock()
	handOff, again := w.core.CheckTurn()
	if handOff {
		go w.read()
	}
	if again {
		w.turnTimer.Reset(inlineTakeover)
	}
}

// onSubmit queues the tasks of a submit batch and starts them; with
// mayInline it returns the first batch to run instead, its token taken, for
// the reader to run itself (runInline).
func (w *worker) onSubmit(b []byte, mayInline bool) ([]*task, error) {
	n, err := wire.CountRecords(b)
	if err != nil {
		return nil, err
	}
	ts := make([]task, n)
	ctxs := make([]cancelCtx, n) // the tasks' own, kept apart so that a child task carries none
	recs := wire.NewRecords(b)
	var wt wire.Task
	var bad []badRecord
	i := 0
	for range n {
		id, body, _ := recs.Next()
		wt.Args = nil
		if err := wire.DecodeTask(body, &wt); err != nil {
			// A record that does not decode fails its own task only.
			bad = append(bad, badRecord{id, recordKernel(body), err})
			continue
		}
		t := &ts[i]
		t.kernel, t.args, t.payload, t.logLevel, t.logDepth = wt.Kernel, wt.Args, wt.Payload, wt.LogLevel, wt.LogDepth
		t.remoteID, t.logID = id, id
		t.ctx = &ctxs[i]
		i++
	}
	ts = ts[:i]
	w.lock()
	defer w.mu.Unlock()
	for i := range ts {
		w.remote[ts[i].remoteID] = &ts[i]
		w.core.Push(&ts[i])
	}
	w.refuse(bad)
	inline := w.dispatch(mayInline)
	w.maybeLoad()
	return inline, nil
}

// badRecord is a task record that did not decode.
type badRecord struct {
	id     uint64
	kernel string // as far as it decoded
	err    error
}

// refuse answers each bad record with an error result, so the task fails
// and the rank goes on; the first of a batch is logged. Called with mu
// held.
func (w *worker) refuse(bad []badRecord) {
	if len(bad) == 0 {
		return
	}
	w.log.Warn("malformed task records failed", "count", len(bad), "first_id", bad[0].id, "err", bad[0].err)
	for _, r := range bad {
		res := wire.Result{
			Status: wire.ResultError, Kernel: r.kernel, Rank: w.cfg.Rank, Host: w.cfg.Host,
			Message: fmt.Sprintf("task record refused by worker rank %d: %v (a client or version mismatch sent a body this rank cannot decode)", w.cfg.Rank, r.err),
		}
		w.resultOut = wire.AppendRecord(w.resultOut, r.id, w.encodeResult(&res))
	}
	w.wakeWriter()
}

// onResult completes tasks this rank had handed up.
func (w *worker) onResult(b []byte) error {
	err := w.completeUp(b)
	w.lock()
	w.flush(readerWrites)
	return err
}

// completeUp completes the tasks of a result batch from the parent.
func (w *worker) completeUp(b []byte) error {
	recs := wire.NewRecords(b)
	var r wire.Result
	w.lock()
	defer w.mu.Unlock()
	for {
		id, body, ok := recs.Next()
		if !ok {
			break
		}
		if err := wire.DecodeResult(body, &r); err != nil {
			return err
		}
		t, found := w.up[id]
		if !found {
			continue
		}
		delete(w.up, id)
		val, err := resultOutcome(&r)
		val = append([]byte(nil), val...)
		w.complete(t, val, err)
	}
	return recs.Err()
}

// resultOutcome turns a decoded result into a value or a *TaskError.
func resultOutcome(r *wire.Result) ([]byte, error) {
	switch r.Status {
	case wire.ResultOK:
		return r.Value, nil
	case wire.ResultCancelled:
		return nil, &TaskError{Cancelled: true, Kernel: r.Kernel, Rank: r.Rank, Host: r.Host}
	case wire.ResultLost:
		return nil, &TaskError{Lost: true, Kernel: r.Kernel, Rank: r.Rank, Host: r.Host, Message: r.Message}
	}
	return nil, &TaskError{Kernel: r.Kernel, Rank: r.Rank, Host: r.Host, Message: r.Message}
}

func (w *worker) onCancel(ids []uint64) {
	w.lock()
	defer w.mu.Unlock()
	for _, id := range ids {
		if t, ok := w.remote[id]; ok {
			w.cancelTask(t)
		}
	}
}

func (w *worker) onLog(b []byte) error {
	var rec wire.LogRecord
	w.lock()
	defer w.mu.Unlock()
	for len(b) > 0 {
		rest, err := wire.DecodeLog(b, &rec)
		if err != nil {
			return err
		}
		b = rest
		if t, ok := w.up[rec.Task]; ok {
			rec.Task = t.logID
			w.logOut = wire.AppendLog(w.logOut, &rec)
			w.wakeWriter()
		}
	}
	return nil
}

// onDrain starts draining the rank: its queued tasks go back to the parent
// (as for a steal) to run elsewhere, running ones finish, and once it
// holds no task from the parent it leaves (checkDrained).
func (w *worker) onDrain() {
	w.lock()
	w.draining = true
	q := w.queued()
	w.mu.Unlock()
	w.log.Info("draining", "queued", q)
	if q > 0 {
		w.onSteal(q)
	}
	w.lock()
	w.checkDrained()
	w.mu.Unlock()
}

// selfDrain drains the rank on its own initiative (WorkerConfig.Drain):
// its parent learns of it first, so that it sends no more tasks.
func (w *worker) selfDrain() {
	w.out.Put(wire.KindDrain, wire.AppendDrain(nil, &wire.Drain{Ranks: []int{w.cfg.Rank}}))
	w.out.Kick()
	w.onDrain()
}

// checkDrained ends a draining rank's reading with ErrDrained once it holds
// no task from its parent. Called with mu held.
func (w *worker) checkDrained() {
	if w.draining && len(w.remote) == 0 {
		w.endRead(ErrDrained)
	}
}

// onSteal hands up to n of the oldest queued tasks to the parent, which
// gives them to idle ranks.
func (w *worker) onSteal(n int) {
	w.lock()
	defer w.mu.Unlock()
	for _, t := range w.core.StealOldest(n) {
		if t.cancelled || t.futureCancelled() {
			w.core.Push(t)
			continue
		}
		w.nextUp++
		w.handedUp++
		t.upID = w.nextUp
		t.state = stateUp
		w.up[t.upID] = t
		wt := wire.Task{Kernel: t.kernel, Args: t.args, Payload: t.payload, LogLevel: t.logLevel, LogDepth: t.logDepth}
		w.submitOut = wire.AppendTaskRecord(w.submitOut, t.upID, &wt)
	}
	w.core.ForgetLoad()
	w.maybeLoad()
	w.wakeWriter()
}

func (w *worker) onStatus(b []byte, parentRank int) error {
	var s wire.Status
	if err := wire.DecodeStatus(b, &s); err != nil {
		return err
	}
	if s.Reply {
		return nil
	}
	w.lock()
	defer w.mu.Unlock()
	reply := wire.Status{ID: s.ID, Reply: true, Ranks: []wire.RankStatus{{
		Rank: w.cfg.Rank, Parent: parentRank, Role: roleWorker, Host: w.cfg.Host,
		Slots: w.core.Slots(), Busy: w.core.Slots() - w.core.Free(), Queued: w.queued(), Done: w.done, Alloc: w.cfg.Alloc,
		Kept: w.kept, HandedUp: w.handedUp,
	}}}
	w.out.Put(wire.KindStatus, wire.AppendStatus(nil, &reply))
	w.out.Kick()
	return nil
}
