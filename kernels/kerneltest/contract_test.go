package kerneltest_test

import (
	"context"
	"testing"

	"github.com/qlaunch/qlaunch/kernels"
	"github.com/qlaunch/qlaunch/kernels/futures/futurestest"
)

// TestFuturesContract runs the futures contract against the runtime a
// kernel of kerneltest sees.
func TestFuturesContract(t *testing.T) {
	futurestest.Run(t, func(t *testing.T, ks []kernels.Kernel) futurestest.Runtime {
		rts := make(chan kernels.Runtime)
		rt := newRuntime(t, 2, append(ks, futurestest.InTask(rts)))
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() {
			_, err := rt.Run(ctx, kernels.Task{Kernel: futurestest.Root})
			done <- err
		}()
		t.Cleanup(func() {
			cancel()
			if err := recv(t, done, "the root task's end"); err != nil {
				t.Errorf("root task: %v", err)
			}
		})
		return recv(t, rts, "the root task's runtime")
	})
}
