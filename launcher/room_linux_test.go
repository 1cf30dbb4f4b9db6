package launcher

import (
	"net"
	"testing"
	"time"

	"github.com/qlaunch/qlaunch/launcher/transport"
	"github.com/qlaunch/qlaunch/launcher/wire"
)

// A link grants room to write only what fits in its socket's send buffer
// while the peer reads nothing, though it asks the kernel only now and
// then (link.room); once the peer has read everything, it grants room
// again.
func TestLinkRoomNeverOutgrowsTheSocket(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			close(accepted)
			return
		}
		accepted <- c
	}()
	a, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, ok := <-accepted
	if !ok {
		t.Fatal("accept failed")
	}
	defer b.Close()
	// Small buffers, so that a peer that reads nothing fills them soon.
	if err := a.(*net.TCPConn).SetWriteBuffer(32 << 10); err != nil {
		t.Fatal(err)
	}
	if err := b.(*net.TCPConn).SetReadBuffer(32 << 10); err != nil {
		t.Fatal(err)
	}
	opts := wire.Options{Compression: wire.CompressNone}
	l := newLink(&transport.Conn{NC: a, Raw: a, FC: wire.NewConn(a, opts)})
	if l.raw == nil {
		t.Fatal("the socket under a loopback link is not known")
	}
	// A write that room allowed must not block: the deadline turns a
	// blocked write into a failure instead of a hang.
	if err := a.SetWriteDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	frame := make([]byte, 1000)
	frames := 0
	for l.room(int64(len(frame))) {
		if frames > 100_000 {
			t.Fatal("room granted for 100 MB to a peer that reads nothing")
		}
		l.noteSent(len(frame))
		if err := l.fc.WriteFrame(wire.KindResult, frame); err != nil {
			t.Fatal(err)
		}
		if err := l.fc.Flush(); err != nil {
			t.Fatalf("frame %d, which room allowed, blocked: %v", frames, err)
		}
		frames++
	}
	if frames == 0 {
		t.Fatal("no room on a fresh socket")
	}
	// The peer reads every frame and answers; its answer acknowledges
	// them all, so the send queue is empty once it is read.
	peer := wire.NewConn(b, opts)
	for i := range frames {
		if k, p, err := peer.ReadFrame(); err != nil || k != wire.KindResult || len(p) != len(frame) {
			t.Fatalf("peer, frame %d: %v, %d bytes, %v", i, k, len(p), err)
		}
	}
	if err := peer.WriteFrame(wire.KindHeartbeat, nil); err != nil {
		t.Fatal(err)
	}
	if err := peer.Flush(); err != nil {
		t.Fatal(err)
	}
	if k, _, err := l.fc.ReadFrame(); err != nil || k != wire.KindHeartbeat {
		t.Fatalf("answer: %v, %v", k, err)
	}
	if !l.room(int64(len(frame))) {
		t.Fatalf("no room after the peer read all %d frames", frames)
	}
}
