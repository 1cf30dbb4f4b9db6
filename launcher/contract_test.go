package launcher_test

import (
	"context"
	"testing"
	"time"

	"github.com/qlaunch/qlaunch/kernels"
	"github.com/qlaunch/qlaunch/kernels/futures/futurestest"
	"github.com/qlaunch/qlaunch/launcher/launchertest"
)

// TestFuturesContract runs the futures contract against the runtime a
// kernel sees on a worker rank: a root task on a real tree (a server and
// a worker rank of two slots on loopback) hands its kernels.Runtime to
// the contract, which maps, waits and cancels through it.
func TestFuturesContract(t *testing.T) {
	futurestest.Run(t, func(t *testing.T, ks []kernels.Kernel) futurestest.Runtime {
		rts := make(chan kernels.Runtime)
		tr := launchertest.Start(t, launchertest.Shape{Workers: []int{2}}, launchertest.Options{Kernels: append(ks, futurestest.InTask(rts))})
		c := tr.Client()
		ctx, cancel := context.WithCancel(context.Background())
		f, err := c.Submit(ctx, kernels.Task{Kernel: futurestest.Root})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			// Ending the root task ends its runtime's use.
			if err := c.Cancel(f); err != nil {
				t.Errorf("cancel the root task: %v", err)
			}
			cancel()
		})
		select {
		case rt := <-rts:
			return rt
		case <-time.After(30 * time.Second):
			t.Fatal("the root task did not start within 30 s")
			return nil
		}
	})
}
