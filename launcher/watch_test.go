package launcher

import (
	"context"
	"errors"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// TestWatchDropsSilentParent: a worker rank's link.watch heartbeats its
// parent every Heartbeat and closes the link once the parent stayed silent
// for more than HeartbeatTimeout (a hung server or manager), on the
// bubble's fake clock: no test waits for a timeout on the wall clock. The
// relay's side of the same rule is scripted in relay/testdata/silent.txt.
func TestWatchDropsSilentParent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mine, theirs := net.Pipe()
		defer theirs.Close()
		l := &link{nc: mine}
		l.seen()
		cfg := LinkConfig{Heartbeat: time.Second, HeartbeatTimeout: 10 * time.Second}
		var beats atomic.Int64
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		watched := make(chan struct{})
		go func() {
			defer close(watched)
			l.watch(ctx, cfg, func() { beats.Add(1) })
		}()
		closed := make(chan error, 1)
		go func() {
			_, err := theirs.Read(make([]byte, 1))
			closed <- err
		}()
		isClosed := func() bool {
			synctest.Wait()
			select {
			case err := <-closed:
				closed <- err
				return true
			default:
				return false
			}
		}

		// The parent speaks at 9.5 s: the silence restarts from there.
		time.Sleep(9500 * time.Millisecond)
		if isClosed() || beats.Load() != 9 {
			t.Fatalf("at 9.5 s: closed %v, %d heartbeats; want open, 9", isClosed(), beats.Load())
		}
		l.seen()
		// At 19 s, 9.5 s of silence: still open. At 20 s, 10.5 s: dropped
		// (a silence of exactly the timeout is not yet a loss).
		time.Sleep(9500 * time.Millisecond)
		if isClosed() || beats.Load() != 19 {
			t.Fatalf("at 19 s: closed %v, %d heartbeats; want open, 19", isClosed(), beats.Load())
		}
		time.Sleep(time.Second)
		if !isClosed() {
			t.Fatal("at 20 s, silent for 10.5 s past a 10 s timeout: the link is still open")
		}
		if err := <-closed; !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrClosedPipe) {
			t.Fatalf("the parent's end read %v, want the link closed", err)
		}
		<-watched
		if beats.Load() != 19 {
			t.Fatalf("%d heartbeats, want none after the link closed (19)", beats.Load())
		}
	})
}
