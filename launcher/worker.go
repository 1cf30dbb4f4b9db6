package launcher

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/bits"
	"sync"
	"time"

	"github.com/qlaunch/qlaunch/kernels"
	"github.com/qlaunch/qlaunch/launcher/wire"
)

// WorkerConfig configures one worker rank: a process (or, in tests, a
// goroutine group) with Slots worker slots that runs kernels.
type WorkerConfig struct {
	Rank     int
	Host     string
	Slots    int    // worker slots; 0 means 1
	Parent   string // address of the manager (or server) to dial
	Registry *kernels.Registry
	Link     LinkConfig
	Logger   *slog.Logger
	// ShutdownGrace bounds how long a stopping rank waits for its running
	// kernels to return after cancelling them; zero means 2 s.
	ShutdownGrace time.Duration
	// Alloc labels the rank's status rows with its allocation (job id).
	Alloc string
	// Drain, when closed, drains the rank (as qlaunch drain would): it
	// tells its parent, hands back its queue, finishes and leaves.
	Drain <-chan struct{}
}

func (c WorkerConfig) withDefaults() WorkerConfig {
	if c.Slots <= 0 {
		c.Slots = 1
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.ShutdownGrace <= 0 {
		c.ShutdownGrace = 2 * time.Second
	}
	c.Link = c.Link.withDefaults()
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

	mu         sync.Mutex
	slots      int
	free       int
	queue      []*task
	qhead      int
	resumers   []chan struct{}
	runners    sync.WaitGroup
	remote     map[uint64]*task
	up         map[uint64]*task
	nextUp     uint64
	futures    map[uint64]*future
	nextFuture uint64
	cache      kernels.Cache
	done       uint64
	stopping   bool
	draining   bool // drained: hand back queued tasks, leave when none is held

	// what the writer sends next
	resultOut []byte
	submitOut []byte
	logOut    []byte
	cancelOut []uint64
	ctrlOut   []ctrlFrame
	scratch   []byte

	link      *link
	writeMu   sync.Mutex // held while writing to link; guards the spares
	spareRes  []byte
	spareSub  []byte
	spareLog  []byte
	wake      chan struct{}
	lastIdle  bool
	lastQueue int

	// Reading the parent's frames moves between goroutines (runInline).
	// turn numbers the reader's batch while it runs one itself (0: it
	// reads); turnTimer, while checking, calls turnCheck every
	// inlineTakeover, which hands the reading over from a batch that ran
	// through a whole period; readEnd gets why reading ended (the first
	// cause only).
	turn      uint64
	lastTurn  uint64
	checked   uint64 // the turn seen by the last check
	idleTurns int    // checks since the reader last ran a batch
	checking  bool
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
// after turnIdleChecks periods without one. A timer armed per batch instead
// cost a wake-up of the thread in the network poller per task (Go wakes it
// for any timer earlier than its own), as much as the goroutine that
// runInline saves.
const (
	inlineTakeover = time.Millisecond
	turnIdleChecks = 10
)

type ctrlFrame struct {
	kind wire.Kind
	body []byte
}

// RunWorker runs a worker rank until its parent tells it to shut down
// (ErrShutdown), its parent is lost (ErrParentLost) or ctx ends.
func RunWorker(ctx context.Context, cfg WorkerConfig) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	cfg = cfg.withDefaults()
	log := cfg.Logger.With("role", "worker", "rank", cfg.Rank, "host", cfg.Host)
	me := wire.Hello{Role: roleWorker + linkChild, Rank: cfg.Rank, Host: cfg.Host}
	l, err := dialLink(ctx, cfg.Parent, cfg.Link, me)
	if err != nil {
		return fmt.Errorf("worker rank %d: %w", cfg.Rank, err)
	}
	log.Info("ready", "parent", cfg.Parent, "parent_rank", l.peer.Rank, "slots", cfg.Slots)
	return runWorkerOn(ctx, cfg, log, l)
}

func newWorker(cfg WorkerConfig, log *slog.Logger) *worker {
	return &worker{
		cfg: cfg, log: log, slots: cfg.Slots, free: cfg.Slots,
		remote: make(map[uint64]*task), up: make(map[uint64]*task),
		futures: make(map[uint64]*future), wake: make(chan struct{}, 1),
		readEnd: make(chan error, 1),
	}
}

func runWorkerOn(ctx context.Context, cfg WorkerConfig, log *slog.Logger, l *link) error {
	w := newWorker(cfg, log)
	w.link = l
	w.mu.Lock()
	w.ctrlOut = append(w.ctrlOut, ctrlFrame{wire.KindJoin, wire.AppendJoin(nil, &wire.Join{Ranks: 1, Slots: w.slots})})
	w.lastIdle = true
	w.wakeWriter()
	w.mu.Unlock()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stopClose := context.AfterFunc(ctx, l.close)
	defer stopClose()
	var wg sync.WaitGroup
	writeErr := make(chan error, 1)
	wg.Go(func() { writeErr <- w.writeLoop(ctx) })
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
		w.waitRunners(cfg.ShutdownGrace)
		w.flushAll()
	} else if errors.Is(readErr, ErrShutdown) {
		cause = ErrShutdown
		log.Debug("shutdown requested")
	} else if ctx.Err() != nil {
		cause = ctx.Err()
	} else {
		log.Warn("parent connection lost", "err", readErr)
	}
	w.stop()
	w.stopStream()
	cancel()
	l.close()
	wg.Wait()
	w.waitRunners(cfg.ShutdownGrace)
	return cause
}

// stop cancels everything the rank holds.
func (w *worker) stop() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.stopping = true
	for _, t := range w.remote {
		w.cancelTask(t)
	}
	for _, f := range w.futures {
		w.cancelFuture(f)
	}
	// Parked kernels need a token to return; hand out as many as asked.
	for _, ch := range w.resumers {
		close(ch)
	}
	w.resumers = nil
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
	w.mu.Lock()
	w.ctrlOut = append(w.ctrlOut, ctrlFrame{wire.KindHeartbeat, nil})
	w.wakeWriter()
	w.mu.Unlock()
}

func (w *worker) wakeWriter() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// maybeLoad queues a load report when it tells the scheduler above
// something it can act on: the queue grew or shrank past a power of two
// (one queued task is no surplus), or the rank became idle since it last
// said it was busy. Going busy alone is not reported: a rank that runs
// one task at a time sends no load message at all. Called with mu held.
func (w *worker) maybeLoad() {
	idle := w.free > 0
	q := w.queued()
	b := 0
	if q >= 2 {
		b = bits.Len(uint(q))
	}
	if b == w.lastQueue && (!idle || w.lastIdle) {
		return
	}
	w.lastIdle, w.lastQueue = idle, b
	w.ctrlOut = append(w.ctrlOut, ctrlFrame{wire.KindLoad, wire.AppendLoad(nil, &wire.Load{Idle: w.free, Queued: q})})
	w.wakeWriter()
}

// writeLoop sends what the rank produced when woken. Runners also write
// directly (flushNow) after a batch, which saves the hand-off to this
// goroutine on the path of a result.
func (w *worker) writeLoop(ctx context.Context) error {
	for {
		select {
		case <-w.wake:
		case <-ctx.Done():
			return nil
		}
		if err := w.flushNow(); err != nil {
			return err
		}
	}
}

// flushNow writes everything pending unless another goroutine is writing;
// that one checks again for pending output after it finishes, so nothing
// is left behind.
func (w *worker) flushNow() error {
	for w.writeMu.TryLock() {
		w.mu.Lock()
		res, sub, lg, canc, ctrl := w.resultOut, w.submitOut, w.logOut, w.cancelOut, w.ctrlOut
		if len(res)+len(sub)+len(lg)+len(canc)+len(ctrl) == 0 {
			w.mu.Unlock()
			w.writeMu.Unlock()
			return nil
		}
		w.resultOut, w.submitOut, w.logOut = w.spareRes[:0], w.spareSub[:0], w.spareLog[:0]
		w.resAged = false
		w.cancelOut, w.ctrlOut = nil, nil
		w.mu.Unlock()
		err := w.writeFrames(res, sub, lg, canc, ctrl)
		w.spareRes, w.spareSub, w.spareLog = res, sub, lg
		w.writeMu.Unlock()
		if err != nil {
			w.link.close()
			return err
		}
	}
	return nil
}

func (w *worker) writeFrames(res, sub, lg []byte, canc []uint64, ctrl []ctrlFrame) error {
	fc := w.link.fc
	var err error
	put := func(k wire.Kind, b []byte) {
		if err == nil {
			// Batches go in frames of about wire.MaxBatch at most.
			err = wire.WriteBatch(fc, k, b)
		}
	}
	for _, c := range ctrl {
		put(c.kind, c.body)
	}
	if len(sub) > 0 {
		put(wire.KindSubmit, sub)
	}
	wire.SplitCancel(canc, func(b []byte) { put(wire.KindCancel, b) })
	if len(lg) > 0 {
		put(wire.KindLog, lg)
	}
	if len(res) > 0 {
		put(wire.KindResult, res)
	}
	if err == nil {
		err = fc.Flush()
	}
	return err
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
	w.mu.Lock()
	w.lastTurn++
	turn := w.lastTurn
	w.turn = turn
	for _, t := range batch {
		t.turn = turn
	}
	if !w.checking {
		w.checking, w.checked, w.idleTurns = true, 0, 0
		w.turnTimer.Reset(inlineTakeover)
	}
	w.mu.Unlock()
	w.runBatch(batch, 0)
	if !w.passToken() {
		w.free++
		w.dispatch(false)
	}
	w.maybeLoad()
	reading = w.turn == turn
	if reading {
		w.turn = 0
	}
	w.mu.Unlock()
	_ = w.flushNow()
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
	if w.streaming || w.streamTimer == nil || w.stopping {
		return
	}
	w.streaming, w.streamIdle = true, 0
	w.streamTimer.Reset(streamPeriod)
}

func (w *worker) stopStream() {
	w.mu.Lock()
	w.streaming = false
	w.streamTimer.Stop()
	w.mu.Unlock()
}

// streamCheck writes the results that were already waiting at the last
// check, and checks again after streamPeriod unless no slot was busy for
// streamIdleChecks periods.
func (w *worker) streamCheck() {
	w.mu.Lock()
	if !w.streaming {
		w.mu.Unlock()
		return
	}
	pending := len(w.resultOut) > 0
	write := pending && w.resAged
	w.resAged = pending
	if w.free < w.slots || pending {
		w.streamIdle = 0
	} else {
		w.streamIdle++
	}
	if w.streamIdle >= streamIdleChecks || w.stopping {
		w.streaming = false
	} else {
		w.streamTimer.Reset(streamPeriod)
	}
	w.mu.Unlock()
	if write {
		_ = w.flushNow()
	}
}

// handOffReading starts another reading goroutine if turn is the reader's
// current batch: one of its kernels is about to block, or it ran too long.
// Called with mu held.
func (w *worker) handOffReading(turn uint64) {
	if turn == 0 || w.turn != turn || w.stopping {
		return
	}
	w.turn = 0
	go w.read()
}

// turnCheck hands the reading over from a batch the reader has been
// running since the last check, and checks again after inlineTakeover
// unless the reader ran no batch for turnIdleChecks periods.
func (w *worker) turnCheck() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.turn != 0 && w.turn == w.checked {
		w.handOffReading(w.turn)
	}
	if w.lastTurn == w.checked {
		w.idleTurns++
	} else {
		w.idleTurns = 0
	}
	w.checked = w.lastTurn
	if w.idleTurns >= turnIdleChecks || w.stopping {
		w.checking = false
		return
	}
	w.turnTimer.Reset(inlineTakeover)
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
		i++
		t.kernel, t.args, t.payload, t.logLevel, t.logDepth = wt.Kernel, wt.Args, wt.Payload, wt.LogLevel, wt.LogDepth
		t.remoteID, t.logID = id, id
		t.ctx = &t.own
	}
	ts = ts[:i]
	w.mu.Lock()
	defer w.mu.Unlock()
	for i := range ts {
		w.remote[ts[i].remoteID] = &ts[i]
		w.push(&ts[i])
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
	_ = w.flushNow()
	return err
}

// completeUp completes the tasks of a result batch from the parent.
func (w *worker) completeUp(b []byte) error {
	recs := wire.NewRecords(b)
	var r wire.Result
	w.mu.Lock()
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
		w.finishUp(t, val, err)
	}
	return recs.Err()
}

// finishUp completes a task that ran elsewhere. Called with mu held.
func (w *worker) finishUp(t *task, val []byte, err error) {
	t.state = stateRunning // finish counts it as run here; undo below
	w.done--
	w.finish(t, val, err)
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
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, id := range ids {
		if t, ok := w.remote[id]; ok {
			w.cancelTask(t)
		}
	}
}

func (w *worker) onLog(b []byte) error {
	var rec wire.LogRecord
	w.mu.Lock()
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
	w.mu.Lock()
	w.draining = true
	q := w.queued()
	w.mu.Unlock()
	w.log.Info("draining", "queued", q)
	if q > 0 {
		w.onSteal(q)
	}
	w.mu.Lock()
	w.checkDrained()
	w.mu.Unlock()
}

// selfDrain drains the rank on its own initiative (WorkerConfig.Drain):
// its parent learns of it first, so that it sends no more tasks.
func (w *worker) selfDrain() {
	w.mu.Lock()
	w.ctrlOut = append(w.ctrlOut, ctrlFrame{wire.KindDrain, wire.AppendDrain(nil, &wire.Drain{Ranks: []int{w.cfg.Rank}})})
	w.wakeWriter()
	w.mu.Unlock()
	w.onDrain()
}

// checkDrained ends a draining rank's reading with ErrDrained once it holds
// no task from its parent. Called with mu held.
func (w *worker) checkDrained() {
	if w.draining && len(w.remote) == 0 {
		w.endRead(ErrDrained)
	}
}

// flushAll writes everything pending, waiting for a writer that is busy.
func (w *worker) flushAll() {
	w.writeMu.Lock()
	defer w.writeMu.Unlock()
	w.mu.Lock()
	res, sub, lg, canc, ctrl := w.resultOut, w.submitOut, w.logOut, w.cancelOut, w.ctrlOut
	w.resultOut, w.submitOut, w.logOut, w.cancelOut, w.ctrlOut = nil, nil, nil, nil, nil
	w.mu.Unlock()
	if len(res)+len(sub)+len(lg)+len(canc)+len(ctrl) == 0 {
		return
	}
	if err := w.writeFrames(res, sub, lg, canc, ctrl); err != nil {
		w.log.Warn("writing the last results", "err", err)
	}
}

// onSteal hands up to n of the oldest queued tasks to the parent, which
// gives them to idle ranks.
func (w *worker) onSteal(n int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, t := range w.stealOldest(n) {
		if t.cancelled || (t.fut != nil && t.fut.cancelled) {
			w.push(t)
			continue
		}
		w.nextUp++
		t.upID = w.nextUp
		t.state = stateUp
		w.up[t.upID] = t
		wt := wire.Task{Kernel: t.kernel, Args: t.args, Payload: t.payload, LogLevel: t.logLevel, LogDepth: t.logDepth}
		w.submitOut = wire.AppendTaskRecord(w.submitOut, t.upID, &wt)
	}
	w.lastQueue = -1
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
	w.mu.Lock()
	defer w.mu.Unlock()
	reply := wire.Status{ID: s.ID, Reply: true, Ranks: []wire.RankStatus{{
		Rank: w.cfg.Rank, Parent: parentRank, Role: roleWorker, Host: w.cfg.Host,
		Slots: w.slots, Busy: w.slots - w.free, Queued: w.queued(), Done: w.done, Alloc: w.cfg.Alloc,
	}}}
	w.ctrlOut = append(w.ctrlOut, ctrlFrame{wire.KindStatus, wire.AppendStatus(nil, &reply)})
	w.wakeWriter()
	return nil
}
