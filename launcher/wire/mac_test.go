package wire

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"testing"
)

// switchRW is a Conn's stream whose ends can be swapped after the
// handshake, so that a test can take what one end sent and alter it
// before the other end reads it.
type switchRW struct {
	r io.Reader
	w io.Writer
}

func (s *switchRW) Read(p []byte) (int, error)  { return s.r.Read(p) }
func (s *switchRW) Write(p []byte) (int, error) { return s.w.Write(p) }

// handshake runs the handshake between client and server, the server's
// side in a goroutine.
func handshake(t *testing.T, client, server *Conn, sec Secret) {
	t.Helper()
	errc := make(chan error, 1)
	go func() {
		_, err := ServerHandshake(server, sec, Hello{Role: "server"})
		errc <- err
	}()
	if _, err := ClientHandshake(client, sec, Hello{Role: "client"}); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

// handshakenPair runs the handshake between two Conns and then points the
// client's writes at a buffer: what it sends after the handshake is what
// sent returns, and deliver hands bytes to the server's reads.
func handshakenPair(t *testing.T, opts Options) (client, server *Conn, sent *bytes.Buffer, deliver func([]byte)) {
	t.Helper()
	cr, sw := io.Pipe()
	sr, cw := io.Pipe()
	crw, srw := &switchRW{cr, cw}, &switchRW{sr, sw}
	client, server = NewConn(crw, opts), NewConn(srw, opts)
	handshake(t, client, server, testSecret(t, 5))
	sent = new(bytes.Buffer)
	crw.w = sent
	deliver = func(b []byte) { srw.r = bytes.NewReader(b) }
	return client, server, sent, deliver
}

type testFrame struct {
	kind    Kind
	payload []byte
}

// macFrames are frames of every path of the writer: small plain, small
// compressed, large plain (its own writev segment) and two-part.
func macFrames() []testFrame {
	big := make([]byte, 300<<10)
	for i := range big {
		big[i] = byte(i * 7919 >> 3)
	}
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 1000 {
		big[i] = byte(r.Uint32())
	}
	return []testFrame{
		{KindHeartbeat, nil},
		{KindSubmit, []byte("a small task")},
		{KindResult, repetitiveBytes(20 << 10)},
		{KindSubmit, big},
		{KindLog, []byte("after the large one")},
	}
}

func writeMACFrames(t *testing.T, c *Conn, frames []testFrame) {
	t.Helper()
	for i, f := range frames {
		var err error
		if i == 3 {
			err = c.WriteFrameParts(f.kind, f.payload[:10], f.payload[10:])
		} else {
			err = c.WriteFrame(f.kind, f.payload)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
}

// readAll reads frames until an error and returns them and the error.
func readAll(c *Conn, most int) ([]testFrame, error) {
	var got []testFrame
	for range most {
		k, p, err := c.ReadFrame()
		if err != nil {
			return got, err
		}
		got = append(got, testFrame{k, bytes.Clone(p)})
	}
	return got, nil
}

func TestFrameMACRoundTrip(t *testing.T) {
	for _, comp := range allCompressions {
		for _, skip := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/skip=%v", comp, skip), func(t *testing.T) {
				client, server, sent, deliver := handshakenPair(t, Options{Compression: comp, SkipMAC: skip})
				frames := macFrames()
				writeMACFrames(t, client, frames)
				// Each frame after the handshake carries a tag, unless skipped.
				if comp == CompressNone {
					want := 0
					for _, f := range frames {
						want += headerSize + len(f.payload)
						if !skip {
							want += tagSize
						}
					}
					if sent.Len() != want {
						t.Errorf("sent %d bytes after the handshake, want %d", sent.Len(), want)
					}
				}
				deliver(sent.Bytes())
				got, err := readAll(server, len(frames)+1)
				if err != io.EOF {
					t.Fatalf("after %d frames: %v, want EOF", len(got), err)
				}
				checkSentFrames(t, got, frames)
			})
		}
	}
}

func checkSentFrames(t *testing.T, got, want []testFrame) {
	t.Helper()
	if len(got) > len(want) {
		t.Fatalf("read %d frames, %d were sent", len(got), len(want))
	}
	for i := range got {
		if got[i].kind != want[i].kind || !bytes.Equal(got[i].payload, want[i].payload) {
			t.Fatalf("frame %d: read %s of %d bytes, sent %s of %d bytes", i, got[i].kind, len(got[i].payload), want[i].kind, len(want[i].payload))
		}
	}
}

// frameSpans splits a stream of MACed frames into whole frames.
func frameSpans(t *testing.T, b []byte) [][]byte {
	var spans [][]byte
	for len(b) > 0 {
		n := headerSize + int(uint32(b[0])<<24|uint32(b[1])<<16|uint32(b[2])<<8|uint32(b[3])) + tagSize
		spans = append(spans, b[:n])
		b = b[n:]
	}
	return spans
}

// TestFrameMACRefusesAlteredStreams alters what the client sent after the
// handshake in every way an on-path relay could (a flipped bit anywhere
// in a frame, frames dropped, replayed, swapped, injected, a frame sent
// back to its sender) and wants the reader to refuse the altered frame
// with ErrIntegrity (or, for a flipped length bit, any error) having returned only the frames before it, unchanged.
func TestFrameMACRefusesAlteredStreams(t *testing.T) {
	frames := macFrames()
	run := func(t *testing.T, alter func(stream []byte, spans [][]byte) (altered []byte, intact int), integrity bool) {
		t.Helper()
		client, server, sent, deliver := handshakenPair(t, Options{Compression: CompressS2})
		writeMACFrames(t, client, frames)
		stream := bytes.Clone(sent.Bytes())
		altered, intact := alter(stream, frameSpans(t, stream))
		deliver(altered)
		got, err := readAll(server, len(frames)+2)
		checkSentFrames(t, got, frames)
		if len(got) != intact {
			t.Errorf("read %d intact frames, want %d", len(got), intact)
		}
		switch {
		case err == nil || err == io.EOF:
			t.Fatalf("the altered stream was read to its end (%v)", err)
		case integrity && !errors.Is(err, ErrIntegrity):
			t.Fatalf("err = %v, want ErrIntegrity", err)
		}
	}
	// A flipped bit in each byte of the header, payload and tag of frame 1
	// (small), 2 (compressed) and 3 (large).
	for frame := 1; frame <= 3; frame++ {
		t.Run(fmt.Sprintf("flip/frame%d", frame), func(t *testing.T) {
			client, _, sent, _ := handshakenPair(t, Options{Compression: CompressS2})
			writeMACFrames(t, client, frames)
			stream := sent.Bytes()
			spans := frameSpans(t, stream)
			start := 0
			for _, s := range spans[:frame] {
				start += len(s)
			}
			n := len(spans[frame])
			positions := []int{0, 3, 4, 5, headerSize, headerSize + 1, n/2 + 1, n - tagSize - 1, n - tagSize, n - 1}
			for _, pos := range positions {
				t.Run(fmt.Sprint(pos), func(t *testing.T) {
					run(t, func(stream []byte, _ [][]byte) ([]byte, int) {
						stream[start+pos] ^= 0x10
						return stream, frame
					}, pos >= 4)
				})
			}
		})
	}
	join := func(spans ...[]byte) []byte { return bytes.Join(spans, nil) }
	t.Run("drop", func(t *testing.T) {
		run(t, func(_ []byte, s [][]byte) ([]byte, int) { return join(s[0], s[2], s[3]), 1 }, true)
	})
	t.Run("replay", func(t *testing.T) {
		run(t, func(_ []byte, s [][]byte) ([]byte, int) { return join(s[0], s[1], s[1], s[2]), 2 }, true)
	})
	t.Run("swap", func(t *testing.T) {
		run(t, func(_ []byte, s [][]byte) ([]byte, int) { return join(s[0], s[2], s[1]), 1 }, true)
	})
	t.Run("inject", func(t *testing.T) {
		run(t, func(_ []byte, s [][]byte) ([]byte, int) {
			forged := append(frameBytes(4, KindSubmit, 0, []byte("rm -")), make([]byte, tagSize)...)
			return join(s[0], s[1], forged, s[2]), 2
		}, true)
	})
	t.Run("inject without a tag", func(t *testing.T) {
		run(t, func(_ []byte, s [][]byte) ([]byte, int) {
			return join(s[0], frameBytes(4, KindSubmit, 0, []byte("rm -")), s[1]), 1
		}, true)
	})
	t.Run("reflect", func(t *testing.T) {
		// A frame the server sent, fed back to the server.
		client, server, sent, deliver := handshakenPair(t, Options{})
		writeMACFrames(t, client, frames[:1])
		var back bytes.Buffer
		server.w = &back
		if err := server.WriteFrame(KindSubmit, []byte("echo")); err != nil {
			t.Fatal(err)
		}
		if err := server.Flush(); err != nil {
			t.Fatal(err)
		}
		deliver(append(bytes.Clone(sent.Bytes()), back.Bytes()...))
		got, err := readAll(server, 3)
		checkSentFrames(t, got, frames[:1])
		if len(got) != 1 || !errors.Is(err, ErrIntegrity) {
			t.Fatalf("read %d frames, then %v; want 1 and ErrIntegrity", len(got), err)
		}
	})
	t.Run("other connection", func(t *testing.T) {
		// The same frames from another connection of the same job.
		client, _, sent, _ := handshakenPair(t, Options{})
		writeMACFrames(t, client, frames)
		_, server, _, deliver := handshakenPair(t, Options{})
		deliver(sent.Bytes())
		if _, err := readAll(server, 1); !errors.Is(err, ErrIntegrity) {
			t.Fatalf("a frame of another connection: %v, want ErrIntegrity", err)
		}
	})
}

// TestFrameMACAllocs: MACs cost no allocation per frame.
func TestFrameMACAllocs(t *testing.T) {
	client, server, sent, deliver := handshakenPair(t, Options{})
	payload := []byte("a result of some bytes")
	var stream bytes.Reader
	deliver(nil)
	server.r = &stream
	round := func() {
		sent.Reset()
		if err := client.WriteFrame(KindResult, payload); err != nil {
			t.Fatal(err)
		}
		if err := client.Flush(); err != nil {
			t.Fatal(err)
		}
		stream.Reset(sent.Bytes())
		if _, _, err := server.ReadFrame(); err != nil {
			t.Fatal(err)
		}
	}
	round()
	if n := testing.AllocsPerRun(100, round); n != 0 {
		t.Errorf("%v allocations per MACed frame written and read", n)
	}
}

// FuzzReadFrameMAC reads a valid MACed stream with one byte changed (by
// xor with a nonzero mask) at any position: every frame read must be one
// that was sent, unchanged and in order, and the altered frame is never
// returned.
func FuzzReadFrameMAC(f *testing.F) {
	f.Add([]byte("a task"), []byte{}, uint16(3), byte(1))
	f.Add(repetitiveBytes(5000), []byte("x"), uint16(40), byte(0x80))
	f.Add([]byte{}, repetitiveBytes(300), uint16(0), byte(0xff))
	codecs := NewCodecs(fuzzMaxFrame) // zstd's tables, built once
	f.Fuzz(func(t *testing.T, a, b []byte, pos uint16, mask byte) {
		if mask == 0 {
			mask = 1
		}
		if len(a) > fuzzMaxFrame || len(b) > fuzzMaxFrame {
			return // refused by WriteFrame, not what this target is about
		}
		client, server, sent, deliver := handshakenPair(t, Options{Compression: CompressZstd, Threshold: 64, MaxFrame: fuzzMaxFrame, Codecs: codecs})
		frames := []testFrame{{KindSubmit, a}, {KindResult, b}, {KindHeartbeat, nil}}
		writeMACFrames(t, client, frames)
		stream := bytes.Clone(sent.Bytes())
		at := int(pos) % len(stream)
		stream[at] ^= mask
		deliver(stream)
		got, err := readAll(server, len(frames)+1)
		checkSentFrames(t, got, frames)
		if err == nil || err == io.EOF {
			t.Fatalf("read %d frames and %v from a stream altered at byte %d", len(got), err, at)
		}
		// The altered frame, and none after it, was returned.
		end := 0
		for i, s := range frameSpans(t, sent.Bytes()) {
			end += len(s)
			if at < end {
				if len(got) != i {
					t.Fatalf("byte %d of frame %d altered, %d frames read", at, i, len(got))
				}
				break
			}
		}
	})
}

// TestFrameMACParts: the tag of a payload given as head and body is the
// standard GMAC of the joined payload (crypto/cipher's), for heads short
// and long, aligned to GHASH's blocks or not, and bodies of every size
// around the block and the sumParts limits; and check accepts it.
func TestFrameMACParts(t *testing.T) {
	key := bytes.Repeat([]byte{7}, 32)
	payload := make([]byte, 300001)
	r := rand.New(rand.NewPCG(3, 4))
	for i := range payload {
		payload[i] = byte(r.Uint32())
	}
	for _, n := range []int{0, 1, 100, 2 * maxPartsHead, 2*maxPartsHead + 1, 4096, 64<<10 + 5, len(payload)} {
		for _, split := range []int{0, 1, 10, 15, 16, 17, 100, maxPartsHead, maxPartsHead + 1, n - 1, n} {
			if split < 0 || split > n {
				continue
			}
			p := payload[:n]
			h := appendHeader(nil, n, KindResult, 0)
			parts, checker := mustFrameMAC(t, key), mustFrameMAC(t, key)
			for seq := range 2 { // the nonce moves on
				tag, err := parts.sum(h, p[:split], p[split:])
				if err != nil {
					t.Fatal(err)
				}
				want := gmac(t, key, h, uint64(seq), p)
				if !bytes.Equal(tag, want) {
					t.Fatalf("%d bytes split at %d, frame %d: tag %x, GMAC of the joined payload %x", n, split, seq, tag, want)
				}
				if err := checker.check(h, p, tag); err != nil {
					t.Fatalf("%d bytes split at %d: check refused the frame as sent: %v", n, split, err)
				}
			}
		}
	}
}

// gmac is the frame MAC as protocol.md states it, from crypto/cipher.
func gmac(t testing.TB, key, h []byte, seq uint64, p []byte) []byte {
	t.Helper()
	block, err := aes.NewCipher(key)
	if err != nil {
		t.Fatal(err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		t.Fatal(err)
	}
	nonce := append(bytes.Clone(h[:headerSize]), binary.BigEndian.AppendUint64(nil, seq)[2:]...)
	return aead.Seal(nil, nonce, nil, p)
}

func mustFrameMAC(t testing.TB, key []byte) *frameMAC {
	t.Helper()
	m, err := newFrameMAC(key)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// FuzzFrameMACParts: sumParts's arithmetic gives the standard GMAC of the
// joined payload for any key, length and split.
func FuzzFrameMACParts(f *testing.F) {
	f.Add([]byte("key"), uint32(1000), uint16(12), uint64(0))
	f.Add([]byte{0xff}, uint32(70000), uint16(16), uint64(1<<47))
	f.Add([]byte{}, uint32(513), uint16(255), uint64(3))
	f.Fuzz(func(t *testing.T, keySeed []byte, size uint32, split uint16, seq uint64) {
		n := int(size % (200 << 10))
		s := min(int(split), n)
		key := make([]byte, 32)
		copy(key, keySeed)
		payload := make([]byte, n)
		r := rand.New(rand.NewPCG(uint64(size), uint64(split)))
		for i := range payload {
			payload[i] = byte(r.Uint32())
		}
		m := mustFrameMAC(t, key)
		m.seq = seq % (maxMACSeq + 1)
		h := appendHeader(nil, n, KindSubmit, 0)
		tag, err := m.sum(h, payload[:s], payload[s:])
		if err != nil {
			t.Fatal(err)
		}
		if want := gmac(t, key, h, seq%(maxMACSeq+1), payload); !bytes.Equal(tag, want) {
			t.Fatalf("%d bytes split at %d: tag %x, GMAC of the joined payload %x", n, s, tag, want)
		}
	})
}

// FuzzReadFrameMACParts writes a large payload in two parts split
// anywhere (as a relay does), between two small frames, and changes one
// byte of the stream unless mask is 0: the unchanged stream must read back
// whole, and a changed one must be refused at the changed frame, no frame
// after it returned.
func FuzzReadFrameMACParts(f *testing.F) {
	f.Add(uint32(1), uint32(10), uint32(0), byte(0))
	f.Add(uint32(100007), uint32(12), uint32(60000), byte(1))
	f.Add(uint32(65536), uint32(0), uint32(3*65536), byte(0x80))
	f.Fuzz(func(t *testing.T, size, split, pos uint32, mask byte) {
		n := writeBufferSize/2 + 1 + int(size%(200<<10))
		payload := make([]byte, n)
		r := rand.New(rand.NewPCG(uint64(size), 5))
		for i := range payload {
			payload[i] = byte(r.Uint32())
		}
		s := int(split) % (maxPartsHead + 2) // a relay's head is short; a longer one is joined
		client, server, sent, deliver := handshakenPair(t, Options{})
		frames := []testFrame{{KindLog, []byte("before")}, {KindSubmit, payload}, {KindHeartbeat, nil}}
		if err := client.WriteFrame(KindLog, frames[0].payload); err != nil {
			t.Fatal(err)
		}
		if err := client.WriteFrameParts(KindSubmit, payload[:s], payload[s:]); err != nil {
			t.Fatal(err)
		}
		if err := client.WriteFrame(KindHeartbeat, nil); err != nil {
			t.Fatal(err)
		}
		if err := client.Flush(); err != nil {
			t.Fatal(err)
		}
		stream := bytes.Clone(sent.Bytes())
		at := int(pos) % len(stream)
		if mask != 0 {
			stream[at] ^= mask
		}
		deliver(stream)
		got, err := readAll(server, len(frames)+1)
		checkSentFrames(t, got, frames)
		if mask == 0 {
			if len(got) != len(frames) || err != io.EOF {
				t.Fatalf("the stream as sent: read %d of %d frames, then %v", len(got), len(frames), err)
			}
			return
		}
		if err == nil || err == io.EOF {
			t.Fatalf("read %d frames and %v from a stream altered at byte %d", len(got), err, at)
		}
		end := 0
		for i, sp := range frameSpans(t, sent.Bytes()) {
			end += len(sp)
			if at < end {
				if len(got) != i {
					t.Fatalf("byte %d of frame %d altered, %d frames read", at, i, len(got))
				}
				break
			}
		}
	})
}
