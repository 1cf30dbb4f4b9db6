package wire

import "sync"

// FrameWriter is the write side of a connection: buffered frames and an
// explicit flush. *Conn implements it.
type FrameWriter interface {
	WriteFrame(k Kind, payload []byte) error
	Flush() error
}

type outFrame struct {
	kind Kind
	head []byte // PutParts: the payload is head followed by body
	body []byte
	sent func() // PutPartsSent: called once the frame is written
}

// partsWriter is implemented by writers that send a two-part payload
// without joining it (*Conn).
type partsWriter interface {
	WriteFrameParts(k Kind, head, body []byte) error
}

// Outbox is the queue of frames of one connection. Any goroutine may Put;
// a producer then writes the queue itself with Drain, or has the writer
// goroutine (the one in Run) write it with Kick. Either writes everything
// queued so far and flushes once, so many small messages cost one write
// system call (the nats writeLoop pattern).
//
// Put does not wake the writer goroutine: a producer that drains would
// find it woken for nothing, and waking a parked goroutine makes the Go
// scheduler wake an idle thread too. On the server's path of a task (read
// a frame, handle it, drain), that wake-up was a futex call, and the woken
// thread often ran first on the producer's CPU.
type Outbox struct {
	mu      sync.Mutex
	frames  []outFrame
	spare   []outFrame
	wake    chan struct{}
	closed  bool
	stopped bool
	writing bool // a goroutine is in Drain
	// written, if set, gets each Put body once it is written (for the
	// producer to reuse); set before the first Put.
	written func(body []byte)
}

// NewOutbox returns an empty outbox.
func NewOutbox() *Outbox { return &Outbox{wake: make(chan struct{}, 1)} }

// NewOutboxReusing returns an empty outbox that hands each body queued
// with Put back to written once it is written, from the writing
// goroutine: a producer that fills large buffers reuses them instead of
// having fresh memory zeroed for every batch.
func NewOutboxReusing(written func(body []byte)) *Outbox {
	o := NewOutbox()
	o.written = written
	return o
}

// Put queues one frame, to be written by the next Drain or Kick. The
// outbox owns body from then on. Put reports false when the outbox is
// closed (the frame is dropped).
func (o *Outbox) Put(k Kind, body []byte) bool {
	return o.put(outFrame{kind: k, body: body})
}

// PutParts queues one frame whose payload is head followed by body, sent
// without joining them when the writer allows (Conn.WriteFrameParts). The
// outbox owns head and body from then on; it is not split as a batch, so
// it must hold whole records.
func (o *Outbox) PutParts(k Kind, head, body []byte) bool {
	return o.put(outFrame{kind: k, head: head, body: body})
}

// PutPartsSent is PutParts that calls sent, from the writing goroutine,
// once the frame is written and the outbox no longer refers to head or
// body: a relay then reuses the read buffer that body lies in
// (Conn.Recycle). A frame that is never written (Stop, a failed write)
// never calls sent. When PutPartsSent reports false, sent is not called.
// With head nil the frame is Put's (a batch, split as WriteBatch splits
// it), and sent, if not nil, is called once all of it is written.
func (o *Outbox) PutPartsSent(k Kind, head, body []byte, sent func()) bool {
	return o.put(outFrame{kind: k, head: head, body: body, sent: sent})
}

func (o *Outbox) put(f outFrame) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return false
	}
	o.frames = append(o.frames, f)
	return true
}

// Kick has the writer goroutine write what is queued.
func (o *Outbox) Kick() { o.wakeup() }

// Close makes Run return once everything queued so far is written.
func (o *Outbox) Close() {
	o.mu.Lock()
	o.closed = true
	o.mu.Unlock()
	o.wakeup()
}

// Stop makes Run return without writing what is still queued.
func (o *Outbox) Stop() {
	o.mu.Lock()
	o.closed, o.stopped = true, true
	o.mu.Unlock()
	o.wakeup()
}

// Run writes queued frames to w until Close (nil, once drained) or Stop
// (nil), or a write fails (the error).
func (o *Outbox) Run(w FrameWriter) error {
	for range o.wake {
		if err := o.Drain(w); err != nil {
			return err
		}
		o.mu.Lock()
		done := o.stopped || (o.closed && len(o.frames) == 0 && !o.writing)
		o.mu.Unlock()
		if done {
			return nil
		}
	}
	return nil
}

// Drain writes everything queued to w and flushes, from the calling
// goroutine, unless another goroutine is writing; that one keeps writing
// until the queue is empty, so a frame queued before Drain is never left
// behind. A goroutine that produced frames calls Drain to save the
// hand-off to the writer goroutine.
func (o *Outbox) Drain(w FrameWriter) error {
	o.mu.Lock()
	if o.writing || o.stopped {
		o.mu.Unlock()
		return nil
	}
	o.writing = true
	for len(o.frames) > 0 && !o.stopped {
		batch := o.frames
		o.frames, o.spare = o.spare[:0], nil
		o.mu.Unlock()
		err := writeBatch(w, batch, o.written)
		o.mu.Lock()
		o.spare = batch[:0]
		if err != nil {
			o.writing, o.closed, o.stopped = false, true, true
			o.mu.Unlock()
			o.wakeup()
			return err
		}
	}
	o.writing = false
	closed := o.closed
	o.mu.Unlock()
	if closed {
		o.wakeup() // let Run see that everything was written
	}
	return nil
}

func writeBatch(w FrameWriter, batch []outFrame, written func([]byte)) error {
	for i := range batch {
		f := &batch[i]
		var err error
		switch pw, ok := w.(partsWriter); {
		case f.head == nil:
			err = WriteBatch(w, f.kind, f.body)
		case ok:
			err = pw.WriteFrameParts(f.kind, f.head, f.body)
		default:
			err = w.WriteFrame(f.kind, append(append([]byte(nil), f.head...), f.body...))
		}
		if err != nil {
			return err
		}
		if written != nil && f.head == nil {
			written(f.body)
		}
		if f.sent != nil {
			f.sent()
		}
		batch[i] = outFrame{}
	}
	return w.Flush()
}

func (o *Outbox) wakeup() {
	select {
	case o.wake <- struct{}{}:
	default:
	}
}
