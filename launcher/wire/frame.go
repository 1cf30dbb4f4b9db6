package wire

import (
	"encoding/binary"
	"sync/atomic"
)

// Frame header: length (uint32, big-endian, of the payload as sent) | kind
// (uint8) | flags (uint8).
const headerSize = 6

// Frame flags. At most one compression flag is set; any other bit is an
// error.
const (
	flagS2   = 1 << 0 // payload is one s2 block
	flagZstd = 1 << 1 // payload is one or more zstd frames
)

const (
	// DefaultMaxFrame is the default largest frame payload, after
	// decompression.
	DefaultMaxFrame = 64 << 20

	// maxFrameLimit caps Options.MaxFrame: lengths travel as uint32 and a
	// buffer of the size must be allocatable.
	maxFrameLimit = 1 << 30

	// DefaultThreshold is the default size below which payloads go plain.
	//
	// BenchmarkThreshold (a task batch of n bytes written, flushed and read
	// back through a bytes.Buffer; 2-core AMD EPYC VM, Go 1.26; ratio is
	// wire bytes over plain wire bytes) measured:
	//
	//	n        plain     s2               zstd
	//	256 B     42 ns    0.30 µs  0.47     5.1 µs  0.47
	//	1 KiB     68 ns    0.86 µs  0.35     9.9 µs  0.25
	//	4 KiB    195 ns    3.2 µs   0.32    22.9 µs  0.16
	//	16 KiB   1.1 µs   13.8 µs   0.31    52 µs    0.13
	//	64 KiB   3.3 µs   46 µs     0.30   152 µs    0.12
	//
	// and 100-byte frames cost 0.3 µs (s2) and 9.8 µs (zstd) to write
	// against 0.02 µs plain, for ratios of 0.71 and 0.83. zstd pays about
	// 5 µs per frame whatever its size (entropy tables), s2 about 0.2 µs.
	// Below 1 KiB neither saves more than a few hundred bytes; from 4 KiB on
	// both are within reach of their large-payload ratio (s2 0.29, zstd 0.11
	// at 1 MiB) and zstd's fixed cost is under a quarter of its total. s2
	// alone would pay from 1 KiB; 4 KiB suits both.
	DefaultThreshold = 4096

	// probeMin and probeSize: payloads of probeMin bytes or more are
	// compressed only when the s2 encoding of their first probeSize bytes
	// is an eighth smaller (Conn.compressible).
	probeMin  = 128 << 10
	probeSize = 64 << 10

	// zstdMaxFrame is the largest payload a zstd Conn compresses with zstd;
	// larger ones use s2 (see appendCompressed).
	zstdMaxFrame = 2 << 20

	// handshakeMaxFrame bounds every frame read or sent before the peer has
	// proved the secret.
	handshakeMaxFrame = 4 << 10

	// readBufferSize and writeBufferSize are the steady sizes of a Conn's
	// buffers. The read buffer grows beyond to hold the largest frame
	// seen; writes of frames larger than half the write buffer skip it.
	readBufferSize  = 64 << 10
	writeBufferSize = 64 << 10
)

// Options configure a Conn. Zero values mean defaults.
type Options struct {
	// MaxFrame is the largest frame payload accepted or sent, after
	// decompression; default DefaultMaxFrame, at most 1 GiB.
	MaxFrame int
	// Compression is how this end compresses what it sends (the receiver
	// decodes any mode).
	Compression Compression
	// Threshold: payloads shorter than this go plain; default
	// DefaultThreshold.
	Threshold int
	// Codecs, when not nil, supplies the zstd encoder and decoder (shared
	// by many Conns); otherwise a Conn builds its own on first use.
	Codecs *Codecs
	// Decode, when not nil, bounds the zstd frames of unverified size
	// that the Conns sharing it decode at once (DecodeLimit); nil leaves
	// each Conn its own one at a time.
	Decode *DecodeLimit
	// SkipMAC sends and expects frames without a MAC after the
	// handshake. Set it only when the stream underneath authenticates
	// every byte already (TLS), and on both ends: an end with a MAC and
	// one without fail each other's first frame.
	SkipMAC bool
}

func (o Options) withDefaults() Options {
	if o.MaxFrame <= 0 {
		o.MaxFrame = DefaultMaxFrame
	}
	o.MaxFrame = min(o.MaxFrame, maxFrameLimit)
	if o.Threshold <= 0 {
		o.Threshold = DefaultThreshold
	}
	if o.Compression >= compressionCount {
		o.Compression = CompressNone
	}
	if o.Codecs == nil {
		o.Codecs = NewCodecs(o.MaxFrame)
	}
	return o
}

// Stats counts a Conn's traffic since NewConn.
type Stats struct {
	FramesIn, FramesOut         uint64 // frames read and written
	PayloadIn, PayloadOut       uint64 // payload bytes before compression (after decompression)
	WireIn, WireOut             uint64 // bytes on the wire: headers and payloads as sent
	CompressedIn, CompressedOut uint64 // frames that travelled compressed
	// Recycled counts the read buffers given back with Recycle that a
	// later frame was read into.
	Recycled uint64
}

// counters are the live Stats of one direction, readable from any goroutine.
type counters struct {
	frames, payload, wire, compressed atomic.Uint64
}

func (c *counters) add(payload, wire int, compressed bool) {
	c.frames.Add(1)
	c.payload.Add(uint64(payload))
	c.wire.Add(uint64(headerSize + wire))
	if compressed {
		c.compressed.Add(1)
	}
}

func appendHeader(dst []byte, n int, kind Kind, flags byte) []byte {
	dst = binary.BigEndian.AppendUint32(dst, uint32(n))
	return append(dst, byte(kind), flags)
}
