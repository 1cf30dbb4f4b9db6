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
}

// partsWriter is implemented by writers that send a two-part payload
// without joining it (*Conn).
type partsWriter interface {
	WriteFrameParts(k Kind, head, body []byte) error
}

// Outbox is the queue of frames waiting for one connection's writer
// goroutine. Any goroutine may Put; one goroutine runs Run, which writes
// everything queued since it last woke and flushes once, so many small
// messages cost one write system call (the nats writeLoop pattern).
type Outbox struct {
	mu      sync.Mutex
	frames  []outFrame
	spare   []outFrame
	wake    chan struct{}
	closed  bool
	stopped bool
	writing bool // a goroutine is in Drain
}

// NewOutbox returns an empty outbox.
func NewOutbox() *Outbox { return &Outbox{wake: make(chan struct{}, 1)} }

// Put queues one frame. The outbox owns body from then on. Put reports
// false when the outbox is closed (the frame is dropped).
func (o *Outbox) Put(k Kind, body []byte) bool {
	return o.put(outFrame{kind: k, body: body})
}

// PutParts queues one frame whose payload is head followed by body, sent
// without joining them when the writer allows (Conn.WriteFrameParts). The
// outbox owns head and body from then on; it is not split as a batch, so
// it must hold whole records.
func (o *Outbox) PutParts(k Kind, head, body []byte) bool {
	return o.put(outFrame{k, head, body})
}

// put queues f and wakes the writer when the queue was empty.
func (o *Outbox) put(f outFrame) bool {
	o.mu.Lock()
	if o.closed {
		o.mu.Unlock()
		return false
	}
	o.frames = append(o.frames, f)
	n := len(o.frames)
	o.mu.Unlock()
	if n == 1 {
		select {
		case o.wake <- struct{}{}:
		default:
		}
	}
	return true
}

// Close makes Run return once everything queued so far is written.
func (o *Outbox) Close() {
	o.mu.Lock()
	o.closed = true
	o.mu.Unlock()
	select {
	case o.wake <- struct{}{}:
	default:
	}
}

// Stop makes Run return without writing what is still queued.
func (o *Outbox) Stop() {
	o.mu.Lock()
	o.closed, o.stopped = true, true
	o.mu.Unlock()
	select {
	case o.wake <- struct{}{}:
	default:
	}
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
		err := writeBatch(w, batch)
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

func writeBatch(w FrameWriter, batch []outFrame) error {
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
