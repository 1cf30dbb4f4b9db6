package wire

import (
	"bytes"
	"io"
	"net"
	"testing"
)

// TestFrameBuffered: FrameBuffered is true exactly while the next frame,
// its MAC tag included, is read whole; a stream cut in a header, a
// payload or a tag leaves it false, and a frame it vouched for is read
// without a read.
func TestFrameBuffered(t *testing.T) {
	frames := []testFrame{
		{KindResult, []byte("one")},
		{KindHeartbeat, nil},
		{KindResult, repetitiveBytes(20 << 10)}, // compressed where the Conn compresses
	}
	for _, comp := range allCompressions {
		for _, mac := range []bool{false, true} {
			opts := Options{Compression: comp, Threshold: 64}
			// open returns a Conn that reads the frames as sent, less
			// their last short bytes (after a handshake of its own with
			// mac: the frame MACs count frames).
			open := func(short int) *Conn {
				if mac {
					client, server, sent, deliver := handshakenPair(t, opts)
					writeMACFrames(t, client, frames)
					deliver(sent.Bytes()[:sent.Len()-short])
					return server
				}
				var buf bytes.Buffer
				writeMACFrames(t, NewConn(&buf, opts), frames)
				return NewConn(readWriter{bytes.NewReader(buf.Bytes()[:buf.Len()-short]), io.Discard}, opts)
			}
			name := comp.String()
			if mac {
				name += "+mac"
			}
			t.Run(name, func(t *testing.T) {
				// The whole stream: each frame but the last has its next one in.
				c := open(0)
				if c.FrameBuffered() {
					t.Fatal("FrameBuffered before any read")
				}
				for i := range frames {
					if _, _, err := c.ReadFrame(); err != nil {
						t.Fatalf("frame %d: %v", i, err)
					}
					if got, want := c.FrameBuffered(), i < len(frames)-1; got != want {
						t.Fatalf("after frame %d of %d: FrameBuffered %v, want %v", i, len(frames), got, want)
					}
				}
				// One byte short of the end: the last frame's tag or
				// payload is not all in.
				c = open(1)
				for range 2 {
					if _, _, err := c.ReadFrame(); err != nil {
						t.Fatal(err)
					}
				}
				if c.FrameBuffered() {
					t.Fatal("FrameBuffered with the last frame one byte short")
				}
			})
		}
	}
	// A next frame of which only part of the header is in.
	next := frameBytes(3, KindResult, 0, []byte("abc"))
	stream := append(bytes.Clone(next), next[:headerSize-1]...)
	c := NewConn(readWriter{bytes.NewReader(stream), io.Discard}, Options{})
	if _, _, err := c.ReadFrame(); err != nil {
		t.Fatal(err)
	}
	if c.FrameBuffered() {
		t.Fatal("FrameBuffered with the next header one byte short")
	}
	// Over a TCP connection: frames written in one write are in at the
	// reader's first read.
	t.Run("tcp", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		go func() {
			nc, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				return
			}
			defer nc.Close()
			c := NewConn(nc, Options{})
			for _, f := range frames[:2] {
				c.WriteFrame(f.kind, f.payload)
			}
			c.Flush()
		}()
		nc, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		c := NewConn(nc, Options{})
		if _, _, err := c.ReadFrame(); err != nil {
			t.Fatal(err)
		}
		if !c.FrameBuffered() {
			t.Fatal("the second frame of one write: FrameBuffered false")
		}
		if _, _, err := c.ReadFrame(); err != nil {
			t.Fatal(err)
		}
		if c.FrameBuffered() {
			t.Fatal("FrameBuffered after the last frame")
		}
	})
}
