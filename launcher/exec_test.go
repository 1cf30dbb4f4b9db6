package launcher_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/qlaunch/qlaunch/kernels"
	"github.com/qlaunch/qlaunch/launcher/client"
	"github.com/qlaunch/qlaunch/launcher/launchertest"
)

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// mapWait maps tasks through c and returns their results, failing the test
// on any error.
func mapWait(t *testing.T, ctx context.Context, c *client.Client, tasks []kernels.Task) [][]byte {
	t.Helper()
	f, err := c.Map(ctx, tasks)
	if err != nil {
		t.Fatal(err)
	}
	vals, err := c.Wait(ctx, f)
	if err != nil {
		t.Fatal(err)
	}
	return vals
}

// echoes returns n echo tasks, task i echoing "i".
func echoes(n int) []kernels.Task {
	ts := make([]kernels.Task, n)
	for i := range ts {
		ts[i] = kernels.Task{Kernel: "echo", Args: []string{strconv.Itoa(i)}}
	}
	return ts
}

var shapes = []struct {
	name  string
	shape launchertest.Shape
}{
	{"one-worker-one-slot", launchertest.Shape{Workers: []int{1}}},
	{"two-workers", launchertest.Shape{Workers: []int{1, 2}}},
	{"unbalanced", launchertest.Shape{Workers: []int{1}, Managers: []launchertest.Shape{{Workers: []int{1, 1}}, {Managers: []launchertest.Shape{{Workers: []int{2}}}}}}},
}

func TestIdentityMap(t *testing.T) {
	for _, s := range shapes {
		t.Run(s.name, func(t *testing.T) {
			tr := launchertest.Start(t, s.shape)
			c := tr.Client()
			ctx := ctxT(t)
			vals := mapWait(t, ctx, c, echoes(10))
			for i, v := range vals {
				if string(v) != strconv.Itoa(i) {
					t.Fatalf("result %d = %q, want %q", i, v, strconv.Itoa(i))
				}
			}
			f, err := c.Submit(ctx, kernels.Task{Kernel: "fanout", Args: []string{"10", "2"}})
			if err != nil {
				t.Fatal(err)
			}
			vals, err = c.Wait(ctx, f)
			if err != nil || string(vals[0]) != "100" {
				t.Fatalf("fanout 10 2 = %q, %v; want 100", vals, err)
			}
		})
	}
}
