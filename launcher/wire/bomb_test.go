package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"
	"testing/synctest"

	"github.com/klauspost/compress/zstd"
)

// streamedZstd compresses n zero bytes with the streaming encoder: a frame
// that does not declare its size, of compressed blocks.
func streamedZstd(t testing.TB, n int) []byte {
	var buf bytes.Buffer
	w, err := zstd.NewWriter(&buf, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderCRC(false))
	if err != nil {
		t.Fatal(err)
	}
	zero := make([]byte, 1<<20)
	for n > 0 {
		k := min(n, len(zero))
		w.Write(zero[:k])
		n -= k
	}
	w.Close()
	return buf.Bytes()
}

// rleZstd is a frame of RLE blocks of 128 KiB, 4 bytes each, that expand
// to n bytes, no size declared.
func rleZstd(n int) []byte {
	b := []byte{0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x00} // FHD: no FCS; window 1 KiB
	b[5] = 7 << 3                                   // window 128 KiB
	for n > 0 {
		size := min(n, zstdMaxBlock)
		n -= size
		hdr := uint32(size)<<3 | 1<<1
		if n == 0 {
			hdr |= 1
		}
		b = append(b, byte(hdr), byte(hdr>>8), byte(hdr>>16), 'x')
	}
	return b
}

// liarZstd is a frame that declares fcs bytes and holds 3000.
func liarZstd(t testing.TB, fcs uint64) []byte {
	enc, _ := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderCRC(false))
	honest := enc.EncodeAll(bytes.Repeat([]byte("abc"), 1000), nil)
	var h zstd.Header
	if err := h.Decode(honest); err != nil {
		t.Fatal(err)
	}
	out := []byte{0x28, 0xb5, 0x2f, 0xfd, 3<<6 | 1<<5} // 8-byte FCS, single segment
	out = binary.LittleEndian.AppendUint64(out, fcs)
	return append(out, honest[h.HeaderSize:]...)
}

// readAllocated reads one frame of payload p (zstd) on a Conn of limit
// maxFrame and returns the error and the bytes allocated meanwhile.
func readAllocated(p []byte, maxFrame int) (uint64, error) {
	frame := frameBytes(uint32(len(p)), KindSubmit, flagZstd, p)
	c := NewConn(readWriter{bytes.NewReader(frame), io.Discard}, Options{MaxFrame: maxFrame})
	c.codecs.decoder() // built beforehand: not counted
	var m1, m2 runtimeMem
	m1.read()
	_, _, err := c.ReadFrame()
	m2.read()
	return m2.total - m1.total, err
}

// TestZstdBombsAllocateLittle: frames that expand (or claim to expand)
// past the limit are refused having allocated at most 2.5 times the limit
// (DecodeAll growing its own buffer took six times), and
// little more than the read buffer for those whose blocks show it
// before decoding.
func TestZstdBombsAllocateLittle(t *testing.T) {
	const limit = 8 << 20
	for _, tc := range []struct {
		name    string
		payload []byte
		want    error
		most    uint64
	}{
		{"streamed zeros", streamedZstd(t, 8*limit), ErrFrameTooLarge, limit * 5 / 2},
		{"RLE blocks", rleZstd(1 << 30), ErrFrameTooLarge, 128 << 10},
		{"declares the limit, holds 3000 bytes", liarZstd(t, limit), ErrBadFrame, 128 << 10},
		{"declares past the limit", liarZstd(t, 1<<40), ErrFrameTooLarge, 128 << 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := readAllocated(tc.payload, limit)
			if !errors.Is(err, tc.want) {
				t.Fatalf("ReadFrame of a %d-byte frame: %v, want %v", len(tc.payload), err, tc.want)
			}
			t.Logf("%d-byte frame: %v, %d KiB allocated", len(tc.payload), err, got>>10)
			if got > tc.most {
				t.Fatalf("refusing a %d-byte frame allocated %d KiB, want at most %d KiB", len(tc.payload), got>>10, tc.most>>10)
			}
		})
	}
	// Frames as this package sends them, and streamed ones within the
	// limit, still decode.
	for _, n := range []int{100, 300 << 10, limit} {
		p := streamedZstd(t, n)
		frame := frameBytes(uint32(len(p)), KindSubmit, flagZstd, p)
		c := NewConn(readWriter{bytes.NewReader(frame), io.Discard}, Options{MaxFrame: limit})
		if _, got, err := c.ReadFrame(); err != nil || len(got) != n {
			t.Fatalf("streamed frame of %d bytes: %d bytes, %v", n, len(got), err)
		}
	}
	// More than one frame in a payload is refused.
	two := append(streamedZstd(t, 10), streamedZstd(t, 10)...)
	if _, err := readAllocated(two, limit); !errors.Is(err, ErrBadFrame) {
		t.Fatalf("two zstd frames in one payload: %v", err)
	}
}

// TestDecodeLimit: a frame that may expand far waits for a slot of the
// DecodeLimit its Conn shares; frames of bounded expansion do not.
func TestDecodeLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dl := NewDecodeLimit(1)
		var bomb, small bytes.Buffer
		wc := NewConn(readWriter{nil, &small}, Options{Compression: CompressZstd})
		if err := wc.WriteFrame(KindSubmit, repetitiveBytes(64<<10)); err != nil || wc.Flush() != nil {
			t.Fatal(err)
		}
		p := streamedZstd(t, 4<<20)
		bomb.Write(frameBytes(uint32(len(p)), KindSubmit, flagZstd, p))
		dl.acquire() // the only slot is taken
		done := make(chan error, 2)
		for _, in := range []*bytes.Buffer{&small, &bomb} {
			go func() {
				c := NewConn(readWriter{in, io.Discard}, Options{Decode: dl})
				_, _, err := c.ReadFrame()
				done <- err
			}()
		}
		if err := <-done; err != nil {
			t.Fatalf("frame of bounded expansion: %v", err)
		}
		synctest.Wait()
		select {
		case err := <-done:
			t.Fatalf("a far-expanding frame decoded without a slot: %v", err)
		default:
		}
		dl.release()
		if err := <-done; err != nil {
			t.Fatalf("far-expanding frame once the slot is free: %v", err)
		}
	})
}
