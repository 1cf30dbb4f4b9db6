package client_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/qlaunch/qlaunch/kernels"
	"github.com/qlaunch/qlaunch/launcher/client"
	"github.com/qlaunch/qlaunch/launcher/launchertest"
)

func TestClientLifecycle(t *testing.T) {
	tr := launchertest.Start(t, launchertest.Shape{Workers: []int{1}})
	c := tr.Client()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()

	if _, err := c.Wait(ctx, kernels.Future{ID: 99, N: 1}); !errors.Is(err, kernels.ErrUnknownFuture) {
		t.Fatalf("wait on a future never issued: %v", err)
	}
	if err := c.Cancel(kernels.Future{ID: 99, N: 1}); !errors.Is(err, kernels.ErrUnknownFuture) {
		t.Fatalf("cancel of a future never issued: %v", err)
	}
	f, err := c.Submit(ctx, kernels.Task{Kernel: "echo", Args: []string{"x"}})
	if err != nil {
		t.Fatal(err)
	}
	if v, err := c.Wait(ctx, f); err != nil || string(v[0]) != "x" {
		t.Fatalf("echo: %q %v", v, err)
	}
	// A wait already returned: Next has nothing more.
	if _, err := c.Next(ctx, f); !errors.Is(err, kernels.ErrNoMoreResults) {
		t.Fatalf("next after wait: %v", err)
	}
	// A wait interrupted by its context returns the context's error, and
	// the future can still be waited on.
	g, _ := c.Submit(ctx, kernels.Task{Kernel: "sleep", Args: []string{"60000"}})
	short, stop := context.WithCancel(ctx)
	stop()
	if _, err := c.Wait(short, g); !errors.Is(err, context.Canceled) {
		t.Fatalf("wait with a cancelled context: %v", err)
	}
	// Closing fails waits and later calls with ErrClosed; twice is harmless.
	done := make(chan error, 1)
	go func() {
		_, err := c.Wait(ctx, g)
		done <- err
	}()
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; !errors.Is(err, client.ErrClosed) {
		t.Fatalf("wait interrupted by close: %v", err)
	}
	if _, err := c.Submit(ctx, kernels.Task{Kernel: "noop"}); !errors.Is(err, client.ErrClosed) {
		t.Fatalf("submit after close: %v", err)
	}
	if _, err := c.Status(ctx); !errors.Is(err, client.ErrClosed) {
		t.Fatalf("status after close: %v", err)
	}
}

func TestDialNoServer(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if _, err := client.Dial(ctx, "127.0.0.1:1", client.Options{}); err == nil {
		t.Fatal("dial to a closed port succeeded")
	}
}
