package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"testing"
	"testing/iotest"

	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
)

var allCompressions = []Compression{CompressNone, CompressS2, CompressZstd}

// readWriter joins a reader and a writer into an io.ReadWriter.
type readWriter struct {
	io.Reader
	io.Writer
}

// randomBytes returns n pseudo-random (incompressible) bytes from a fixed seed.
func randomBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, 1))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// repetitiveBytes returns n bytes of text that compresses well.
func repetitiveBytes(n int) []byte {
	var b []byte
	for i := 0; len(b) < n; i++ {
		b = fmt.Appendf(b, "task %d kernel=noop args=[a b c] status=ok\n", i)
	}
	return b[:n]
}

// frameBytes returns the wire form of one frame.
func frameBytes(size uint32, kind Kind, flags byte, payload []byte) []byte {
	b := binary.BigEndian.AppendUint32(nil, size)
	b = append(b, byte(kind), flags)
	return append(b, payload...)
}

func TestRoundTrip(t *testing.T) {
	const maxFrame = 256 << 10
	const threshold = 1024
	sizes := []int{0, 1, 100, threshold - 1, threshold, threshold + 1,
		writeBufferSize/2 - headerSize, writeBufferSize/2 + 1, writeBufferSize - headerSize, writeBufferSize, writeBufferSize + 1,
		maxFrame - 1, maxFrame}
	for _, comp := range allCompressions {
		for _, content := range []string{"random", "repetitive"} {
			t.Run(comp.String()+"/"+content, func(t *testing.T) {
				var payloads [][]byte
				wantCompressed := uint64(0)
				for i, n := range sizes {
					p := randomBytes(uint64(i), n)
					if content == "repetitive" {
						p = repetitiveBytes(n)
						if comp != CompressNone && n >= threshold {
							wantCompressed++
						}
					}
					payloads = append(payloads, p)
				}
				opts := Options{MaxFrame: maxFrame, Compression: comp, Threshold: threshold}
				t.Run("buffer", func(t *testing.T) {
					var buf bytes.Buffer
					c := NewConn(&buf, opts)
					for i, p := range payloads {
						if err := c.WriteFrame(Kind(1+i%int(kindCount-1)), p); err != nil {
							t.Fatalf("WriteFrame(%d bytes): %v", len(p), err)
						}
					}
					if err := c.Flush(); err != nil {
						t.Fatal(err)
					}
					checkFrames(t, c, payloads)
					if _, _, err := c.ReadFrame(); err != io.EOF {
						t.Fatalf("ReadFrame at the end = %v, want io.EOF", err)
					}
					st := c.Stats()
					if st.CompressedOut != wantCompressed || st.CompressedIn != wantCompressed {
						t.Errorf("compressed frames out %d in %d, want %d", st.CompressedOut, st.CompressedIn, wantCompressed)
					}
					if st.FramesOut != uint64(len(sizes)) || st.FramesIn != uint64(len(sizes)) || st.WireIn != st.WireOut || st.PayloadIn != st.PayloadOut {
						t.Errorf("stats %+v", st)
					}
				})
				t.Run("pipe", func(t *testing.T) {
					a, b := net.Pipe()
					defer a.Close()
					defer b.Close()
					done := make(chan error, 1)
					go func() {
						w := NewConn(a, opts)
						for i, p := range payloads {
							if err := w.WriteFrame(Kind(1+i%int(kindCount-1)), p); err != nil {
								done <- err
								return
							}
						}
						done <- w.Flush()
					}()
					checkFrames(t, NewConn(b, opts), payloads)
					if err := <-done; err != nil {
						t.Fatal(err)
					}
				})
				t.Run("one-byte-reads", func(t *testing.T) {
					var buf bytes.Buffer
					w := NewConn(&buf, opts)
					for i, p := range payloads {
						if err := w.WriteFrame(Kind(1+i%int(kindCount-1)), p); err != nil {
							t.Fatal(err)
						}
					}
					if err := w.Flush(); err != nil {
						t.Fatal(err)
					}
					checkFrames(t, NewConn(readWriter{iotest.OneByteReader(&buf), io.Discard}, opts), payloads)
				})
			})
		}
	}
}

func checkFrames(t *testing.T, c *Conn, payloads [][]byte) {
	t.Helper()
	for i, want := range payloads {
		k, got, err := c.ReadFrame()
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if wantKind := Kind(1 + i%int(kindCount-1)); k != wantKind {
			t.Errorf("frame %d: kind %s, want %s", i, k, wantKind)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("frame %d: payload of %d bytes differs from the %d bytes sent", i, len(got), len(want))
		}
	}
}

func TestWriteLimits(t *testing.T) {
	var buf bytes.Buffer
	c := NewConn(&buf, Options{MaxFrame: 1000})
	if err := c.WriteFrame(KindSubmit, make([]byte, 1001)); !errors.Is(err, ErrFrameTooLarge) {
		t.Errorf("WriteFrame(1001 bytes) = %v, want ErrFrameTooLarge", err)
	}
	for _, k := range []Kind{KindInvalid, kindCount, 255} {
		if err := c.WriteFrame(k, nil); !errors.Is(err, ErrBadFrame) {
			t.Errorf("WriteFrame(%s) = %v, want ErrBadFrame", k, err)
		}
	}
	if err := c.WriteFrame(KindSubmit, make([]byte, 1000)); err != nil {
		t.Errorf("WriteFrame(MaxFrame bytes) = %v", err)
	}
	if err := c.Flush(); err != nil || buf.Len() != headerSize+1000 {
		t.Errorf("Flush = %v, wrote %d bytes, want %d", err, buf.Len(), headerSize+1000)
	}
}

// panicReader serves b, then panics if read again (or, with eof set,
// returns io.EOF): it proves that a reader stopped at the header.
type panicReader struct {
	b   []byte
	eof bool
}

func (r *panicReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		if r.eof {
			return 0, io.EOF
		}
		panic("read past the header")
	}
	n := copy(p, r.b)
	r.b = r.b[n:]
	return n, nil
}

// repeatReader serves its bytes again and again, one copy per Read.
type repeatReader struct{ b []byte }

func (r repeatReader) Read(p []byte) (int, error) { return copy(p, r.b), nil }

func TestReadOversize(t *testing.T) {
	const maxFrame = 1 << 20
	for _, size := range []uint32{maxFrame + 1, 1 << 31, 1<<32 - 1} {
		hdr := frameBytes(size, KindSubmit, 0, nil)
		c := NewConn(readWriter{&panicReader{b: hdr}, io.Discard}, Options{MaxFrame: maxFrame})
		if _, _, err := c.ReadFrame(); !errors.Is(err, ErrFrameTooLarge) {
			t.Errorf("length %d: ReadFrame = %v, want ErrFrameTooLarge", size, err)
		}
		c = NewConn(readWriter{repeatReader{hdr}, io.Discard}, Options{MaxFrame: maxFrame})
		c.ReadFrame() // allocate the read buffer
		allocs := testing.AllocsPerRun(100, func() {
			if _, _, err := c.ReadFrame(); !errors.Is(err, ErrFrameTooLarge) {
				t.Fatalf("ReadFrame = %v", err)
			}
		})
		// The error itself is formatted (a few small allocations); the
		// claimed length must never be.
		if allocs > 8 {
			t.Errorf("length %d: %v allocations per refused frame", size, allocs)
		}
		var ms1, ms2 runtimeMem
		ms1.read()
		for range 100 {
			c.ReadFrame()
		}
		ms2.read()
		if d := ms2.total - ms1.total; d > 100*1024 {
			t.Errorf("length %d: 100 refused frames allocated %d bytes", size, d)
		}
	}
	// At exactly MaxFrame the frame is accepted.
	payload := make([]byte, maxFrame)
	c := NewConn(readWriter{bytes.NewReader(frameBytes(maxFrame, KindResult, 0, payload)), io.Discard}, Options{MaxFrame: maxFrame})
	if k, p, err := c.ReadFrame(); err != nil || k != KindResult || len(p) != maxFrame {
		t.Errorf("ReadFrame(MaxFrame) = %s, %d bytes, %v", k, len(p), err)
	}
}

func TestReadBadHeader(t *testing.T) {
	cases := []struct {
		name  string
		kind  Kind
		flags byte
	}{
		{"kind 0", KindInvalid, 0},
		{"kind past the last", kindCount, 0},
		{"kind 255", 255, 0},
		{"both compressions", KindSubmit, flagS2 | flagZstd},
		{"unknown flag", KindSubmit, 1 << 2},
		{"high flag", KindSubmit, 1 << 7},
		{"s2 and unknown", KindSubmit, flagS2 | 1<<5},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := NewConn(readWriter{&panicReader{b: frameBytes(10, tc.kind, tc.flags, nil)}, io.Discard}, Options{})
			if _, _, err := c.ReadFrame(); !errors.Is(err, ErrBadFrame) {
				t.Errorf("ReadFrame = %v, want ErrBadFrame", err)
			}
		})
	}
}

func TestReadCorruptCompressed(t *testing.T) {
	p := repetitiveBytes(10000)
	for _, tc := range []struct {
		name  string
		flags byte
		data  []byte
	}{
		{"s2 garbage", flagS2, []byte("not an s2 block at all")},
		{"s2 truncated", flagS2, s2.Encode(nil, p)[:50]},
		{"zstd garbage", flagZstd, []byte("not a zstd frame at all")},
		{"zstd truncated", flagZstd, zstdEncode(t, p)[:50]},
		{"empty s2", flagS2, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := NewConn(bytes.NewBuffer(frameBytes(uint32(len(tc.data)), KindSubmit, tc.flags, tc.data)), Options{})
			if _, _, err := c.ReadFrame(); !errors.Is(err, ErrBadFrame) {
				t.Errorf("ReadFrame = %v, want ErrBadFrame", err)
			}
		})
	}
}

func zstdEncode(t testing.TB, p []byte) []byte {
	enc, err := zstd.NewWriter(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	return enc.EncodeAll(p, nil)
}

// zstdStream encodes p as a streamed zstd frame, which records no content size.
func zstdStream(t testing.TB, p []byte) []byte {
	var buf bytes.Buffer
	enc, err := zstd.NewWriter(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(enc, bytes.NewReader(p)); err != nil {
		t.Fatal(err)
	}
	if err := enc.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestZipBomb(t *testing.T) {
	const maxFrame = 1 << 20
	big := make([]byte, 8*maxFrame) // zeros: compresses a thousandfold
	justOver := make([]byte, maxFrame+1)
	concat := append(zstdEncode(t, make([]byte, maxFrame/2+1)), zstdEncode(t, make([]byte, maxFrame/2+1))...)
	for _, tc := range []struct {
		name  string
		flags byte
		data  []byte
	}{
		{"s2 8 MiB", flagS2, s2.Encode(nil, big)},
		{"s2 MaxFrame+1", flagS2, s2.Encode(nil, justOver)},
		{"zstd 8 MiB", flagZstd, zstdEncode(t, big)},
		{"zstd MaxFrame+1", flagZstd, zstdEncode(t, justOver)},
		{"zstd stream without size", flagZstd, zstdStream(t, big)},
		{"zstd two frames", flagZstd, concat},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if len(tc.data) > maxFrame/4 {
				t.Fatalf("bomb of %d bytes is not small", len(tc.data))
			}
			c := NewConn(bytes.NewBuffer(frameBytes(uint32(len(tc.data)), KindResult, tc.flags, tc.data)), Options{MaxFrame: maxFrame})
			k, p, err := c.ReadFrame()
			want := ErrFrameTooLarge
			if tc.name == "zstd two frames" {
				want = ErrBadFrame // a payload is one zstd frame
			}
			if !errors.Is(err, want) {
				t.Errorf("ReadFrame = %s, %d bytes, %v; want %v", k, len(p), err, want)
			}
			if cap(c.dbuf) > 2*maxFrame+1<<17 {
				t.Errorf("decoding buffer grew to %d bytes", cap(c.dbuf))
			}
		})
	}
}

func TestTruncated(t *testing.T) {
	for _, comp := range allCompressions {
		var buf bytes.Buffer
		w := NewConn(&buf, Options{Compression: comp, Threshold: 1})
		if err := w.WriteFrame(KindSubmit, repetitiveBytes(2000)); err != nil {
			t.Fatal(err)
		}
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
		stream := buf.Bytes()
		for cut := range len(stream) {
			c := NewConn(readWriter{bytes.NewReader(stream[:cut]), io.Discard}, Options{})
			_, _, err := c.ReadFrame()
			switch {
			case cut == 0 && err != io.EOF:
				t.Errorf("%s: empty stream: ReadFrame = %v, want io.EOF", comp, err)
			case cut > 0 && !errors.Is(err, io.ErrUnexpectedEOF):
				t.Errorf("%s: stream cut at %d of %d: ReadFrame = %v, want io.ErrUnexpectedEOF", comp, cut, len(stream), err)
			}
		}
	}
}

// errReader fails every read with err.
type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }

func TestReadErrors(t *testing.T) {
	boom := errors.New("boom")
	c := NewConn(readWriter{errReader{boom}, io.Discard}, Options{})
	if _, _, err := c.ReadFrame(); !errors.Is(err, boom) || err.Error() != "wire: read: boom" {
		t.Errorf("ReadFrame = %v, want wire: read: boom", err)
	}
	// An error after part of a frame is a truncated frame.
	c = NewConn(readWriter{io.MultiReader(bytes.NewReader([]byte{0, 0}), errReader{boom}), io.Discard}, Options{})
	if _, _, err := c.ReadFrame(); !errors.Is(err, boom) || !strings.Contains(err.Error(), "truncated") {
		t.Errorf("ReadFrame after 2 bytes = %v, want a truncated frame wrapping boom", err)
	}
	c = NewConn(readWriter{errReader{nil}, io.Discard}, Options{})
	if _, _, err := c.ReadFrame(); !errors.Is(err, io.ErrNoProgress) {
		t.Errorf("ReadFrame from a reader returning nothing = %v, want io.ErrNoProgress", err)
	}
	// Data and an error in the same Read: the frame first, then the error.
	frame := frameBytes(3, KindLog, 0, []byte("abc"))
	c = NewConn(readWriter{iotest.DataErrReader(bytes.NewReader(frame)), io.Discard}, Options{})
	if k, p, err := c.ReadFrame(); err != nil || k != KindLog || string(p) != "abc" {
		t.Errorf("ReadFrame = %s %q %v", k, p, err)
	}
	if _, _, err := c.ReadFrame(); err != io.EOF {
		t.Errorf("second ReadFrame = %v, want io.EOF", err)
	}
}

// failWriter fails after n successful writes.
type failWriter struct {
	n, writes int
}

func (w *failWriter) Write(p []byte) (int, error) {
	w.writes++
	if w.writes > w.n {
		return 0, errors.New("disk on fire")
	}
	return len(p), nil
}

func TestWriteErrorsStick(t *testing.T) {
	w := &failWriter{n: 0}
	c := NewConn(readWriter{nil, w}, Options{})
	if err := c.WriteFrame(KindLog, []byte("x")); err != nil {
		t.Fatalf("buffered WriteFrame = %v", err)
	}
	if err := c.Flush(); err == nil || !strings.Contains(err.Error(), "disk on fire") {
		t.Fatalf("Flush = %v", err)
	}
	if err := c.WriteFrame(KindLog, []byte("y")); err == nil {
		t.Error("WriteFrame after a failed Flush succeeded")
	}
	if err := c.Flush(); err == nil || w.writes != 1 {
		t.Errorf("Flush after failure = %v after %d writes", err, w.writes)
	}
}

// countWriter counts Write calls.
type countWriter struct {
	writes, bytes int
}

func (w *countWriter) Write(p []byte) (int, error) {
	w.writes++
	w.bytes += len(p)
	return len(p), nil
}

func TestFlushIsOneWrite(t *testing.T) {
	w := &countWriter{}
	c := NewConn(readWriter{nil, w}, Options{})
	p := make([]byte, 100)
	for range 200 {
		if err := c.WriteFrame(KindResult, p); err != nil {
			t.Fatal(err)
		}
	}
	if w.writes != 0 {
		t.Fatalf("%d writes before Flush", w.writes)
	}
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	if w.writes != 1 || w.bytes != 200*(headerSize+100) {
		t.Errorf("Flush: %d writes of %d bytes, want 1 of %d", w.writes, w.bytes, 200*(headerSize+100))
	}
	// More than a buffer's worth flushes by itself, in buffer-sized writes.
	*w = countWriter{}
	for range 2000 {
		if err := c.WriteFrame(KindResult, p); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	want := 2000 * (headerSize + 100)
	if w.bytes != want || w.writes != (want+writeBufferSize-1)/writeBufferSize {
		t.Errorf("%d writes of %d bytes, want %d of %d", w.writes, w.bytes, (want+writeBufferSize-1)/writeBufferSize, want)
	}
}

func TestNoAllocationsSteadyState(t *testing.T) {
	small := repetitiveBytes(100)
	big := repetitiveBytes(64 << 10)
	for _, tc := range []struct {
		name    string
		comp    Compression
		payload []byte
	}{
		{"plain 100B", CompressNone, small},
		{"plain 64KiB", CompressNone, big},
		{"s2 64KiB", CompressS2, big},
		{"zstd 64KiB", CompressZstd, big},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			buf.Grow(1 << 20)
			c := NewConn(&buf, Options{Compression: tc.comp})
			round := func() {
				for range 4 {
					if err := c.WriteFrame(KindSubmit, tc.payload); err != nil {
						t.Fatal(err)
					}
				}
				if err := c.Flush(); err != nil {
					t.Fatal(err)
				}
				for range 4 {
					if _, p, err := c.ReadFrame(); err != nil || len(p) != len(tc.payload) {
						t.Fatalf("ReadFrame: %d bytes, %v", len(p), err)
					}
				}
			}
			round()
			round()
			if raceEnabled && tc.comp != CompressNone {
				t.Skip("the codecs' pools allocate under the race detector")
			}
			if n := testing.AllocsPerRun(20, round); n != 0 {
				t.Errorf("%v allocations per 4 frames written and read", n)
			}
		})
	}
}

func TestConcurrentReadWrite(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	ca := NewConn(a, Options{Compression: CompressZstd, Threshold: 512})
	cb := NewConn(b, Options{Compression: CompressS2, Threshold: 512})
	const frames = 500
	payload := func(i int) []byte { return repetitiveBytes(i * 7) }
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for _, c := range []*Conn{ca, cb} {
		wg.Go(func() {
			for i := range frames {
				if err := c.WriteFrame(KindSubmit, payload(i)); err != nil {
					errs <- err
					return
				}
				if i%10 == 0 {
					if err := c.Flush(); err != nil {
						errs <- err
						return
					}
				}
			}
			errs <- c.Flush()
		})
		wg.Go(func() {
			for i := range frames {
				_, p, err := c.ReadFrame()
				if err != nil {
					errs <- err
					return
				}
				if !bytes.Equal(p, payload(i)) {
					errs <- fmt.Errorf("frame %d differs", i)
					return
				}
				_ = c.Stats()
			}
			errs <- nil
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	sa, sb := ca.Stats(), cb.Stats()
	if sa.FramesOut != frames || sb.FramesIn != frames || sa.WireOut != sb.WireIn || sb.WireOut != sa.WireIn {
		t.Errorf("stats a %+v b %+v", sa, sb)
	}
}

func TestCompressionText(t *testing.T) {
	for _, c := range allCompressions {
		b, err := c.MarshalText()
		if err != nil {
			t.Fatal(err)
		}
		var got Compression
		if err := got.UnmarshalText(b); err != nil || got != c {
			t.Errorf("%s: round trip gave %v, %v", c, got, err)
		}
	}
	want := map[string]Compression{"none": CompressNone, "s2": CompressS2, "zstd": CompressZstd}
	for s, c := range want {
		if c.String() != s {
			t.Errorf("%d.String() = %q, want %q", c, c.String(), s)
		}
	}
	var c Compression
	for _, bad := range []string{"", "ZSTD", "gzip", "lz4"} {
		if err := c.UnmarshalText([]byte(bad)); err == nil {
			t.Errorf("UnmarshalText(%q) succeeded", bad)
		}
	}
	if s := Compression(9).String(); s != "compression(9)" {
		t.Errorf("Compression(9).String() = %q", s)
	}
}

func TestSharedCodecs(t *testing.T) {
	codecs := NewCodecs(1 << 20)
	var buf bytes.Buffer
	w := NewConn(&buf, Options{Compression: CompressZstd, Codecs: codecs})
	r := NewConn(&buf, Options{Codecs: codecs})
	p := repetitiveBytes(100000)
	if err := w.WriteFrame(KindResult, p); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if _, got, err := r.ReadFrame(); err != nil || !bytes.Equal(got, p) {
		t.Fatalf("ReadFrame: %d bytes, %v", len(got), err)
	}
	if st := w.Stats(); st.CompressedOut != 1 || st.WireOut >= uint64(len(p))/4 {
		t.Errorf("stats %+v", st)
	}
}

// TestWriteFramePartsRoundTrip checks that WriteFrameParts sends the same
// payload as WriteFrame of the joined parts, for every compression, sizes
// around the buffer and threshold limits, and split points at both ends
// and inside; and that stats count it as one frame.
func TestWriteFramePartsRoundTrip(t *testing.T) {
	const maxFrame = 256 << 10
	const threshold = 1024
	sizes := []int{0, 100, threshold, writeBufferSize/2 + 1, writeBufferSize + 1, maxFrame}
	for _, comp := range allCompressions {
		for _, content := range []string{"random", "repetitive"} {
			t.Run(comp.String()+"/"+content, func(t *testing.T) {
				var payloads [][]byte
				for i, n := range sizes {
					p := randomBytes(uint64(i), n)
					if content == "repetitive" {
						p = repetitiveBytes(n)
					}
					payloads = append(payloads, p)
				}
				opts := Options{MaxFrame: maxFrame, Compression: comp, Threshold: threshold}
				var buf bytes.Buffer
				w := NewConn(&buf, opts)
				var want [][]byte
				for i, p := range payloads {
					for _, cut := range []int{0, min(10, len(p)), len(p) / 2, len(p)} {
						if err := w.WriteFrameParts(Kind(1+len(want)%int(kindCount-1)), p[:cut], p[cut:]); err != nil {
							t.Fatalf("payload %d cut %d: %v", i, cut, err)
						}
						want = append(want, p)
					}
				}
				if err := w.Flush(); err != nil {
					t.Fatal(err)
				}
				r := NewConn(&buf, opts)
				checkFrames(t, r, want)
				if _, _, err := r.ReadFrame(); err != io.EOF {
					t.Fatalf("ReadFrame at the end = %v, want io.EOF", err)
				}
				if st := w.Stats(); st.FramesOut != uint64(len(want)) || st.WireOut != r.Stats().WireIn {
					t.Errorf("stats out %+v, in %+v", st, r.Stats())
				}
			})
		}
	}
	t.Run("too large", func(t *testing.T) {
		w := NewConn(readWriter{nil, io.Discard}, Options{MaxFrame: 1000})
		if err := w.WriteFrameParts(KindSubmit, make([]byte, 10), make([]byte, 991)); !errors.Is(err, ErrFrameTooLarge) {
			t.Fatalf("err = %v, want ErrFrameTooLarge", err)
		}
	})
}

// TestBuffered: after a read that brought in two frames, Buffered reports
// the second one's bytes until ReadFrame returns it; a reader that hands
// out one byte at a time leaves nothing buffered past the frame read.
func TestBuffered(t *testing.T) {
	var buf bytes.Buffer
	w := NewConn(&buf, Options{})
	for _, p := range []string{"first", "second"} {
		if err := w.WriteFrame(KindLog, []byte(p)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	stream := buf.Bytes()
	second := headerSize + len("second")

	r := NewConn(readWriter{bytes.NewReader(stream), nil}, Options{})
	if got := r.Buffered(); got != 0 {
		t.Fatalf("before any read: Buffered %d, want 0", got)
	}
	if _, p, err := r.ReadFrame(); err != nil || string(p) != "first" {
		t.Fatalf("first frame: %q, %v", p, err)
	}
	if got := r.Buffered(); got != second {
		t.Fatalf("after the first frame: Buffered %d, want %d (the second frame)", got, second)
	}
	if _, p, err := r.ReadFrame(); err != nil || string(p) != "second" {
		t.Fatalf("second frame: %q, %v", p, err)
	}
	if got := r.Buffered(); got != 0 {
		t.Fatalf("after both frames: Buffered %d, want 0", got)
	}

	r = NewConn(readWriter{iotest.OneByteReader(bytes.NewReader(stream)), nil}, Options{})
	if _, _, err := r.ReadFrame(); err != nil {
		t.Fatal(err)
	}
	if got := r.Buffered(); got != 0 {
		t.Fatalf("one byte at a time: Buffered %d after the first frame, want 0", got)
	}
}

// TestKeepRecycle: a payload kept (Keep) stays as it was while later
// frames are read, plain or compressed; the buffers given back (Recycle)
// are read into again, which Stats counts, and every payload read into
// one is the one sent.
func TestKeepRecycle(t *testing.T) {
	for _, comp := range allCompressions {
		t.Run(comp.String(), func(t *testing.T) {
			opts := Options{Compression: comp, Threshold: 1024}
			var buf bytes.Buffer
			w := NewConn(&buf, opts)
			var sent [][]byte
			for i := range 12 {
				p := randomBytes(uint64(i), 300<<10+i)
				if i%2 == 1 {
					p = repetitiveBytes(300<<10 + i)
				}
				if err := w.WriteFrame(KindSubmit, p); err != nil {
					t.Fatal(err)
				}
				sent = append(sent, p)
			}
			if err := w.Flush(); err != nil {
				t.Fatal(err)
			}
			r := NewConn(&buf, opts)
			type kept struct {
				i            int
				payload, buf []byte
			}
			var held []kept
			for i, want := range sent {
				_, p, err := r.ReadFrame()
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(p, want) {
					t.Fatalf("frame %d: payload differs from the one sent", i)
				}
				held = append(held, kept{i, p, r.Keep()})
				if len(held) == 3 {
					// The oldest is intact after two more reads; give it back.
					k := held[0]
					if !bytes.Equal(k.payload, sent[k.i]) {
						t.Fatalf("frame %d: kept payload changed by later reads", k.i)
					}
					r.Recycle(k.buf)
					held = held[1:]
				}
			}
			if got := r.Stats().Recycled; got == 0 {
				t.Fatalf("Recycled = 0 after %d buffers were given back", len(sent)-2)
			}
		})
	}
}
