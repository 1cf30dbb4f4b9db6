package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/qlaunch/qlaunch/launcher"
	"github.com/qlaunch/qlaunch/launcher/wire"
)

// waitPoll is how often qlaunch wait asks again.
const waitPoll = 200 * time.Millisecond

// allocAskTimeout bounds the question for the allocations after a
// timeout.
const allocAskTimeout = 5 * time.Second

// maxWaitRanks bounds --ranks (the report names every missing rank).
const maxWaitRanks = 1 << 20

// cmdWait waits until the runtime's tree has joined: exit 0 as soon as it
// has, 1 after the timeout naming the ranks missing, their hosts and why.
func cmdWait(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet(e, "wait", "wait [--ip ADDR | --address-file F] [--ranks N] [--timeout D]\n\n"+
		"Exits 0 once every rank has joined: the server wrote its address file (a\n"+
		"server started from a plan does once every planned rank joined), or, with\n"+
		"--ip, the server answers and reports no rank missing; with --ranks N, once\n"+
		"N ranks (the server included) are in the tree. After the timeout it exits 1\n"+
		"naming each rank missing, its host and why (never connected; lost, when\n"+
		"and why), as the server reports them: a server waiting for its tree\n"+
		"writes its address to F.starting, where qlaunch wait finds it. It fails at\n"+
		"once when the process --pid names (the launcher of the ranks) exits first,\n"+
		"or a rank records its error in the rank error file ($QLAUNCH_ERROR_FILE),\n"+
		"quoting the first rank's error. A server with an [alloc] table adds its\n"+
		"allocations to the report (as qlaunch alloc list).")
	var cf clientFlags
	cf.add(fs)
	ranks := fs.Int("ranks", 0, "ranks to wait for, the server included (default: the whole tree)")
	timeout := fs.Duration("timeout", 60*time.Second, "give up after this long")
	pid := fs.Int("pid", 0, "the process that runs the ranks (srun, mpiexec: $! after starting it with &): fail at once when it exits first")
	errorFile := fs.String("error-file", "", "rank error file: fail at once, quoting its first line, when a rank records its error there (default: $"+errorFileEnv+")")
	if err := parseFlags(e, fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("wait: unexpected arguments %q", fs.Args())
	}
	if *ranks < 0 || *ranks > maxWaitRanks || *timeout <= 0 || *pid < 0 {
		return usagef("wait: --ranks must be in 0..%d, --timeout positive and --pid not negative", maxWaitRanks)
	}
	if *errorFile == "" {
		*errorFile = e.getenv(errorFileEnv)
	}
	outer := ctx
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	poll := time.NewTicker(waitPoll)
	defer poll.Stop()
	var since time.Time // with --pid, address files older than it are stale
	if *pid > 0 {
		since = processStart(*pid)
	}
	var last waitState
	for {
		st := waitOnce(ctx, e, &cf, *ranks, since)
		if st.ready {
			return nil
		}
		if err := runtimeGone(*pid, *errorFile); err != nil {
			fmt.Fprintf(e.stderr, "qlaunch: wait: %v\n", err)
			return exitStatus(1)
		}
		if st.err != nil && last.rows != nil && (ctx.Err() != nil ||
			errors.Is(st.err, os.ErrDeadlineExceeded) || errors.Is(st.err, context.DeadlineExceeded)) {
			// Cut short by the timeout: the previous look stands.
		} else if st.err == nil || last.rows == nil {
			last = st
		} else {
			last.err = st.err // keep the last rows seen, with the latest error
		}
		select {
		case <-ctx.Done():
			if err := context.Cause(ctx); !errors.Is(err, context.DeadlineExceeded) {
				return err // interrupted
			}
			fmt.Fprintf(e.stderr, "qlaunch: wait: timed out after %v: %s", *timeout, last.report(*ranks))
			if cf.ip == "" && e.getenv("QLAUNCH_ADDR") == "" {
				// A server that grows the job by itself ([alloc]): its
				// allocations say which ranks are still coming.
				actx, cancel := context.WithTimeout(outer, allocAskTimeout)
				writeAllocations(actx, e, e.stderr, "wait", addressFile(e, cf.addrFile, nil), cf.secretFile)
				cancel()
			}
			return exitStatus(1)
		case <-poll.C:
		}
	}
}

// waitState is what one look at the runtime found.
type waitState struct {
	ready bool
	addr  string // the server asked, "" when none was found
	rows  []wire.RankStatus
	err   error // why no status could be had
	// starting: the server was found through its starting file (it has
	// not written its address file)
	starting bool
}

// waitOnce finds the server (its address file, else the file it writes
// while it waits for its tree), asks for its status and says whether the
// tree is complete.
func waitOnce(ctx context.Context, e *env, cf *clientFlags, want int, since time.Time) waitState {
	direct := cf.ip != "" || e.getenv("QLAUNCH_ADDR") != ""
	path := addressFile(e, cf.addrFile, nil)
	dialFlags := *cf
	written := false  // the server wrote its address file: it is ready
	known := false    // ... and its process runs on this host
	starting := false // asking a server through its starting file: not ready
	if !direct {
		t, err := discover(e, "", path)
		var gone *goneError
		stale := "" // why the address file is not this runtime's
		switch {
		case err == nil && freshSince(path, since):
			written = true
			host, _ := os.Hostname()
			known = t.rec.PID > 0 && t.rec.Host == host
		case err == nil:
			stale = fmt.Sprintf(" (%s is older than the runtime: an earlier runtime's)", path)
		case errors.As(err, &gone):
			// Left by a runtime that is gone: a new one may be starting.
		}
		if !written {
			addr, serr := launcher.ReadAddressFile(launcher.StartingFile(path))
			switch {
			case serr == nil && freshSince(launcher.StartingFile(path), since):
				dialFlags.ip, starting = addr, true
			case gone != nil:
				return waitState{err: gone}
			default:
				return waitState{err: fmt.Errorf("the server has not written %s (not ready), nor %s (not started)%s; %s",
					path, launcher.StartingFile(path), stale, startHint)}
			}
		}
	}
	t, _ := discover(e, dialFlags.ip, dialFlags.addrFile)
	st := waitState{addr: t.addr}
	if written && known && want == 0 {
		st.ready = true
		return st
	}
	c, err := dialFlags.dial(ctx, e, nil)
	if gone := (*goneError)(nil); written && errors.As(err, &gone) {
		// The file names a runtime of another host that is gone: a new
		// one may be starting.
		if addr, serr := launcher.ReadAddressFile(launcher.StartingFile(path)); serr == nil && freshSince(launcher.StartingFile(path), since) {
			written, starting, dialFlags.ip, st.addr = false, true, addr, addr
			c, err = dialFlags.dial(ctx, e, nil)
		}
	}
	if err != nil {
		st.err = err
		return st
	}
	defer c.Close()
	rows, err := c.Status(ctx)
	if err != nil {
		st.err = err
		return st
	}
	st.rows, st.starting = rows, starting
	joined, absent := tally(rows)
	switch {
	case want > 0:
		st.ready = joined >= want
	case starting:
		// The server has not written its address file: not ready,
		// whatever it can tell of missing ranks (without a plan, nothing).
	case written:
		st.ready = true
	default:
		// Asked directly: complete when nothing the server knows of is
		// missing (a server with no plan knows only what it lost).
		st.ready = len(absent) == 0
	}
	return st
}

// tally returns the number of ranks in the tree and the rows of those
// missing or lost (one per rank, the latest loss), by rank.
func tally(rows []wire.RankStatus) (joined int, absent []wire.RankStatus) {
	in := map[int]bool{}
	for _, r := range rows {
		if r.State == wire.RankJoined && !in[r.Rank] {
			in[r.Rank] = true
			joined++
		}
	}
	latest := map[int]wire.RankStatus{}
	for _, r := range rows {
		if r.State == wire.RankJoined || in[r.Rank] {
			continue
		}
		if old, ok := latest[r.Rank]; !ok || r.Since > old.Since {
			latest[r.Rank] = r
		}
	}
	for _, r := range latest {
		absent = append(absent, r)
	}
	slices.SortFunc(absent, func(a, b wire.RankStatus) int { return a.Rank - b.Rank })
	return joined, absent
}

// report says what the last look found: the ranks missing, each with its
// host and why.
func (s waitState) report(want int) string {
	var b strings.Builder
	if s.rows == nil {
		var gone *goneError
		if errors.As(s.err, &gone) {
			fmt.Fprintf(&b, "%v\n", s.err)
		} else if s.addr != "" {
			fmt.Fprintf(&b, "no status from the server at %s: %v\n", s.addr, s.err)
		} else {
			fmt.Fprintf(&b, "no runtime found: %v\n", s.err)
		}
		return b.String()
	}
	joined, absent := tally(s.rows)
	if s.starting && want == 0 && len(absent) == 0 {
		fmt.Fprintf(&b, "the server at %s is not ready: %s joined so far, more are due (started without a plan, it cannot name them)", s.addr, plural(joined, "rank"))
		if s.err != nil {
			fmt.Fprintf(&b, " (as last seen; since then: %v)", s.err)
		}
		b.WriteString("\n")
		return b.String()
	}
	total := joined + len(absent)
	if want > 0 {
		total = max(want, joined)
	}
	fmt.Fprintf(&b, "%d of %d ranks joined", joined, total)
	if s.err != nil {
		fmt.Fprintf(&b, " (as last seen; since then: %v)", s.err)
	}
	b.WriteString("; missing:\n")
	listed := map[int]bool{}
	for _, r := range absent {
		listed[r.Rank] = true
		writeAbsent(&b, r)
	}
	if want > 0 {
		// Without a plan the server knows no rank it never saw: name the
		// numbers missing below N.
		in := map[int]bool{}
		for _, r := range s.rows {
			if r.State == wire.RankJoined {
				in[r.Rank] = true
			}
		}
		var unknown []string
		for r := range want {
			if !in[r] && !listed[r] {
				unknown = append(unknown, fmt.Sprint(r))
			}
		}
		if len(unknown) > 0 && len(listed)+joined < want {
			fmt.Fprintf(&b, "  rank(s) %s: never connected (host unknown: the server was started without a plan)\n", strings.Join(unknown, ", "))
		}
	}
	return b.String()
}

func writeAbsent(w io.Writer, r wire.RankStatus) {
	role := r.Role
	if role == "" {
		role = "rank"
	}
	switch r.State {
	case wire.RankLost:
		when := "at an unknown time"
		if r.Since != 0 {
			t := time.Unix(0, r.Since)
			when = fmt.Sprintf("at %s (%v ago)", t.Format("15:04:05.000"), time.Since(t).Round(100*time.Millisecond))
		}
		fmt.Fprintf(w, "  rank %d (%s) on %s: lost %s: %s\n", r.Rank, role, r.Host, when, r.Reason)
	default:
		reason := r.Reason
		if reason == "" {
			reason = "never connected"
		}
		fmt.Fprintf(w, "  rank %d (%s) on %s: %s\n", r.Rank, role, r.Host, reason)
	}
}
