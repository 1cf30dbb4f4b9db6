package wire

import (
	"errors"
	"fmt"
	"sync"

	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
)

// Compression selects how a Conn compresses the frames it sends. A receiver
// decodes whatever the sender chose, so both ends need not agree.
type Compression uint8

// Compression modes. The zero value sends every frame plain.
const (
	CompressNone Compression = iota
	CompressS2
	CompressZstd
	compressionCount
)

var compressionNames = [...]string{
	CompressNone: "none",
	CompressS2:   "s2",
	CompressZstd: "zstd",
}

func (c Compression) String() string {
	if c < compressionCount {
		return compressionNames[c]
	}
	return fmt.Sprintf("compression(%d)", uint8(c))
}

// MarshalText implements encoding.TextMarshaler.
func (c Compression) MarshalText() ([]byte, error) {
	if c >= compressionCount {
		return nil, fmt.Errorf("wire: unknown compression %d", uint8(c))
	}
	return []byte(compressionNames[c]), nil
}

// UnmarshalText implements encoding.TextUnmarshaler: "none", "s2" or "zstd".
func (c *Compression) UnmarshalText(b []byte) error {
	for i, name := range compressionNames {
		if string(b) == name {
			*c = Compression(i)
			return nil
		}
	}
	return fmt.Errorf("unknown compression %q: want none, s2 or zstd", b)
}

// Codecs holds the zstd encoder and decoder that Conns use. Both are built
// on first use. A Codecs is safe for concurrent use, so one may be shared by
// every Conn of a process (Options.Codecs); a Conn without one builds its
// own. The decoder refuses to produce more than the maxFrame given to
// NewCodecs, so Conns sharing it should not use a larger MaxFrame.
type Codecs struct {
	maxFrame int

	encOnce sync.Once
	enc     *zstd.Encoder
	encErr  error

	decOnce sync.Once
	dec     *zstd.Decoder
	decErr  error
}

// NewCodecs returns codecs that decode at most maxFrame bytes per frame
// (DefaultMaxFrame when maxFrame <= 0).
func NewCodecs(maxFrame int) *Codecs {
	if maxFrame <= 0 {
		maxFrame = DefaultMaxFrame
	}
	return &Codecs{maxFrame: maxFrame}
}

func (z *Codecs) encoder() (*zstd.Encoder, error) {
	z.encOnce.Do(func() {
		// SpeedFastest: on 1 MiB of task batches it ran twice as fast as
		// SpeedDefault (3.0 against 6.4 ms) and compressed a little better
		// (0.113 against 0.124 of the input). No frame checksum: TCP
		// (and TLS) already guard the bytes, and the xxhash of every
		// frame, computed by the sender and checked by the receiver, was
		// an eighth of the CPU time of the payload workload
		// (BenchmarkWorkloads/payload). Frames with a checksum still
		// decode and are still checked.
		z.enc, z.encErr = zstd.NewWriter(nil,
			zstd.WithEncoderCRC(false),
			zstd.WithEncoderLevel(zstd.SpeedFastest),
			zstd.WithEncoderConcurrency(1),
			zstd.WithLowerEncoderMem(true))
	})
	return z.enc, z.encErr
}

func (z *Codecs) decoder() (*zstd.Decoder, error) {
	z.decOnce.Do(func() {
		// DecodeAllCapLimit: DecodeAll writes at most cap(dst) bytes,
		// and neither allocates nor trusts a frame's declared size past
		// it (decodeZstd).
		z.dec, z.decErr = zstd.NewReader(nil,
			zstd.WithDecoderMaxMemory(uint64(z.maxFrame)),
			zstd.WithDecoderLowmem(true),
			zstd.WithDecoderConcurrency(1),
			zstd.WithDecodeAllCapLimit(true))
	})
	return z.dec, z.decErr
}

// DecodeLimit bounds how many Conns sharing it (through Options.Decode)
// decode a zstd frame of unverified size at once: a frame that does not
// declare its size, or declares more than zstdFastRatio times its own. A
// Conn waits for a slot before it decodes such a frame, so peers sending
// decompression bombs at once cost at most n decodings of about two
// MaxFrame each, however many they are. Other frames, whose size is
// bounded by the bytes received, need no slot.
type DecodeLimit struct {
	slots chan struct{}
}

// NewDecodeLimit returns a limit of n decodings at once (1 when n < 1).
func NewDecodeLimit(n int) *DecodeLimit {
	return &DecodeLimit{slots: make(chan struct{}, max(1, n))}
}

// DefaultDecodeSlots is the DecodeLimit a launcher shares between the
// connections of one rank.
const DefaultDecodeSlots = 2

func (l *DecodeLimit) acquire() {
	if l != nil {
		l.slots <- struct{}{}
	}
}

func (l *DecodeLimit) release() {
	if l != nil {
		<-l.slots
	}
}

// zstd payloads are decoded in one call into a buffer sized before
// decoding by what the frame can hold, not by what it claims: the block
// headers are walked first (zstdBound), which gives the exact output of
// raw and RLE blocks and at most zstdMaxBlock per compressed block. A
// frame whose blocks exceed the limit without any compressed block (the
// usual bomb: RLE blocks of 128 KiB from 4 bytes each) is refused before
// anything is allocated; a declared content size above what its blocks can
// hold is refused as malformed; otherwise the buffer is the declared size,
// or the bound, at most the limit. The decoder (DecodeAllCapLimit) never
// writes past the buffer. A frame that may expand more than zstdFastRatio
// times, or beyond zstdFastMin, first takes a slot of the Conn's
// DecodeLimit.
const (
	zstdFastMin   = 256 << 10
	zstdFastRatio = 16
	zstdMaxBlock  = 128 << 10
)

// decodeZstd decodes the zstd payload src (one frame), reusing dst when it
// is large enough, refusing more than limit bytes of output.
func decodeZstd(dec *zstd.Decoder, dl *DecodeLimit, dst, src []byte, limit int) ([]byte, error) {
	var h zstd.Header
	if err := h.Decode(src); err != nil {
		return dst, fmt.Errorf("%w: zstd: %v", ErrBadFrame, err)
	}
	if h.Skippable {
		return dst, fmt.Errorf("%w: zstd: skippable frame", ErrBadFrame)
	}
	bound, exact, err := zstdBound(src[h.HeaderSize:], h.HasCheckSum)
	if err != nil {
		return dst, err
	}
	n := bound
	if h.HasFCS {
		switch {
		case h.FrameContentSize > uint64(limit):
			return dst, fmt.Errorf("%w: zstd payload declares %d bytes, limit %d", ErrFrameTooLarge, h.FrameContentSize, limit)
		case h.FrameContentSize > bound || exact && h.FrameContentSize != bound:
			return dst, fmt.Errorf("%w: zstd payload declares %d bytes, its blocks hold %d", ErrBadFrame, h.FrameContentSize, bound)
		}
		n = h.FrameContentSize
	}
	if exact && n > uint64(limit) {
		return dst, fmt.Errorf("%w: zstd payload decodes to %d bytes, limit %d", ErrFrameTooLarge, n, limit)
	}
	size := int(min(n, uint64(limit)))
	if size > max(zstdFastMin, zstdFastRatio*len(src)) {
		dl.acquire()
		defer dl.release()
	}
	if cap(dst) < size {
		dst = nil // not kept alive across the next allocation
		dst = make([]byte, 0, size)
	}
	out, err := dec.DecodeAll(src, dst[:0:size])
	switch {
	case err == nil:
		return out, nil
	case errors.Is(err, zstd.ErrDecoderSizeExceeded) || errors.Is(err, zstd.ErrWindowSizeExceeded):
		return dst, fmt.Errorf("%w: zstd payload decodes to more than %d bytes", ErrFrameTooLarge, size)
	}
	return dst, fmt.Errorf("%w: zstd: %v", ErrBadFrame, err)
}

// zstdBound walks the blocks of a zstd frame (b: what follows its header)
// and returns a bound on their output: exact (and exact is true) when the
// frame has no compressed block. Anything after the frame is an error: a
// payload is one zstd frame.
func zstdBound(b []byte, checksum bool) (bound uint64, exact bool, err error) {
	exact = true
	for {
		if len(b) < 3 {
			return 0, false, fmt.Errorf("%w: zstd: truncated block header", ErrBadFrame)
		}
		hdr := uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16
		b = b[3:]
		last, typ, size := hdr&1 != 0, (hdr>>1)&3, int(hdr>>3)
		var in int
		switch typ {
		case 0: // raw
			in, bound = size, bound+uint64(size)
		case 1: // RLE
			in, bound = 1, bound+uint64(size)
		case 2: // compressed
			in, bound, exact = size, bound+zstdMaxBlock, false
		default:
			return 0, false, fmt.Errorf("%w: zstd: reserved block type", ErrBadFrame)
		}
		if size > zstdMaxBlock || in > len(b) {
			return 0, false, fmt.Errorf("%w: zstd: block of %d bytes, %d left", ErrBadFrame, size, len(b))
		}
		b = b[in:]
		if last {
			break
		}
	}
	if checksum {
		if len(b) < 4 {
			return 0, false, fmt.Errorf("%w: zstd: truncated checksum", ErrBadFrame)
		}
		b = b[4:]
	}
	if len(b) != 0 {
		return 0, false, fmt.Errorf("%w: zstd: %d bytes after the frame", ErrBadFrame, len(b))
	}
	return bound, exact, nil
}

// appendS2 appends the s2 block encoding of p to dst. s2.Encode rather than
// EncodeBetter: on task batches it is 2.2 times as fast for a ratio within
// 3% (1 MiB: 0.287 against 0.280).
func appendS2(dst, p []byte) []byte {
	n := s2.MaxEncodedLen(len(p))
	if n < 0 {
		return nil
	}
	if cap(dst)-len(dst) < n {
		grown := make([]byte, len(dst), len(dst)+n)
		copy(grown, dst)
		dst = grown
	}
	out := s2.Encode(dst[len(dst):len(dst)+n], p)
	return dst[:len(dst)+len(out)]
}

// decodeS2 decodes the s2 block src into dst (reused when large enough),
// refusing before decoding anything that would exceed limit bytes.
func decodeS2(dst, src []byte, limit int) ([]byte, error) {
	n, err := s2.DecodedLen(src)
	if err != nil {
		return dst, fmt.Errorf("%w: s2: %v", ErrBadFrame, err)
	}
	if n > limit {
		return dst, fmt.Errorf("%w: s2 payload decodes to %d bytes, limit %d", ErrFrameTooLarge, n, limit)
	}
	if cap(dst) < n {
		dst = make([]byte, n)
	}
	out, err := s2.Decode(dst[:cap(dst)], src)
	if err != nil {
		return dst, fmt.Errorf("%w: s2: %v", ErrBadFrame, err)
	}
	return out, nil
}
