package wire

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"testing"
	"time"
)

// TestReadFrameResumesAfterDeadline cuts a MACed frame in two on a real
// TCP connection: a read deadline expires once the first part is read,
// and ReadFrame, called again once the rest is sent, returns the frame
// whole (and the frame after it), the MAC sequence in step.
func TestReadFrameResumesAfterDeadline(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		nc, _ := ln.Accept()
		accepted <- nc
	}()
	cnc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer cnc.Close()
	snc := <-accepted
	if snc == nil {
		t.Fatal("accept failed")
	}
	defer snc.Close()

	crw := &switchRW{cnc, cnc}
	client, server := NewConn(crw, Options{}), NewConn(snc, Options{})
	handshake(t, client, server, testSecret(t, 7))

	// The frames as they go on the wire, MACs and all; then sent by hand.
	var sent bytes.Buffer
	crw.w = &sent
	frames := []testFrame{{KindSubmit, randomBytes(3, 200<<10)}, {KindResult, []byte("after")}}
	writeMACFrames(t, client, frames)
	if err := client.Flush(); err != nil {
		t.Fatal(err)
	}
	stream := sent.Bytes()
	cut := headerSize + 100<<10
	if _, err := cnc.Write(stream[:cut]); err != nil {
		t.Fatal(err)
	}
	// Loopback TCP has the bytes in the receiver's buffer once Write
	// returns; a deadline long enough to read them then expires inside
	// the frame. Doubling it copes with a slow machine.
	for d := time.Millisecond; server.Buffered() == 0; d *= 2 {
		if d > 10*time.Second {
			t.Fatal("the first part of the frame was never read")
		}
		if err := snc.SetReadDeadline(time.Now().Add(d)); err != nil {
			t.Fatal(err)
		}
		if k, p, err := server.ReadFrame(); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("ReadFrame on half a frame: %s of %d bytes, %v; want a deadline error", k, len(p), err)
		}
	}
	if err := snc.SetReadDeadline(time.Time{}); err != nil {
		t.Fatal(err)
	}
	go cnc.Write(stream[cut:])
	got, err := readAll(server, len(frames))
	if err != nil {
		t.Fatal(err)
	}
	checkSentFrames(t, got, frames)
	if len(got) != len(frames) {
		t.Fatalf("read %d frames, want %d", len(got), len(frames))
	}
}

// deadlineReader serves a stream in the chunks cuts gives (cycling),
// returning os.ErrDeadlineExceeded with no data between chunks, as a
// net.Conn does when its read deadline expires.
type deadlineReader struct {
	data    []byte
	cuts    []byte
	i       int
	expired bool
}

func (r *deadlineReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	if r.expired = !r.expired; r.expired {
		return 0, fmt.Errorf("read tcp: %w", os.ErrDeadlineExceeded)
	}
	n := len(r.data)
	if len(r.cuts) > 0 {
		n = 1 + int(r.cuts[r.i%len(r.cuts)])*37
		r.i++
	}
	n = min(n, len(p), len(r.data))
	copy(p, r.data[:n])
	r.data = r.data[n:]
	return n, nil
}

// readResuming reads frames as readOutcome does, calling ReadFrame again
// after every deadline error.
func readResuming(t *testing.T, r io.Reader, streamLen int) frameOutcome {
	c := NewConn(readWriter{r, io.Discard}, Options{MaxFrame: fuzzMaxFrame})
	var o frameOutcome
	for range 2*streamLen + 2 {
		k, p, err := c.ReadFrame()
		if errors.Is(err, os.ErrDeadlineExceeded) {
			continue
		}
		if err != nil {
			o.end = errClass(err)
			return o
		}
		o.frames = append(o.frames, fmt.Sprintf("%s:%x", k, p))
	}
	t.Fatalf("no end after %d reads of %d bytes", 2*streamLen+2, streamLen)
	return o
}

// FuzzReadFrameDeadlines reads arbitrary bytes in arbitrary chunks with a
// read deadline expiring between every two: the frames and the error
// that ends the stream must be those of the stream read whole.
func FuzzReadFrameDeadlines(f *testing.F) {
	for _, comp := range allCompressions {
		var buf bytes.Buffer
		c := NewConn(&buf, Options{Compression: comp, Threshold: 16})
		c.WriteFrame(KindSubmit, repetitiveBytes(300))
		c.WriteFrame(KindHeartbeat, nil)
		c.WriteFrame(KindResult, []byte("ok"))
		c.Flush()
		f.Add(buf.Bytes(), []byte{0, 3, 1})
	}
	f.Add(frameBytes(fuzzMaxFrame+1, KindSubmit, 0, nil), []byte{2})
	f.Add(frameBytes(3, KindLog, flagS2|flagZstd, []byte("abc")), []byte{0})
	f.Add([]byte{0, 0, 0}, []byte{})
	f.Fuzz(func(t *testing.T, data, cuts []byte) {
		want := readOutcome(t, bytes.NewReader(data), len(data))
		got := readResuming(t, &deadlineReader{data: data, cuts: cuts}, len(data))
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("read with deadlines %v\nwhole stream: %v", got, want)
		}
	})
}

// TestReadFrameMACDeadlineAnywhere reads MACed frames of every writer
// path with a deadline expiring after every chunk of n bytes, for many
// n: every frame comes back whole and in order.
func TestReadFrameMACDeadlineAnywhere(t *testing.T) {
	for _, chunk := range []byte{0, 1, 5, 27, 200, 255} {
		client, server, sent, _ := handshakenPair(t, Options{Compression: CompressZstd, Threshold: 64})
		frames := macFrames()
		writeMACFrames(t, client, frames)
		if err := client.Flush(); err != nil {
			t.Fatal(err)
		}
		server.r = &deadlineReader{data: bytes.Clone(sent.Bytes()), cuts: []byte{chunk}}
		var got []testFrame
		for reads := 0; len(got) < len(frames); reads++ {
			if reads > 2*sent.Len() {
				t.Fatalf("chunks of %d bytes: %d frames after %d reads", 1+int(chunk)*37, len(got), reads)
			}
			k, p, err := server.ReadFrame()
			if errors.Is(err, os.ErrDeadlineExceeded) {
				continue
			}
			if err != nil {
				t.Fatalf("chunks of %d bytes: frame %d: %v", 1+int(chunk)*37, len(got), err)
			}
			got = append(got, testFrame{k, bytes.Clone(p)})
		}
		checkSentFrames(t, got, frames)
		if _, _, err := server.ReadFrame(); err != io.EOF {
			t.Fatalf("after the frames: %v, want EOF", err)
		}
	}
}
