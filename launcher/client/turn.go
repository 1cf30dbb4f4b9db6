package client

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"time"
)

// The read turn: who reads the connection.
//
// A round trip used to cross two goroutines in the client: a reader
// goroutine, always blocked in a read, took the result and woke the
// caller blocked in Wait. On a 2-core KVM guest (strace -f -c over
// `qlaunch bench --workload latency`) that cost the client 10 system calls
// per round trip, 3 of them futex (the reader waking the caller's thread,
// the caller's thread waking another to run the reader again), against
// 5.6 to 5.9 for the raw three-process chain, whose client reads its own
// answer. Now the caller reads: a caller that blocks while nobody reads
// takes the turn and reads frames itself, handling every one (other
// callers' results, logs, heartbeats) until its own future has what it
// waits for; then it frees the turn (handing it to a blocked caller, if
// any). A free turn goes to the background reader after idleHandOff, and
// at once while a map of several batches is being written or a Status
// waits. The background reader gives it back to a lone caller that asks:
// that caller sets a read deadline in the past (kick), and wire.Conn's
// ReadFrame resumes cleanly after it, even inside a frame.
//
// Every change of holder, and every kick, is made with mu held; the
// holder alone calls fc.ReadFrame, without mu.

// blockReading is the client's futures.Block: called with mu held, it
// returns with mu held when woken fires, ctx ends, or the caller should
// check again.
func (c *Client) blockReading(ctx context.Context, woken <-chan struct{}) error {
	for c.err == nil {
		if c.turn == turnFree {
			return c.readTurn(ctx, woken)
		}
		if c.turn == turnBackground && c.blocked == 0 && c.bulk == 0 && !c.want {
			c.want = true // a lone caller: the background reader yields
			c.kick()
		}
		c.blocked++
		c.mu.Unlock()
		var err error
		freed := false
		select {
		case <-woken:
		case <-c.turnFreed:
			freed = true
		case <-ctx.Done():
			err = ctx.Err()
		}
		c.mu.Lock()
		c.blocked--
		if !freed {
			return err
		}
	}
	return nil
}

// readTurn takes the free turn and reads frames until woken fires or ctx
// ends, then frees the turn. Called with mu held; returns with it held.
func (c *Client) readTurn(ctx context.Context, woken <-chan struct{}) error {
	c.take(turnCaller)
	stop := func() bool { return false }
	if ctx.Done() != nil {
		stop = context.AfterFunc(ctx, func() {
			c.mu.Lock()
			if c.turn == turnCaller {
				c.kick()
			}
			c.mu.Unlock()
		})
	}
	c.mu.Unlock()
	err := c.readUntil(ctx, woken)
	stop()
	c.mu.Lock()
	c.freeTurn()
	return err
}

// readUntil reads and handles frames until woken fires, ctx ends or the
// connection fails (then the futures table is closed and the caller sees
// it).
func (c *Client) readUntil(ctx context.Context, woken <-chan struct{}) error {
	for {
		kicked, ok := c.readFrame(&c.ownReads)
		if !ok {
			return nil
		}
		if kicked {
			c.mu.Lock()
			c.unkick()
			c.mu.Unlock()
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		select {
		case <-woken:
			return nil
		default:
		}
	}
}

// readFrame reads and handles one frame, counting it in reads. It reports
// whether a read deadline (a kick) interrupted the read instead, and
// false in ok once the connection failed.
func (c *Client) readFrame(reads *atomic.Uint64) (kicked, ok bool) {
	k, b, err := c.fc.ReadFrame()
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return true, true
	}
	if err != nil {
		c.fail(fmt.Errorf("client: connection lost: %w", err))
		return false, false
	}
	reads.Add(1)
	if err := c.handle(k, b); err != nil {
		c.fail(fmt.Errorf("client: %w", err))
		return false, false
	}
	return false, true
}

// backgroundReader reads whenever it is handed the turn, until the client
// fails.
func (c *Client) backgroundReader() {
	for {
		select {
		case <-c.bgTurn:
		case <-c.closed:
			return
		}
		for {
			kicked, ok := c.readFrame(&c.bgReads)
			if !ok {
				return
			}
			if kicked && c.yield() {
				break
			}
		}
	}
}

// yield is the background reader's answer to a kick: it frees the turn
// for the lone caller that asked, unless a map of several batches is
// being written (the caller's results then come through the background
// reader). It reports whether the turn was freed.
func (c *Client) yield() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.unkick()
	want := c.want
	c.want = false
	if !want || c.bulk > 0 {
		return false
	}
	c.turn = turnFree
	c.idle.Reset(idleHandOff)
	if c.blocked > 0 {
		wakeOne(c.turnFreed)
	}
	return true
}

// onIdle hands a turn free for idleHandOff to the background reader.
func (c *Client) onIdle() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.turn == turnFree && c.err == nil {
		c.startBackground()
	}
}

// startBackground hands the free turn to the background reader. Called
// with mu held.
func (c *Client) startBackground() {
	c.take(turnBackground)
	wakeOne(c.bgTurn)
}

// take gives the free turn to who, clearing a kick meant for the last
// holder. Called with mu held.
func (c *Client) take(who turnHolder) {
	c.turn = who
	c.unkick()
}

// freeTurn is a caller's end of its turn: the turn goes to the background
// reader while a map of several batches is being written, else it is
// free for a blocked caller, or for the background reader after
// idleHandOff. Called with mu held.
func (c *Client) freeTurn() {
	c.turn = turnFree
	switch {
	case c.err != nil:
	case c.bulk > 0:
		c.startBackground()
	default:
		c.idle.Reset(idleHandOff)
		if c.blocked > 0 {
			wakeOne(c.turnFreed)
		}
	}
}

// kick interrupts the holder's read with a read deadline in the past; a
// kick is cleared (unkick) by the holder that saw it, or when the turn
// changes hands. Setting a deadline costs no system call. Called with mu
// held.
func (c *Client) kick() {
	if !c.kicked {
		c.kicked = true
		_ = c.nc.SetReadDeadline(time.Now())
	}
}

// unkick clears a kick. Called with mu held.
func (c *Client) unkick() {
	if c.kicked {
		c.kicked = false
		_ = c.nc.SetReadDeadline(time.Time{})
	}
}

// wakeOne signals ch (of capacity 1) without blocking.
func wakeOne(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}
