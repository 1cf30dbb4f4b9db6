package wire

import (
	"bytes"
	"encoding/binary"
	"sync"
	"testing"
)

type recordingWriter struct {
	mu     sync.Mutex
	frames []uint64
	kinds  []Kind
}

func (w *recordingWriter) WriteFrame(k Kind, b []byte) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	v, _ := binary.Uvarint(b)
	w.frames = append(w.frames, v)
	w.kinds = append(w.kinds, k)
	return nil
}

func (w *recordingWriter) Flush() error { return nil }

// TestOutboxOrderUnderConcurrentPuts checks that frames put while the
// writer runs all arrive, in order, with their kinds intact.
func TestOutboxOrderUnderConcurrentPuts(t *testing.T) {
	o := NewOutbox()
	w := &recordingWriter{}
	done := make(chan error)
	go func() { done <- o.Run(w) }()
	const n = 20000
	for i := range n {
		o.Put(KindResult, binary.AppendUvarint(nil, uint64(i)))
		o.Kick()
	}
	o.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if len(w.frames) != n {
		t.Fatalf("got %d frames, want %d", len(w.frames), n)
	}
	for i, v := range w.frames {
		if v != uint64(i) || w.kinds[i] != KindResult {
			t.Fatalf("frame %d: got %d (%v), want %d (result)", i, v, w.kinds[i], i)
		}
	}
	if o.Put(KindResult, nil) {
		t.Fatal("Put after Close succeeded")
	}
}

func TestOutboxThroughConn(t *testing.T) {
	var buf bytes.Buffer
	c := NewConn(&buf, Options{})
	o := NewOutbox()
	o.Put(KindHeartbeat, nil)
	o.Put(KindLog, []byte("x"))
	o.Close()
	if err := o.Run(c); err != nil {
		t.Fatal(err)
	}
	r := NewConn(&buf, Options{})
	for _, want := range []Kind{KindHeartbeat, KindLog} {
		k, _, err := r.ReadFrame()
		if err != nil || k != want {
			t.Fatalf("got %v %v, want %v", k, err, want)
		}
	}
}

// TestOutboxDrainFromProducers has producers write directly with Drain
// while the writer goroutine runs: every frame arrives exactly once, and
// each producer's frames in order.
func TestOutboxDrainFromProducers(t *testing.T) {
	o := NewOutbox()
	w := &recordingWriter{}
	done := make(chan error)
	go func() { done <- o.Run(w) }()
	const producers, each = 4, 5000
	var wg sync.WaitGroup
	for p := range producers {
		wg.Go(func() {
			for i := range each {
				o.Put(KindResult, binary.AppendUvarint(nil, uint64(p*each+i)))
				if i%7 == 0 {
					if err := o.Drain(w); err != nil {
						t.Error(err)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	o.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if len(w.frames) != producers*each {
		t.Fatalf("got %d frames, want %d", len(w.frames), producers*each)
	}
	last := make([]int, producers)
	for i := range last {
		last[i] = -1
	}
	for _, v := range w.frames {
		p, i := int(v)/each, int(v)%each
		if i <= last[p] {
			t.Fatalf("producer %d: frame %d after %d", p, i, last[p])
		}
		last[p] = i
	}
}

// joinedWriter is a FrameWriter without WriteFrameParts.
type joinedWriter struct{ payloads [][]byte }

func (w *joinedWriter) WriteFrame(_ Kind, b []byte) error {
	w.payloads = append(w.payloads, append([]byte(nil), b...))
	return nil
}

func (w *joinedWriter) Flush() error { return nil }

// TestOutboxPutParts checks that a two-part frame reaches the wire as one
// payload, head then body, through a Conn and through a plain FrameWriter.
func TestOutboxPutParts(t *testing.T) {
	body := randomBytes(7, 200<<10)
	head := AppendRecordHead(nil, 42, len(body))
	want := append(append([]byte(nil), head...), body...)

	o := NewOutbox()
	o.PutParts(KindSubmit, head, body)
	o.Put(KindResult, []byte("after"))
	var jw joinedWriter
	if err := o.Drain(&jw); err != nil {
		t.Fatal(err)
	}
	if len(jw.payloads) != 2 || !bytes.Equal(jw.payloads[0], want) || string(jw.payloads[1]) != "after" {
		t.Fatalf("plain writer got %d payloads, want the joined parts then \"after\"", len(jw.payloads))
	}

	var buf bytes.Buffer
	c := NewConn(&buf, Options{})
	o.PutParts(KindSubmit, head, body)
	if err := o.Drain(c); err != nil {
		t.Fatal(err)
	}
	k, got, err := NewConn(&buf, Options{}).ReadFrame()
	if err != nil || k != KindSubmit || !bytes.Equal(got, want) {
		t.Fatalf("conn: got %v, %d bytes, %v; want submit, the %d joined bytes", k, len(got), err, len(want))
	}
}

// TestOutboxHandsWrittenBodiesBack: an outbox made with NewOutboxReusing
// hands each Put body back once it is written, and only then; PutParts
// bodies are not handed back.
func TestOutboxHandsWrittenBodiesBack(t *testing.T) {
	w := &recordingWriter{}
	var back [][]byte
	o := NewOutboxReusing(func(b []byte) {
		w.mu.Lock()
		written := len(w.frames)
		w.mu.Unlock()
		if written == 0 {
			t.Error("a body was handed back before any frame was written")
		}
		back = append(back, b)
	})
	first, second := binary.AppendUvarint(nil, 1), binary.AppendUvarint(nil, 2)
	o.Put(KindSubmit, first)
	o.PutParts(KindResult, binary.AppendUvarint(nil, 3), nil)
	o.Put(KindSubmit, second)
	if len(back) != 0 {
		t.Fatal("bodies handed back before Drain")
	}
	if err := o.Drain(w); err != nil {
		t.Fatal(err)
	}
	if len(back) != 2 || &back[0][0] != &first[0] || &back[1][0] != &second[0] {
		t.Fatalf("handed back %d bodies, want the two Put ones in order", len(back))
	}
	if len(w.frames) != 3 {
		t.Fatalf("%d frames written, want 3", len(w.frames))
	}
}

// TestOutboxPartsSent: the sent callback of PutPartsSent runs once its
// frame is written, in order with the other frames, and never for frames
// dropped by Stop.
func TestOutboxPartsSent(t *testing.T) {
	o := NewOutbox()
	w := &recordingWriter{}
	var order []uint64
	for i := range 3 {
		id := uint64(i)
		o.PutPartsSent(KindSubmit, binary.AppendUvarint(nil, id), []byte("body"), func() {
			w.mu.Lock()
			defer w.mu.Unlock()
			if len(w.frames) == 0 || w.frames[len(w.frames)-1] != id {
				t.Errorf("sent %d called before its frame was written (written: %v)", id, w.frames)
			}
			order = append(order, id)
		})
	}
	if err := o.Drain(w); err != nil {
		t.Fatal(err)
	}
	if len(order) != 3 || order[0] != 0 || order[2] != 2 {
		t.Fatalf("sent called for %v, want 0, 1, 2", order)
	}
	dropped := false
	o.PutPartsSent(KindSubmit, []byte{9}, []byte("body"), func() { dropped = true })
	o.Stop()
	if err := o.Drain(w); err != nil {
		t.Fatal(err)
	}
	if dropped {
		t.Fatal("sent called for a frame Stop dropped")
	}
}
