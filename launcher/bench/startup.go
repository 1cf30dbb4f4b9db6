package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"syscall"
	"time"

	"github.com/qlaunch/qlaunch/launcher/starttrace"
)

// runStartup runs Options.Launch Repeat times (after a warm-up, which
// also fills the page cache with the binary): the time from starting it
// to the first byte on its standard output is first-result, the time from
// there to its exit is shutdown.
func runStartup(ctx context.Context, r *runner) ([]Result, error) {
	if len(r.opts.Launch) == 0 {
		return nil, ErrNoLaunch
	}
	var first, shut []float64
	var secs []float64
	for i := 0; i <= r.opts.Repeat; i++ {
		r.progress("", i)
		f, s, err := launchOnce(ctx, r.opts.Launch, r.opts.Env, r.opts.StartTrace)
		if err != nil {
			return nil, err
		}
		if i > 0 {
			first = append(first, float64(f.Microseconds())/1e3)
			shut = append(shut, float64(s.Microseconds())/1e3)
			secs = append(secs, (f + s).Seconds())
		}
	}
	mk := func(variant string, ms []float64) Result {
		return Result{
			Workload: "startup", Variant: variant, Tasks: 1, Repeat: r.opts.Repeat,
			Seconds: statOf(append([]float64(nil), secs...)),
			Figures: []Figure{{Name: "ms", Stat: statOf(ms)}},
		}
	}
	return []Result{mk("first-result", first), mk("shutdown", shut)}, nil
}

// launchOnce runs argv once and returns the time to its first output byte
// and from there to its exit. With trace set, the moments go to that file
// (starttrace), the launched processes' too.
func launchOnce(ctx context.Context, argv, env []string, trace string) (first, shutdown time.Duration, err error) {
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), env...)
	mark := func(string) {}
	if trace != "" {
		cmd.Env = append(cmd.Env, starttrace.Env+"="+trace)
		mark = func(event string) { starttrace.MarkTo(trace, "bench", event) }
	}
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGINT) }
	cmd.WaitDelay = 10 * time.Second
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return 0, 0, err
	}
	mark(starttrace.Launch)
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		return 0, 0, fmt.Errorf("launch: %w", err)
	}
	var b [1]byte
	_, rerr := io.ReadFull(out, b[:])
	t1 := time.Now()
	mark("first output")
	_, _ = io.Copy(io.Discard, out)
	werr := cmd.Wait()
	t2 := time.Now()
	mark("exited")
	if werr != nil || rerr != nil {
		if werr == nil {
			werr = fmt.Errorf("no output: %w", rerr)
		}
		msg := bytes.TrimSpace(stderr.Bytes())
		if len(msg) > 2000 {
			msg = msg[len(msg)-2000:]
		}
		return 0, 0, fmt.Errorf("launch %v: %w: %s", argv, werr, msg)
	}
	return t1.Sub(t0), t2.Sub(t1), nil
}
