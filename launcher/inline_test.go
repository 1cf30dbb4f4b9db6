package launcher_test

import (
	"errors"
	"testing"

	"github.com/qlaunch/qlaunch/kernels"
	"github.com/qlaunch/qlaunch/launcher/launchertest"
)

// TestReaderHandsOffLongKernel: a task that reaches a worker rank alone is
// run by the goroutine reading the rank's link. While it runs, the rank
// must go on reading: a second task, sent after it, runs on the other slot
// and returns while the first still runs, and a cancel of the first reaches
// it.
func TestReaderHandsOffLongKernel(t *testing.T) {
	p := newProbe()
	tr := launchertest.Start(t, launchertest.Shape{Workers: []int{2}}, launchertest.Options{Kernels: p.kernels()})
	c := tr.Client()
	ctx := ctxT(t)
	long, err := c.Submit(ctx, kernels.Task{Kernel: "block"})
	if err != nil {
		t.Fatal(err)
	}
	recv(t, p.started, "the long task")
	if got := mustRun(t, c, "echo", "beside"); got != "beside" {
		t.Fatalf("second task returned %q", got)
	}
	select {
	case <-p.cancelled:
		t.Fatal("the long task ended before the second task returned")
	default:
	}
	if err := c.Cancel(long); err != nil {
		t.Fatal(err)
	}
	recv(t, p.cancelled, "the long task's cancellation")
	if _, err := c.Wait(ctx, long); !errors.Is(err, kernels.ErrCancelled) {
		t.Fatalf("waiting on the cancelled task: %v, want a cancellation", err)
	}
}

// TestReaderHandsOffOnWait: on a rank with one slot, a task run by the
// reading goroutine waits on children that run on the same rank; the
// children's tasks and results must still flow (the reading moves to
// another goroutine before the kernel blocks).
func TestReaderHandsOffOnWait(t *testing.T) {
	tr := launchertest.Start(t, launchertest.Shape{Workers: []int{1}}, launchertest.Options{Kernels: tableKernels()})
	c := tr.Client()
	for range 20 {
		if got := mustRun(t, c, "pair", "3"); got != "6,7" {
			t.Fatalf("pair 3 returned %q, want 6,7", got)
		}
	}
}
