package cli

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/qlaunch/qlaunch/launcher/wire"
)

// cmdDrain asks the server to drain ranks (by rank number or host) and
// waits until they have left.
func cmdDrain(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet(e, "drain", "drain [--ip ADDR] [--timeout D] [--no-wait] RANK|HOST|alloc:JOBID…\n\n"+
		"Drain ranks: they take no new task, hand their queued tasks back to be run\n"+
		"elsewhere, finish the tasks they run, then exit 0. A RANK is a rank number as\n"+
		"`qlaunch status` shows it; a HOST drains every rank on that host (the server's\n"+
		"own rank excepted); alloc:JOBID every rank of that allocation (the ALLOC column\n"+
		"of qlaunch status: a job that joined with --join). A drained manager drains its\n"+
		"whole subtree and leaves last.\n"+
		"`qlaunch status` shows the ranks that left as drained, not lost, and no task\n"+
		"is lost or failed. Waits until every rank named has left (at most --timeout);\n"+
		"exits 1 if one was lost instead.")
	var cf clientFlags
	cf.add(fs)
	timeout := fs.Duration("timeout", 10*time.Minute, "how long to wait for the ranks to leave")
	noWait := fs.Bool("no-wait", false, "return once the request is sent")
	if err := parseFlags(e, fs, args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return usagef("drain: name at least one RANK, HOST or alloc:JOBID (see qlaunch status)")
	}
	c, err := cf.dial(ctx, e, nil)
	if err != nil {
		return err
	}
	defer c.Close()
	rows, err := c.Status(ctx)
	if err != nil {
		return fmt.Errorf("drain: asking the tree's status: %w", err)
	}
	ranks, err := drainTargets(rows, fs.Args())
	if err != nil {
		return err
	}
	if err := c.Drain(ranks); err != nil {
		return fmt.Errorf("drain: %w", err)
	}
	if *noWait {
		// Status round-trips after the drain request: once it answers,
		// the server has the request.
		if _, err := c.Status(ctx); err != nil {
			return fmt.Errorf("drain: %w", err)
		}
		fmt.Fprintf(e.stdout, "draining ranks %s\n", joinInts(ranks))
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		rows, err := c.Status(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("drain: ranks %s did not leave within --timeout %v", joinInts(ranks), *timeout)
			}
			return fmt.Errorf("drain: %w", err)
		}
		left, err := drainLeft(rows, ranks)
		if err != nil {
			return err
		}
		if left {
			fmt.Fprintf(e.stdout, "drained ranks %s\n", joinInts(ranks))
			return nil
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return fmt.Errorf("drain: ranks %s did not leave within --timeout %v", joinInts(ranks), *timeout)
		}
	}
}

// drainTargets resolves RANK and HOST arguments to the rank numbers of
// joined ranks of the tree (the server excepted), sorted.
func drainTargets(rows []wire.RankStatus, args []string) ([]int, error) {
	var out []int
	for _, a := range args {
		if r, err := strconv.Atoi(a); err == nil {
			i := slices.IndexFunc(rows, func(s wire.RankStatus) bool { return s.Rank == r && s.State == wire.RankJoined })
			switch {
			case i < 0:
				return nil, usagef("drain: rank %d is not in the tree (qlaunch status lists the ranks)", r)
			case rows[i].Parent < 0:
				return nil, usagef("drain: rank %d is the server, which cannot be drained (stop the runtime instead)", r)
			}
			out = append(out, r)
			continue
		}
		job, isAlloc := strings.CutPrefix(a, "alloc:")
		n := 0
		for _, s := range rows {
			match := s.Host == a
			if isAlloc {
				match = s.Alloc == job
			}
			if match && s.State == wire.RankJoined && s.Parent >= 0 {
				out = append(out, s.Rank)
				n++
			}
		}
		if n == 0 && isAlloc {
			return nil, usagef("drain: no rank to drain in allocation %q (qlaunch status lists the allocations in its ALLOC column; the server's own rank is never drained)", job)
		}
		if n == 0 {
			return nil, usagef("drain: no rank to drain on host %q (qlaunch status lists the hosts; the server's own rank is never drained)", a)
		}
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// drainLeft reports whether every rank of ranks has left the tree; a rank
// lost instead of drained is an error.
func drainLeft(rows []wire.RankStatus, ranks []int) (bool, error) {
	state := make(map[int]wire.RankStatus, len(rows))
	for _, r := range rows {
		if old, ok := state[r.Rank]; !ok || old.State != wire.RankJoined {
			state[r.Rank] = r
		}
	}
	for _, r := range ranks {
		s, ok := state[r]
		switch {
		case !ok || s.State == wire.RankDrained:
		case s.State == wire.RankLost:
			return false, fmt.Errorf("drain: rank %d on %s was lost while draining: %s", r, s.Host, s.Reason)
		default:
			return false, nil
		}
	}
	return true, nil
}
