package wire

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"testing"
)

// taskBatch returns about n bytes of a realistic submit payload: records of
// small tasks as msg.go encodes them.
func taskBatch(n int) []byte {
	var b, body []byte
	for i := 0; len(b) < n; i++ {
		t := Task{Kernel: "fanout", Args: []string{"100", "2"}, Payload: fmt.Appendf(nil, "input-%d", i*7919)}
		body = AppendTask(body[:0], &t)
		b = AppendRecord(b, uint64(1_000_000+i), body)
	}
	return b[:n]
}

// frameRate reports frames per second.
func frameRate(b *testing.B, frames int) {
	b.ReportMetric(float64(frames)/b.Elapsed().Seconds(), "frames/s")
}

const benchBatch = 256 // frames between flushes

// BenchmarkFrames measures plain small frames through a bytes.Buffer (the
// cost of the framing alone), net.Pipe and loopback TCP.
func BenchmarkFrames(b *testing.B) {
	for _, size := range []int{16, 100, 1000} {
		p := taskBatch(size)
		b.Run(fmt.Sprintf("buffer/size=%d", size), func(b *testing.B) {
			var buf bytes.Buffer
			c := NewConn(&buf, Options{})
			b.SetBytes(int64(size))
			frames := 0
			for b.Loop() {
				if err := c.WriteFrame(KindResult, p); err != nil {
					b.Fatal(err)
				}
				if frames++; frames%benchBatch == 0 {
					c.Flush()
					for range benchBatch {
						if _, _, err := c.ReadFrame(); err != nil {
							b.Fatal(err)
						}
					}
				}
			}
			frameRate(b, frames)
		})
		for _, transport := range []string{"pipe", "tcp"} {
			b.Run(fmt.Sprintf("%s/size=%d", transport, size), func(b *testing.B) {
				w, r := benchLink(b, transport)
				benchStream(b, w, r, p)
			})
		}
	}
}

func benchLink(b *testing.B, transport string) (net.Conn, net.Conn) {
	if transport == "pipe" {
		x, y := net.Pipe()
		return x, y
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			accepted <- nil
			return
		}
		accepted <- c
	}()
	x, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	y := <-accepted
	if y == nil {
		b.Fatal("accept failed")
	}
	return x, y
}

// benchStream writes frames on w while another goroutine reads them on r.
func benchStream(b *testing.B, w, r net.Conn, p []byte) {
	defer r.Close()
	wc, rc := NewConn(w, Options{}), NewConn(r, Options{})
	got := make(chan int, 1)
	go func() {
		n := 0
		for {
			if _, _, err := rc.ReadFrame(); err != nil {
				got <- n
				return
			}
			n++
		}
	}()
	b.SetBytes(int64(len(p)))
	frames := 0
	for b.Loop() {
		if err := wc.WriteFrame(KindResult, p); err != nil {
			b.Fatal(err)
		}
		if frames++; frames%benchBatch == 0 {
			if err := wc.Flush(); err != nil {
				b.Fatal(err)
			}
		}
	}
	wc.Flush()
	w.Close()
	if n := <-got; n != frames {
		b.Fatalf("read %d frames of %d", n, frames)
	}
	frameRate(b, frames)
}

// BenchmarkCompress writes and reads one frame per operation, 1 MiB or
// 100 B, random or repetitive (a task batch), under every compression
// (always applied: threshold 1). ratio is wire bytes per payload byte.
func BenchmarkCompress(b *testing.B) {
	for _, size := range []int{1 << 20, 100} {
		for _, content := range []string{"random", "repetitive"} {
			p := randomBytes(7, size)
			if content == "repetitive" {
				p = taskBatch(size)
			}
			for _, comp := range allCompressions {
				opts := Options{Compression: comp, Threshold: 1}
				var frame bytes.Buffer
				c := NewConn(&frame, opts)
				c.WriteFrame(KindSubmit, p)
				c.Flush()
				ratio := float64(frame.Len()) / float64(len(p))
				name := fmt.Sprintf("size=%d/%s/%s", size, content, comp)
				b.Run(name+"/write", func(b *testing.B) {
					c := NewConn(readWriter{nil, io.Discard}, opts)
					b.SetBytes(int64(len(p)))
					for b.Loop() {
						if err := c.WriteFrame(KindSubmit, p); err != nil {
							b.Fatal(err)
						}
						if err := c.Flush(); err != nil {
							b.Fatal(err)
						}
					}
					b.ReportMetric(ratio, "ratio")
				})
				b.Run(name+"/read", func(b *testing.B) {
					c := NewConn(readWriter{&loopReader{b: frame.Bytes()}, nil}, opts)
					b.SetBytes(int64(len(p)))
					for b.Loop() {
						if _, _, err := c.ReadFrame(); err != nil {
							b.Fatal(err)
						}
					}
					b.ReportMetric(ratio, "ratio")
				})
			}
		}
	}
}

// loopReader serves b over and over, as a stream.
type loopReader struct {
	b   []byte
	off int
}

func (r *loopReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		m := copy(p[n:], r.b[r.off:])
		n += m
		r.off = (r.off + m) % len(r.b)
	}
	return n, nil
}

// BenchmarkThreshold measures the cost (write and read back) and the gain
// of compressing task batches of various sizes; it chose DefaultThreshold.
func BenchmarkThreshold(b *testing.B) {
	for _, size := range []int{256, 1024, 4096, 16384, 65536} {
		p := taskBatch(size)
		for _, comp := range allCompressions {
			b.Run(fmt.Sprintf("size=%d/%s", size, comp), func(b *testing.B) {
				var buf bytes.Buffer
				c := NewConn(&buf, Options{Compression: comp, Threshold: 1})
				b.SetBytes(int64(size))
				for b.Loop() {
					c.WriteFrame(KindSubmit, p)
					c.Flush()
					if _, _, err := c.ReadFrame(); err != nil {
						b.Fatal(err)
					}
				}
				st := c.Stats()
				b.ReportMetric(float64(st.WireOut)/float64(st.PayloadOut+st.FramesOut*headerSize), "ratio")
			})
		}
	}
}

// BenchmarkHandshake measures a whole mutual handshake over net.Pipe.
func BenchmarkHandshake(b *testing.B) {
	sec := testSecret(b, 1)
	for b.Loop() {
		x, y := net.Pipe()
		done := make(chan error, 1)
		go func() {
			_, err := ServerHandshake(NewConn(y, Options{}), sec, Hello{Role: "manager", Rank: 1, Host: "node01"})
			done <- err
		}()
		_, err := ClientHandshake(NewConn(x, Options{}), sec, Hello{Role: "worker", Rank: 2, Host: "node02"})
		if err != nil {
			b.Fatal(err)
		}
		if err := <-done; err != nil {
			b.Fatal(err)
		}
		x.Close()
		y.Close()
	}
}

// BenchmarkFrameMAC measures one hop's MAC work on a frame of each size:
// sum (the sender, payload in one piece), sum-parts (a relay: a 12-byte
// record header and the body it received), check (the receiver), and,
// for comparison, join: the copy of head and body into one buffer that
// a relay made before sumParts.
func BenchmarkFrameMAC(b *testing.B) {
	key := bytes.Repeat([]byte{9}, 32)
	for _, n := range []int{100, 64 << 10, 1 << 20} {
		p := bytes.Repeat([]byte("qlaunch frame MAC benchmark "), n/28+1)[:n]
		h := appendHeader(nil, n, KindSubmit, 0)
		head, body := p[:min(12, n)], p[min(12, n):]
		m, err := newFrameMAC(key)
		if err != nil {
			b.Fatal(err)
		}
		var tag []byte
		b.Run(fmt.Sprintf("sum/%d", n), func(b *testing.B) {
			b.SetBytes(int64(n))
			for b.Loop() {
				m.seq = 0
				if tag, err = m.sum(h, p, nil); err != nil {
					b.Fatal(err)
				}
			}
		})
		tag = bytes.Clone(tag)
		b.Run(fmt.Sprintf("sum-parts/%d", n), func(b *testing.B) {
			b.SetBytes(int64(n))
			for b.Loop() {
				m.seq = 0
				if _, err := m.sum(h, head, body); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("check/%d", n), func(b *testing.B) {
			b.SetBytes(int64(n))
			for b.Loop() {
				m.seq = 0
				if err := m.check(h, p, tag); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("join/%d", n), func(b *testing.B) {
			b.SetBytes(int64(n))
			var join []byte
			for b.Loop() {
				join = append(append(join[:0], head...), body...)
			}
		})
	}
}
