package wire

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"testing"
	"testing/iotest"
)

// fuzzMaxFrame keeps fuzzed frames small, so that a decompression bomb
// is easy for the fuzzer to build.
const fuzzMaxFrame = 64 << 10

// frameOutcome is what reading a whole stream gave: the frames, then the
// class of the error that ended it.
type frameOutcome struct {
	frames []string
	end    string
}

func errClass(err error) string {
	switch {
	case err == io.EOF:
		return "EOF"
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "unexpected EOF"
	case errors.Is(err, ErrFrameTooLarge):
		return "too large"
	case errors.Is(err, ErrBadFrame):
		return "bad frame"
	}
	return "other: " + err.Error()
}

// readOutcome reads the stream of r to its end. It also checks
// FrameBuffered: when it says the next frame is in, ReadFrame must return
// it (or its error) without reading, and never a truncated frame.
func readOutcome(t *testing.T, r io.Reader, streamLen int) frameOutcome {
	cr := &countReader{r: r}
	c := NewConn(readWriter{cr, io.Discard}, Options{MaxFrame: fuzzMaxFrame})
	var o frameOutcome
	for range streamLen/headerSize + 1 {
		buffered, before := c.FrameBuffered(), cr.n
		k, p, err := c.ReadFrame()
		if buffered && (cr.n != before || errors.Is(err, io.ErrUnexpectedEOF) || err == io.EOF) {
			t.Fatalf("FrameBuffered said the next frame was in, but ReadFrame read %d bytes more and returned %v", cr.n-before, err)
		}
		if err != nil {
			o.end = errClass(err)
			return o
		}
		if !k.Valid() || len(p) > fuzzMaxFrame {
			t.Fatalf("ReadFrame returned kind %d and %d bytes", k, len(p))
		}
		o.frames = append(o.frames, fmt.Sprintf("%s:%x", k, p))
	}
	t.Fatalf("more than %d frames from %d bytes", streamLen/headerSize+1, streamLen)
	return o
}

// FuzzReadFrame reads arbitrary bytes as a stream of frames, whole, one byte
// at a time and split in two: the three must agree, and no frame may
// exceed the limit.
func FuzzReadFrame(f *testing.F) {
	for _, comp := range allCompressions {
		var buf bytes.Buffer
		c := NewConn(&buf, Options{Compression: comp, Threshold: 16})
		c.WriteFrame(KindSubmit, repetitiveBytes(300))
		c.WriteFrame(KindHeartbeat, nil)
		c.WriteFrame(KindResult, []byte("ok"))
		c.Flush()
		f.Add(buf.Bytes())
	}
	f.Add(frameBytes(fuzzMaxFrame+1, KindSubmit, 0, nil))
	f.Add(frameBytes(3, KindLog, flagS2|flagZstd, []byte("abc")))
	f.Add([]byte{0, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		want := readOutcome(t, bytes.NewReader(data), len(data))
		half := len(data) / 2
		for name, r := range map[string]io.Reader{
			"one byte": iotest.OneByteReader(bytes.NewReader(data)),
			"halves":   io.MultiReader(bytes.NewReader(data[:half]), bytes.NewReader(data[half:])),
		} {
			got := readOutcome(t, r, len(data))
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("%s: read %v\nwhole stream: %v", name, got, want)
			}
		}
	})
}

// FuzzRoundTrip sends a payload and a marker frame under every compression
// and checks that both come back unchanged, that the payload given to
// WriteFrame was not touched, and that no frame grows by more than its header.
func FuzzRoundTrip(f *testing.F) {
	f.Add([]byte{}, uint16(0))
	f.Add([]byte("hello"), uint16(1))
	f.Add(repetitiveBytes(5000), uint16(100))
	f.Add(randomBytes(1, 3000), uint16(1))
	codecs := NewCodecs(fuzzMaxFrame) // built once: building is slow under coverage
	f.Fuzz(func(t *testing.T, payload []byte, threshold uint16) {
		if len(payload) > 16<<10 { // larger ones make minimizing slow; unit tests cover them
			return
		}
		orig := bytes.Clone(payload)
		for _, comp := range allCompressions {
			var buf bytes.Buffer
			c := NewConn(&buf, Options{MaxFrame: fuzzMaxFrame, Compression: comp, Threshold: int(threshold), Codecs: codecs})
			if err := c.WriteFrame(KindResult, payload); err != nil {
				t.Fatalf("%s: WriteFrame: %v", comp, err)
			}
			if err := c.WriteFrame(KindHeartbeat, []byte("marker")); err != nil {
				t.Fatalf("%s: WriteFrame: %v", comp, err)
			}
			if err := c.Flush(); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(payload, orig) {
				t.Fatalf("%s: WriteFrame changed its payload", comp)
			}
			if n := buf.Len(); n > 2*headerSize+len(payload)+len("marker") {
				t.Fatalf("%s: %d bytes on the wire for a %d-byte payload", comp, n, len(payload))
			}
			if k, p, err := c.ReadFrame(); err != nil || k != KindResult || !bytes.Equal(p, payload) {
				t.Fatalf("%s: read back %s, %d bytes, %v", comp, k, len(p), err)
			}
			if k, p, err := c.ReadFrame(); err != nil || k != KindHeartbeat || string(p) != "marker" {
				t.Fatalf("%s: marker read back as %s %q %v", comp, k, p, err)
			}
			if _, _, err := c.ReadFrame(); err != io.EOF {
				t.Fatalf("%s: after the frames: %v", comp, err)
			}
		}
	})
}

// countReader counts the bytes read through it.
type countReader struct {
	r io.Reader
	n int
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

// FuzzHandshake plays arbitrary bytes as the peer of either end: the
// handshake must fail (it never succeeds without the secret), and it must
// read no more than a few handshake frames' worth of bytes.
func FuzzHandshake(f *testing.F) {
	sec := testSecret(f, 42)
	fromClient, fromServer := recordHandshake(f, sec)
	f.Add(fromClient, true)
	f.Add(fromServer, false)
	hello := appendTestHello(f, Hello{Version: ProtocolVersion, Role: "x"})
	f.Add(frameBytes(uint32(len(hello)), KindHello, 0, hello), true)
	f.Add(frameBytes(uint32(len(hello)), KindHello, 0, hello), false)
	f.Fuzz(func(t *testing.T, data []byte, asServer bool) {
		half := len(data) / 2
		for name, r := range map[string]io.Reader{
			"whole":    bytes.NewReader(data),
			"one byte": iotest.OneByteReader(bytes.NewReader(data)),
			"halves":   io.MultiReader(bytes.NewReader(data[:half]), bytes.NewReader(data[half:])),
		} {
			cr := &countReader{r: r}
			c := NewConn(readWriter{cr, io.Discard}, Options{})
			var err error
			if asServer {
				_, err = ServerHandshake(c, sec, Hello{Role: "server"})
			} else {
				_, err = ClientHandshake(c, sec, Hello{Role: "client"})
			}
			if err == nil {
				t.Fatalf("%s: handshake succeeded against %d arbitrary bytes", name, len(data))
			}
			if limit := 3 * (handshakeMaxFrame + headerSize); cr.n > limit {
				t.Fatalf("%s: handshake read %d bytes, limit %d", name, cr.n, limit)
			}
		}
	})
}
