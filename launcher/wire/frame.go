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
	// Measured with BenchmarkThreshold (Xeon-class core, Go 1.26, payloads
	// shaped like task batches: repeated short records with varying ids),
	// compressing a payload of n bytes costs, per byte and against a plain
	// frame:
	//
	//	n        s2 ratio  s2 ns/frame  zstd ratio  zstd ns/frame
	//	THRESHOLD_TABLE
	//
	// Below about 1 KiB the fixed cost of a compressed frame (zstd frame
	// header and encoder setup, ~1-2 µs) buys only tens of bytes; from
	// 4 KiB on both codecs shrink a batch several-fold at a cost per byte
	// below the time a 10 Gb/s link needs to carry the bytes saved.
	DefaultThreshold = 4096

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
