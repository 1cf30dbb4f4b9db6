package cli

import (
	"context"
	"time"
)

// parentGrace is how long a rank below the server, interrupted (SIGINT,
// SIGTERM), waits for its parent to tell it to stop before it leaves on
// its own. scancel and a job's end signal the nodes one after another: a
// rank that left at once would be lost to a parent not yet signalled,
// which then warns of a lost child in what is a clean shutdown. Within
// the grace the server, signalled too, stops the tree from the top and
// the rank leaves through that.
const parentGrace = 3 * time.Second

// rankContext returns the context a rank's role runs under. When ctx
// ends (an interrupt), it ends at once if atOnce reports true (the
// server), else after grace unless stop was called first (the role
// returned). Call stop when the role returns.
func rankContext(ctx context.Context, grace time.Duration, atOnce func() bool) (rctx context.Context, stop func()) {
	rctx, cancel := context.WithCancelCause(context.WithoutCancel(ctx))
	unhook := context.AfterFunc(ctx, func() {
		if atOnce() {
			cancel(context.Cause(ctx))
			return
		}
		t := time.NewTimer(grace)
		defer t.Stop()
		select {
		case <-t.C:
			cancel(context.Cause(ctx))
		case <-rctx.Done():
		}
	})
	return rctx, func() { unhook(); cancel(context.Canceled) }
}

// never is an atOnce for ranks that are never the server.
func never() bool { return false }
