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
	body []byte
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
}

// NewOutbox returns an empty outbox.
func NewOutbox() *Outbox { return &Outbox{wake: make(chan struct{}, 1)} }

// Put queues one frame. The outbox owns body from then on. Put reports
// false when the outbox is closed (the frame is dropped).
func (o *Outbox) Put(k Kind, body []byte) bool {
	o.mu.Lock()
	if o.closed {
		o.mu.Unlock()
		return false
	}
	o.frames = append(o.frames, outFrame{k, body})
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
	for {
		<-o.wake
		for {
			o.mu.Lock()
			if o.stopped {
				o.mu.Unlock()
				return nil
			}
			if len(o.frames) == 0 {
				closed := o.closed
				o.mu.Unlock()
				if closed {
					return nil
				}
				break
			}
			batch := o.frames
			o.frames, o.spare = o.spare[:0], nil
			o.mu.Unlock()
			for i := range batch {
				if err := w.WriteFrame(batch[i].kind, batch[i].body); err != nil {
					o.Stop()
					return err
				}
				batch[i] = outFrame{}
			}
			if err := w.Flush(); err != nil {
				o.Stop()
				return err
			}
			o.mu.Lock()
			o.spare = batch[:0]
			o.mu.Unlock()
		}
	}
}
