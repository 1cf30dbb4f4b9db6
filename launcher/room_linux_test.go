package launcher

import (
	"errors"
	"net"
	"syscall"
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
	// The peer's receive buffer is small (set on the listener, so that
	// its window starts small): what the peer does not read stays in
	// this end's send queue, where room looks. (With frames of a few
	// hundred bytes against a window of a few, the kernel's overhead per
	// buffer outgrows the half of the send buffer room leaves for it.)
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 64<<10) })
		return errors.Join(err, serr)
	}}
	ln, err := lc.Listen(t.Context(), "tcp", "127.0.0.1:0")
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
	// A send buffer that a peer reading nothing fills soon.
	if err := a.(*net.TCPConn).SetWriteBuffer(1 << 20); err != nil {
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
	half := int64(l.sndbuf / 2)
	frames := 0
	write := func(p []byte) {
		t.Helper()
		if err := l.fc.WriteFrame(wire.KindResult, p); err != nil {
			t.Fatal(err)
		}
		if err := l.fc.Flush(); err != nil {
			t.Fatalf("frame %d, which room allowed, blocked: %v", frames, err)
		}
		l.noteFlushed()
		frames++
	}
	// A frame noted by the writer and not yet flushed when room asks the
	// kernel is not in the kernel's count then: it must count once it
	// reaches the socket.
	first := make([]byte, half*3/4)
	l.noteSent(len(first))
	if !l.room(1) {
		t.Fatal("no room on a fresh socket")
	}
	write(first)
	frame := make([]byte, 64<<10)
	for l.room(int64(len(frame))) {
		if frames > 100_000 {
			t.Fatal("room granted for 6 GB to a peer that reads nothing")
		}
		// The queue only shrinks while the peer's window takes bytes, so
		// what room promised must hold now.
		if q, ok := transport.Unsent(l.raw); !ok || int64(q+len(frame)) >= half {
			t.Fatalf("room for %d bytes granted with %d of %d queued", len(frame), q, half)
		}
		l.noteSent(len(frame))
		write(frame)
	}
	if frames < 2 {
		t.Fatalf("room granted for %d frames only", frames)
	}
	// The peer reads every frame and answers; its answer acknowledges
	// them all, so the send queue is empty once it is read.
	peer := wire.NewConn(b, opts)
	for i := range frames {
		if k, _, err := peer.ReadFrame(); err != nil || k != wire.KindResult {
			t.Fatalf("peer, frame %d: %v, %v", i, k, err)
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
