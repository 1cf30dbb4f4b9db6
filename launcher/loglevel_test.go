package launcher

import (
	"context"
	"log/slog"
	"testing"
)

// TestTaskRuntimeLogLevel: LogLevel says exactly which levels the task's
// Logger forwards, for every level the client may ask and depths that
// forward or not.
func TestTaskRuntimeLogLevel(t *testing.T) {
	for _, asked := range []int{-8, -4, -1, 0, 3, 4, 8, 12} {
		for _, depth := range []int{-1, 0, 1, 3} {
			rt := &taskRuntime{w: &worker{}, t: &task{logLevel: asked, logDepth: depth}}
			lowest, on := rt.LogLevel()
			for l := slog.Level(-12); l <= 16; l++ {
				want := rt.Logger().Enabled(context.Background(), l)
				if got := on && l >= lowest; got != want {
					t.Errorf("asked %d, depth %d: level %d forwarded per LogLevel %v, per the Logger %v", asked, depth, l, got, want)
				}
			}
		}
	}
}
