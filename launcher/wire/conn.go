package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
)

// Conn reads and writes frames on an io.ReadWriter. One goroutine may read
// and one other may write at the same time; it is not safe for several
// concurrent writers (or readers). Stats may be called from any goroutine.
//
// Deadlines are the caller's business: set them on the net.Conn underneath
// (a deadline on the handshake, then heartbeats). A read deadline that
// expires, even inside a frame, is no damage: ReadFrame returns an error
// wrapping os.ErrDeadlineExceeded and, called again, resumes where the
// read stopped (a client interrupts its reader this way to take over the
// socket). After any other error than io.EOF from ReadFrame, or any error
// from WriteFrame or Flush, the stream is out of step and the caller must
// close the connection.
type Conn struct {
	r io.Reader
	w io.Writer

	maxFrame  int
	threshold int
	comp      Compression
	codecs    *Codecs
	decode    *DecodeLimit
	skipMAC   bool

	// Read side, owned by the reading goroutine. limit, plainOnly and
	// bufSize change only during the handshake, before the read and write
	// goroutines start.
	limit     int  // largest payload accepted now
	plainOnly bool // refuse compressed frames (handshake)
	bufSize   int  // least size of rbuf
	rbuf      []byte
	rpos      int // rbuf[rpos:rend] is read but not yet consumed
	rend      int
	rerr      error     // error from the reader, returned once the buffer runs dry
	dbuf      []byte    // decompressed payloads
	decoded   bool      // the last payload returned is in dbuf, not rbuf
	rmac      *frameMAC // nil before the handshake ends, and with SkipMAC
	in        counters
	// spare holds read buffers given back with Recycle, from any
	// goroutine; recycled counts those read into again.
	spare    spareBuffers
	recycled atomic.Uint64

	// Keep the two sides' fields off each other's cache lines.
	_ [128]byte

	// Write side, owned by the writing goroutine.
	wbuf  []byte
	werr  error
	vec   [][]byte
	bufs  net.Buffers // vec, consumed by a writev
	probe []byte      // s2 encoding of a payload's first probeSize bytes
	join  []byte      // WriteFrameParts: head and body made contiguous
	wmac  *frameMAC   // nil before the handshake ends, and with SkipMAC
	out   counters
}

// NewConn returns a Conn reading and writing frames on rw. It allocates its
// buffers on first use, small ones during the handshake.
func NewConn(rw io.ReadWriter, opts Options) *Conn {
	opts = opts.withDefaults()
	return &Conn{
		r:         rw,
		w:         rw,
		maxFrame:  opts.MaxFrame,
		threshold: opts.Threshold,
		comp:      opts.Compression,
		codecs:    opts.Codecs,
		decode:    opts.Decode,
		skipMAC:   opts.SkipMAC,
		limit:     opts.MaxFrame,
		bufSize:   readBufferSize,
	}
}

// Stats returns the traffic counts so far.
func (c *Conn) Stats() Stats {
	return Stats{
		FramesIn:      c.in.frames.Load(),
		FramesOut:     c.out.frames.Load(),
		PayloadIn:     c.in.payload.Load(),
		PayloadOut:    c.out.payload.Load(),
		WireIn:        c.in.wire.Load(),
		WireOut:       c.out.wire.Load(),
		CompressedIn:  c.in.compressed.Load(),
		CompressedOut: c.out.compressed.Load(),
		Recycled:      c.recycled.Load(),
	}
}

// WriteFrame appends a frame to the write buffer, compressing payloads of
// Threshold bytes or more when that makes them smaller. It writes to the
// connection only when the buffer fills or the payload is large; call Flush
// to send what is buffered. It does not retain payload.
func (c *Conn) WriteFrame(kind Kind, payload []byte) error {
	if c.werr != nil {
		return c.werr
	}
	if !kind.Valid() {
		return fmt.Errorf("%w: cannot send kind %d", ErrBadFrame, uint8(kind))
	}
	if len(payload) > c.maxFrame {
		return fmt.Errorf("%w: %s payload of %d bytes, limit %d", ErrFrameTooLarge, kind, len(payload), c.maxFrame)
	}
	if cap(c.wbuf) < writeBufferSize {
		c.wbuf = append(make([]byte, 0, writeBufferSize), c.wbuf...)
	}
	if c.comp != CompressNone && len(payload) >= c.threshold && c.compressible(payload) {
		done, err := c.appendCompressed(kind, payload)
		if done || err != nil {
			return err
		}
	}
	return c.writePlain(kind, payload)
}

// WriteFrameParts writes one frame whose payload is head followed by body,
// as WriteFrame(kind, head+body) would, without copying a large plain body
// into the write buffer: it goes to the connection as its own writev
// segment. A relay forwards a large task record this way, its record
// header as head and the body still in the received frame's buffer (the
// relay's copy of each MiB was a tenth of the payload workload's CPU time,
// BenchmarkWorkloads/payload); after the handshake the frame MAC takes
// head and body apart too (frameMAC.sum). It does not retain head or body.
func (c *Conn) WriteFrameParts(kind Kind, head, body []byte) error {
	n := len(head) + len(body)
	if c.werr != nil || len(body) <= writeBufferSize/2 || n > c.maxFrame || !kind.Valid() ||
		(c.comp != CompressNone && n >= c.threshold && c.compressible(body)) {
		// Small, compressible or refused: the ordinary path on one
		// contiguous payload. The join buffer is kept up to a few
		// batches: dropped after each large record, as it once was,
		// every compressible MiB a relay forwarded was copied into
		// fresh memory, and the page faults of that copy cost the
		// server more than the copy itself (perf of the payload
		// workload's repetitive variant, 2-core AMD EPYC VM, Go 1.26).
		c.join = append(append(c.join[:0], head...), body...)
		err := c.WriteFrame(kind, c.join)
		if cap(c.join) > maxJoin {
			c.join = nil
		}
		return err
	}
	if cap(c.wbuf) < writeBufferSize {
		c.wbuf = append(make([]byte, 0, writeBufferSize), c.wbuf...)
	}
	start := len(c.wbuf)
	c.wbuf = appendHeader(c.wbuf, n, kind, 0)
	var tag []byte
	if c.wmac != nil {
		// The frame MAC takes head and body apart (frameMAC.sum), so
		// the body is not copied for it either.
		var err error
		if tag, err = c.wmac.sum(c.wbuf[start:], head, body); err != nil {
			c.wbuf = c.wbuf[:start]
			return err
		}
	}
	c.wbuf = append(c.wbuf, head...)
	c.out.add(n, n+len(tag), false)
	return c.writeWith(body, tag)
}

// maxJoin bounds the buffer a Conn keeps to join a compressible record's
// head and body (WriteFrameParts).
const maxJoin = 2 * MaxBatch

// writeWith writes what is buffered followed by body and tag in one
// writev, and empties the buffer; it does not retain body.
func (c *Conn) writeWith(body, tag []byte) error {
	c.vec = append(c.vec[:0], c.wbuf, body)
	if len(tag) > 0 {
		c.vec = append(c.vec, tag)
	}
	c.bufs = c.vec
	_, err := c.bufs.WriteTo(c.w)
	clear(c.vec)
	c.wbuf = c.wbuf[:0]
	if err != nil {
		c.werr = fmt.Errorf("wire: write: %w", err)
	}
	return c.werr
}

// compressible reports whether a payload is worth compressing. Payloads of
// probeMin bytes or more are probed first: the s2 encoding of their first
// probeSize bytes must shrink them by an eighth, or the whole payload goes
// plain. On 1 MiB of random bytes (BenchmarkLargeCodecs, 2-core AMD EPYC
// VM, Go 1.26) zstd took 0.82 ms to save nothing, s2 36 µs and the probe
// 5 µs; a raw loopback hop moves 1 MiB in about 0.3 to 1 ms, so zstd on an
// incompressible MiB more than doubled its cost and the probe is noise.
func (c *Conn) compressible(p []byte) bool {
	if len(p) < probeMin {
		return true
	}
	c.probe = appendS2(c.probe[:0], p[:probeSize])
	return len(c.probe) < probeSize-probeSize/8
}

// writePlain buffers an uncompressed frame; a large one is written at once
// together with what is buffered (one writev on a net.Conn).
func (c *Conn) writePlain(kind Kind, p []byte) error {
	if len(c.wbuf)+headerSize+len(p)+c.tagLen() > writeBufferSize {
		if len(p) > writeBufferSize/2 {
			start := len(c.wbuf)
			c.wbuf = appendHeader(c.wbuf, len(p), kind, 0)
			var tag []byte
			if c.wmac != nil {
				var err error
				if tag, err = c.wmac.sum(c.wbuf[start:], p, nil); err != nil {
					c.wbuf = c.wbuf[:start]
					return err
				}
			}
			c.out.add(len(p), len(p)+len(tag), false)
			return c.writeWith(p, tag)
		}
		if err := c.Flush(); err != nil {
			return err
		}
	}
	start := len(c.wbuf)
	c.wbuf = appendHeader(c.wbuf, len(p), kind, 0)
	c.wbuf = append(c.wbuf, p...)
	if err := c.appendTag(start); err != nil {
		return err
	}
	c.out.add(len(p), len(p)+c.tagLen(), false)
	return nil
}

// tagLen is the length of the MAC each frame sent now carries.
func (c *Conn) tagLen() int {
	if c.wmac == nil {
		return 0
	}
	return tagSize
}

// appendTag appends the MAC of the frame at wbuf[start:], when frames
// carry one; on error it drops the frame.
func (c *Conn) appendTag(start int) error {
	if c.wmac == nil {
		return nil
	}
	tag, err := c.wmac.sum(c.wbuf[start:start+headerSize], c.wbuf[start+headerSize:], nil)
	if err != nil {
		c.wbuf = c.wbuf[:start]
		return err
	}
	c.wbuf = append(c.wbuf, tag...)
	return nil
}

// appendCompressed buffers a compressed frame and reports whether it did:
// a payload that does not shrink is left for writePlain.
func (c *Conn) appendCompressed(kind Kind, p []byte) (bool, error) {
	start := len(c.wbuf)
	c.wbuf = appendHeader(c.wbuf, 0, kind, 0)
	var flags byte
	switch c.comp {
	case CompressS2:
		c.wbuf, flags = appendS2(c.wbuf, p), flagS2
	case CompressZstd:
		if len(p) > zstdMaxFrame {
			// One zstd EncodeAll call over many MiB is slow: the encoder
			// (WithLowerEncoderMem) shifts its history at every block, and
			// 16 MiB took 47 ms against 3.2 ms for 16 calls of 1 MiB
			// (BenchmarkZstdBatchSize). Batches are cut near MaxBatch, so
			// only single huge records land here; s2 stays linear.
			c.wbuf, flags = appendS2(c.wbuf, p), flagS2
			break
		}
		enc, err := c.codecs.encoder()
		if err != nil {
			c.wbuf = c.wbuf[:start]
			return false, fmt.Errorf("wire: zstd encoder: %w", err)
		}
		c.wbuf, flags = enc.EncodeAll(p, c.wbuf), flagZstd
	}
	n := len(c.wbuf) - start - headerSize
	if n >= len(p) {
		c.wbuf = c.wbuf[:start]
		return false, nil
	}
	appendHeader(c.wbuf[start:start], n, kind, flags)
	if err := c.appendTag(start); err != nil {
		return true, err
	}
	c.out.add(len(p), n+c.tagLen(), true)
	if len(c.wbuf) >= writeBufferSize {
		return true, c.Flush()
	}
	return true, nil
}

// Flush writes the buffered frames in one write.
func (c *Conn) Flush() error {
	if c.werr != nil {
		return c.werr
	}
	if len(c.wbuf) == 0 {
		return nil
	}
	n, err := c.w.Write(c.wbuf)
	if err == nil && n < len(c.wbuf) {
		err = io.ErrShortWrite
	}
	c.wbuf = c.wbuf[:0]
	if err != nil {
		c.werr = fmt.Errorf("wire: write: %w", err)
	}
	return c.werr
}

// ReadFrame reads the next frame and returns its kind and payload,
// decompressed. The payload is valid until the next ReadFrame. At the end of
// the stream, between frames, it returns io.EOF; a stream that ends inside a
// frame gives an error wrapping io.ErrUnexpectedEOF.
//
// A length above MaxFrame is refused with ErrFrameTooLarge before anything
// is allocated or read past the header; so is a compressed payload whose
// decoded size would exceed it. An unknown kind or flag is ErrBadFrame.
func (c *Conn) ReadFrame() (Kind, []byte, error) {
	if len(c.rbuf) < c.bufSize {
		c.growRead(c.bufSize)
	}
	if err := c.fill(headerSize); err != nil {
		switch {
		case c.rend > c.rpos:
			return KindInvalid, nil, readErr("header", err)
		case err == io.EOF:
			return KindInvalid, nil, io.EOF
		}
		return KindInvalid, nil, fmt.Errorf("wire: read: %w", err)
	}
	// The frame is consumed (rpos moved past it) only once it is whole,
	// so that a read deadline expiring inside it leaves it to the next
	// call.
	var h [headerSize]byte
	copy(h[:], c.rbuf[c.rpos:])
	size := binary.BigEndian.Uint32(h[:])
	kind, flags := Kind(h[4]), h[5]
	if uint64(size) > uint64(c.limit) {
		return KindInvalid, nil, fmt.Errorf("%w: %s frame of %d bytes, limit %d", ErrFrameTooLarge, kind, size, c.limit)
	}
	n := int(size)
	tagLen := 0
	if c.rmac == nil {
		if err := c.checkHeader(kind, flags); err != nil {
			return KindInvalid, nil, err
		}
	} else {
		tagLen = tagSize
	}
	if err := c.fill(headerSize + n + tagLen); err != nil {
		return KindInvalid, nil, readErr(kind.String()+" payload", err)
	}
	start := c.rpos + headerSize // fill may have moved the frame
	raw := c.rbuf[start : start+n : start+n]
	if c.rmac != nil {
		// The MAC is checked on the bytes as sent, before the kind and
		// flags (an altered header is reported as such) and before
		// decompressing: a forged frame costs no decoding.
		if err := c.rmac.check(h[:], raw, c.rbuf[start+n:start+n+tagLen]); err != nil {
			return KindInvalid, nil, err
		}
		if err := c.checkHeader(kind, flags); err != nil {
			return KindInvalid, nil, err
		}
	}
	c.rpos = start + n + tagLen
	payload := raw
	if flags != 0 && c.dbuf == nil {
		// Keep handed the last decoded payload over: decode into a
		// recycled buffer rather than fresh memory (whose page faults
		// cost as much as the zstd decoding of a repetitive MiB).
		c.dbuf = c.takeSpare(0)
	}
	switch flags {
	case flagS2:
		out, err := decodeS2(c.dbuf, raw, c.limit)
		if err != nil {
			return KindInvalid, nil, err
		}
		c.dbuf, payload = out, out
	case flagZstd:
		dec, err := c.codecs.decoder()
		if err != nil {
			return KindInvalid, nil, fmt.Errorf("wire: zstd decoder: %w", err)
		}
		out, err := decodeZstd(dec, c.decode, c.dbuf, raw, c.limit)
		if err != nil {
			return KindInvalid, nil, err
		}
		c.dbuf, payload = out, out
	}
	c.decoded = flags != 0
	c.in.add(len(payload), n+tagLen, flags != 0)
	return kind, payload, nil
}

// checkHeader refuses an unknown kind or flag, and a compressed frame
// during the handshake.
func (c *Conn) checkHeader(kind Kind, flags byte) error {
	if !kind.Valid() {
		return fmt.Errorf("%w: unknown kind %d", ErrBadFrame, uint8(kind))
	}
	if flags != 0 && flags != flagS2 && flags != flagZstd {
		return fmt.Errorf("%w: unknown flags %#02x", ErrBadFrame, flags)
	}
	if flags != 0 && c.plainOnly {
		return fmt.Errorf("%w: compressed frame during the handshake", ErrBadFrame)
	}
	return nil
}

// Buffered reports how many bytes were read from the connection and not
// yet returned by ReadFrame: nonzero means the next frame, or its start,
// is already in.
func (c *Conn) Buffered() int { return c.rend - c.rpos }

// FrameBuffered reports whether the next frame is already read whole
// from the connection, so that ReadFrame returns it (or its error)
// without reading: a relay that knows another frame follows at once may
// hold what this one produced to send it with that one's.
func (c *Conn) FrameBuffered() bool {
	n := c.rend - c.rpos
	if n < headerSize {
		return false
	}
	size := uint64(binary.BigEndian.Uint32(c.rbuf[c.rpos:]))
	if c.rmac != nil {
		size += tagSize
	}
	return uint64(n) >= headerSize+size
}

// Keep hands the payload ReadFrame last returned to the caller: it stays
// valid after later reads, and the Conn reads on into another buffer. It
// saves a relay the copy of a large payload it must hold on to; for a
// small one, copying is cheaper than the Conn's new read buffer. Keep
// returns the buffer the payload lies in, now the caller's: once nothing
// refers to it any more, the caller may give it back with Recycle.
func (c *Conn) Keep() []byte {
	if c.decoded {
		buf := c.dbuf
		c.dbuf = nil
		return buf
	}
	kept := c.rbuf
	unread := c.rbuf[c.rpos:c.rend]
	buf := c.takeSpare(len(unread))
	if buf == nil {
		buf = make([]byte, max(c.bufSize, len(unread)))
	}
	c.rend = copy(buf, unread)
	c.rpos = 0
	c.rbuf = buf
	return kept
}

// Recycle gives back a buffer that Keep returned, for a later frame to be
// read into; any goroutine may call it. The caller must not touch buf, or
// any payload in it, afterwards: a relay recycles the buffer of a large
// task batch once every body in it was written on and no task kept for a
// retry refers to it (see the launcher's node). On the payload workload
// (1 MiB tasks) each such frame otherwise cost a fresh MiB that the
// runtime zeroed and the collector then scanned and freed: a third of the
// server's CPU time per MiB (perf, 2-core AMD EPYC VM, Go 1.26).
func (c *Conn) Recycle(buf []byte) { c.spare.put(buf[:cap(buf)]) }

// takeSpare returns a recycled buffer of at least n bytes, counted in
// Stats.Recycled, or nil.
func (c *Conn) takeSpare(n int) []byte {
	buf := c.spare.take(n)
	if buf != nil {
		c.recycled.Add(1)
	}
	return buf
}

// spareBuffers is a Conn's short list of recycled read buffers, of at
// most maxSpareBytes in all: a relay has about as many large frames in
// flight as the client's window holds (16 MiB on the payload workload),
// and each one that comes back replaces a fresh allocation. Kept to 4
// buffers, it ran dry at the start of every window and the decoding of
// compressed frames page-faulted into fresh memory again (perf). A
// buffer that does not fit goes to the collector, as before.
type spareBuffers struct {
	mu    sync.Mutex
	bufs  [][]byte
	bytes int
}

// maxSpareBytes bounds the recycled read buffers a Conn holds.
const maxSpareBytes = 16 << 20

func (s *spareBuffers) put(buf []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.bytes+len(buf) <= maxSpareBytes {
		s.bufs = append(s.bufs, buf)
		s.bytes += len(buf)
	}
}

// take returns a spare buffer of at least n bytes (at least the steady
// read buffer's size), or nil.
func (s *spareBuffers) take(n int) []byte {
	n = max(n, readBufferSize)
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, b := range s.bufs {
		if len(b) >= n {
			last := len(s.bufs) - 1
			s.bufs[i] = s.bufs[last]
			s.bufs[last] = nil
			s.bufs = s.bufs[:last]
			s.bytes -= len(b)
			return b
		}
	}
	return nil
}

func readErr(what string, err error) error {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return fmt.Errorf("wire: read: %w", err) // resumable: nothing is lost
	}
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("wire: truncated frame: reading %s: %w", what, err)
}

// growRead makes rbuf at least n bytes long, keeping the unread bytes,
// in a recycled buffer when one is large enough.
func (c *Conn) growRead(n int) {
	buf := c.takeSpare(n)
	if buf == nil {
		if n > readBufferSize {
			n += growSlack
		}
		buf = make([]byte, n)
	}
	c.rend = copy(buf, c.rbuf[c.rpos:c.rend])
	c.rpos = 0
	c.rbuf = buf
}

// growSlack is the room a read buffer grown for a large frame has beyond
// it: for the next frame's header and the start of its payload, so that
// a frame of the same size, read into the buffer once recycled, fits
// behind its header. Grown to the frame's size alone, such a buffer made
// fill move the whole frame read so far to the front of the buffer: a
// memmove of up to a MiB per frame, 5 % of the server's samples on the
// payload workload (perf).
const growSlack = 4 << 10

// maxEmptyReads bounds successive reads returning no data and no error.
const maxEmptyReads = 100

// fill makes at least n unread bytes available in rbuf.
func (c *Conn) fill(n int) error {
	if c.rend-c.rpos >= n {
		return nil
	}
	if len(c.rbuf)-c.rpos < n {
		if len(c.rbuf) < n {
			c.growRead(n)
		} else {
			c.rend = copy(c.rbuf, c.rbuf[c.rpos:c.rend])
			c.rpos = 0
		}
	}
	if c.rerr != nil {
		return c.rerr
	}
	// A large frame is read up to its end and no further, as into a
	// buffer grown to its size: what lies behind it then stays in the
	// socket, and Buffered says nothing more has come. (A worker rank runs
	// a batch itself only when nothing is buffered; with reads going on
	// into the next frame, its CPU per MiB on the payload workload rose by
	// a fifth, and fell back once they stopped at the frame's end.)
	end := len(c.rbuf)
	if n > readBufferSize {
		end = c.rpos + n
	}
	for empty := 0; c.rend-c.rpos < n; {
		m, err := c.r.Read(c.rbuf[c.rend:end])
		c.rend += m
		if err != nil {
			if !errors.Is(err, os.ErrDeadlineExceeded) {
				c.rerr = err // a deadline is not kept: the next read may succeed
			}
			if c.rend-c.rpos >= n {
				return nil
			}
			return err
		}
		if m == 0 {
			if empty++; empty >= maxEmptyReads {
				return io.ErrNoProgress
			}
		}
	}
	return nil
}
