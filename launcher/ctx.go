package launcher

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// cancelCtx is the context a kernel runs under. It is embedded in a task
// or a future, so starting a task allocates no context; its Done channel
// is made only when a kernel asks for it. Tasks of one Map share their
// future's cancelCtx: cancelling a future is cancelling that one context.
type cancelCtx struct {
	mu        sync.Mutex
	done      chan struct{}
	err       error
	cancelled atomic.Bool // err is set: Err without the lock, which every task of a Map shares
}

var _ context.Context = (*cancelCtx)(nil)

func (c *cancelCtx) Deadline() (time.Time, bool) { return time.Time{}, false }
func (c *cancelCtx) Value(any) any               { return nil }

func (c *cancelCtx) Done() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done == nil {
		c.done = make(chan struct{})
		if c.err != nil {
			close(c.done)
		}
	}
	return c.done
}

func (c *cancelCtx) Err() error {
	if !c.cancelled.Load() {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

func (c *cancelCtx) cancel() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return
	}
	c.err = context.Canceled
	c.cancelled.Store(true)
	if c.done != nil {
		close(c.done)
	}
}
