package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"sync"
	"time"
)

// Sizes of the loopback baseline.
const (
	loopbackMessage    = 64      // bytes per message
	loopbackRoundTrips = 2000    // round trips per repeat
	loopbackBulkWrite  = 1 << 20 // bytes per bulk write
	loopbackBulkWrites = 64      // bulk writes per repeat
)

// runLoopback measures the physical reference for one hop, in this
// process: what TCP over 127.0.0.1 gives with no runtime in the way.
func runLoopback(ctx context.Context, r *runner) ([]Result, error) {
	lb, err := startLoopback()
	if err != nil {
		return nil, err
	}
	defer lb.close()
	stop := context.AfterFunc(ctx, func() { lb.close() })
	defer stop()

	var out []Result
	res, err := r.repeat("round-trip", loopbackRoundTrips, func() (sample, error) {
		return roundTrips(lb.addr(), loopbackRoundTrips)
	})
	if err != nil {
		return nil, err
	}
	out = append(out, res)
	n := r.tasks
	res, err = r.repeat("pipelined", n, func() (sample, error) {
		return pipelined(lb.addr(), n)
	})
	if err != nil {
		return nil, err
	}
	out = append(out, res)
	res, err = r.repeat("bulk", loopbackBulkWrites, func() (sample, error) {
		return bulk(lb.addr(), loopbackBulkWrites)
	})
	if err != nil {
		return nil, err
	}
	return append(out, res), nil
}

// loopback is an in-process TCP server on 127.0.0.1 that serves each
// connection by the mode its first byte names.
type loopback struct {
	ln     net.Listener
	serve  func(net.Conn) error
	wg     sync.WaitGroup
	mu     sync.Mutex
	conns  []net.Conn
	closed bool
	once   sync.Once
}

const (
	modeEcho     = 'e' // echo 64-byte messages
	modeCount    = 'c' // read N (8 bytes) then N messages, answer one byte
	modeDiscard  = 'd' // read N (8 bytes) then N bytes, answer one byte
	loopbackDone = 'k'
)

func startLoopback() (*loopback, error) { return startServer(serveLoopback) }

// startServer listens on 127.0.0.1:0 and serves each connection with
// serve until close.
func startServer(serve func(net.Conn) error) (*loopback, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	lb := &loopback{ln: ln, serve: serve}
	lb.wg.Go(lb.accept)
	return lb, nil
}

func (lb *loopback) close() {
	lb.once.Do(func() {
		lb.ln.Close()
		lb.mu.Lock()
		lb.closed = true
		for _, c := range lb.conns {
			c.Close()
		}
		lb.mu.Unlock()
	})
	lb.wg.Wait()
}

func (lb *loopback) track(c net.Conn) bool {
	lb.mu.Lock()
	defer lb.mu.Unlock()
	if lb.closed {
		return false
	}
	lb.conns = append(lb.conns, c)
	return true
}

func (lb *loopback) accept() {
	for {
		c, err := lb.ln.Accept()
		if err != nil {
			return
		}
		if !lb.track(c) {
			c.Close()
			return
		}
		setSocketBuffers(c)
		lb.wg.Go(func() {
			defer c.Close()
			_ = lb.serve(c)
		})
	}
}

func serveLoopback(c net.Conn) error {
	br := bufio.NewReaderSize(c, 64<<10)
	mode, err := br.ReadByte()
	if err != nil {
		return err
	}
	msg := make([]byte, loopbackMessage)
	switch mode {
	case modeEcho:
		for {
			if _, err := io.ReadFull(br, msg); err != nil {
				return err
			}
			if _, err := c.Write(msg); err != nil {
				return err
			}
		}
	case modeCount, modeDiscard:
		for {
			var hdr [8]byte
			if _, err := io.ReadFull(br, hdr[:]); err != nil {
				return err
			}
			n := int64(0)
			for _, b := range hdr {
				n = n<<8 | int64(b)
			}
			if mode == modeCount {
				for range n {
					if _, err := io.ReadFull(br, msg); err != nil {
						return err
					}
				}
			} else if _, err := io.CopyN(io.Discard, br, n); err != nil {
				return err
			}
			if _, err := c.Write([]byte{loopbackDone}); err != nil {
				return err
			}
		}
	}
	return errors.New("loopback: unknown mode")
}

// socketBuffer is the socket buffer size of every baseline connection,
// each way: the runtime's links ask for the same (launcher's linkBuffer).
const socketBuffer = 4 << 20

func setSocketBuffers(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetReadBuffer(socketBuffer)
		_ = tc.SetWriteBuffer(socketBuffer)
	}
}

func (lb *loopback) addr() string { return lb.ln.Addr().String() }

// dialEcho connects to the echo server at addr (directly or through a
// relay) in mode.
func dialEcho(addr string, mode byte) (net.Conn, error) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("echo %s: %w", addr, err)
	}
	setSocketBuffers(c)
	if _, err := c.Write([]byte{mode}); err != nil {
		c.Close()
		return nil, fmt.Errorf("echo %s: %w", addr, err)
	}
	return c, nil
}

// roundTrips times n sequential 64-byte echo round trips to addr.
func roundTrips(addr string, n int) (sample, error) {
	c, err := dialEcho(addr, modeEcho)
	if err != nil {
		return sample{}, err
	}
	defer c.Close()
	msg := make([]byte, loopbackMessage)
	lat := make([]time.Duration, n)
	start := time.Now()
	for i := range lat {
		t0 := time.Now()
		if _, err := c.Write(msg); err != nil {
			return sample{}, fmt.Errorf("echo %s: %w", addr, err)
		}
		if _, err := io.ReadFull(c, msg); err != nil {
			return sample{}, fmt.Errorf("echo %s: %w", addr, err)
		}
		lat[i] = time.Since(t0)
	}
	total := time.Since(start)
	slices.Sort(lat)
	return sample{seconds: total.Seconds(), figures: []Figure{
		fig("median_us", micros(quantile(lat, 0.5))),
		fig("p99_us", micros(quantile(lat, 0.99))),
	}}, nil
}

// stream sends the 8-byte count n, then calls write, then waits for the
// server's answer, and returns the time it all took.
func stream(addr string, mode byte, n int, write func(w *bufio.Writer) error) (time.Duration, error) {
	c, err := dialEcho(addr, mode)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	bw := bufio.NewWriterSize(c, 64<<10)
	t0 := time.Now()
	var hdr [8]byte
	for i := range hdr {
		hdr[i] = byte(uint64(n) >> (56 - 8*i))
	}
	_, _ = bw.Write(hdr[:])
	if err := write(bw); err != nil {
		return 0, fmt.Errorf("echo %s: %w", addr, err)
	}
	if err := bw.Flush(); err != nil {
		return 0, fmt.Errorf("echo %s: %w", addr, err)
	}
	var ack [1]byte
	if _, err := io.ReadFull(c, ack[:]); err != nil {
		return 0, fmt.Errorf("echo %s: %w", addr, err)
	}
	return time.Since(t0), nil
}

func pipelined(addr string, n int) (sample, error) {
	msg := make([]byte, loopbackMessage)
	d, err := stream(addr, modeCount, n, func(w *bufio.Writer) error {
		for range n {
			if _, err := w.Write(msg); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return sample{}, err
	}
	return rate("msgs_per_s", n, d), nil
}

// bulk times writes 1 MiB writes to addr, to be discarded there.
func bulk(addr string, writes int) (sample, error) {
	buf := make([]byte, loopbackBulkWrite)
	d, err := stream(addr, modeDiscard, writes*len(buf), func(w *bufio.Writer) error {
		for range writes {
			if _, err := w.Write(buf); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return sample{}, err
	}
	return sample{seconds: d.Seconds(), figures: []Figure{
		fig("MB_per_s", float64(writes*len(buf))/1e6/d.Seconds()),
	}}, nil
}
