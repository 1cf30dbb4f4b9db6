package main

import (
	"context"
	"fmt"
	"sort"
	"time"
)

// cmdWait waits until the runtime's tree has joined.
func cmdWait(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet(e, "wait", "wait [--ip ADDR | --address-file F] [--ranks N] [--timeout D]")
	var cf clientFlags
	cf.add(fs)
	ranks := fs.Int("ranks", 0, "ranks to wait for, the server included (default: the server's own readiness)")
	timeout := fs.Duration("timeout", 60*time.Second, "give up after this long")
	if err := parseFlags(e, fs, args); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	// The address file appears once the server is ready; before that,
	// and until the tree has the ranks asked for, poll.
	poll := time.NewTicker(50 * time.Millisecond)
	defer poll.Stop()
	var seen []int
	for {
		if ok, got := waitOnce(ctx, e, &cf, *ranks); ok {
			return nil
		} else if got != nil {
			seen = got
		}
		select {
		case <-ctx.Done():
			if *ranks > 0 {
				fmt.Fprintf(e.stderr, "qlaunch: wait: timed out after %v: %d of %d ranks joined; missing ranks: %v\n",
					*timeout, len(seen), *ranks, missing(seen, *ranks))
			} else {
				fmt.Fprintf(e.stderr, "qlaunch: wait: timed out after %v: no runtime is ready\n", *timeout)
			}
			return exitStatus(1)
		case <-poll.C:
		}
	}
}

func waitOnce(ctx context.Context, e *env, cf *clientFlags, want int) (bool, []int) {
	c, err := cf.dial(ctx, e, nil)
	if err != nil {
		return false, nil
	}
	defer c.Close()
	if want <= 0 {
		return true, nil
	}
	st, err := c.Status(ctx)
	if err != nil {
		return false, nil
	}
	var got []int
	for _, r := range st {
		got = append(got, r.Rank)
	}
	sort.Ints(got)
	return len(got) >= want, got
}

func missing(seen []int, want int) []int {
	have := map[int]bool{}
	for _, r := range seen {
		have[r] = true
	}
	var out []int
	for r := range want {
		if !have[r] {
			out = append(out, r)
		}
	}
	return out
}
