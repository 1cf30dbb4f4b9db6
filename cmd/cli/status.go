package cli

import (
	"cmp"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"golang.org/x/term"

	"github.com/qlaunch/qlaunch/launcher/client"
	"github.com/qlaunch/qlaunch/launcher/wire"
)

// watchFlag is --watch: a switch ("--watch") that may carry the refresh
// interval ("--watch=2s").
type watchFlag struct {
	on       bool
	interval time.Duration
}

func (w *watchFlag) String() string {
	if !w.on {
		return "false"
	}
	return w.interval.String()
}

func (w *watchFlag) IsBoolFlag() bool { return true }

func (w *watchFlag) Set(s string) error {
	if b, err := strconv.ParseBool(s); err == nil {
		w.on = b
		return nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return fmt.Errorf("want true, false or a positive interval such as 2s")
	}
	w.on, w.interval = true, d
	return nil
}

// flagGiven reports whether the flag name was set on the command line.
func flagGiven(fs *flag.FlagSet, name string) bool {
	given := false
	fs.Visit(func(f *flag.Flag) { given = given || f.Name == name })
	return given
}

// cmdStatus prints the runtime's tree, once or, with --watch, every
// interval: refreshed in place on a terminal, as plain text blocks (or
// JSON lines) otherwise.
func cmdStatus(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet(e, "status", "status [--ip ADDR] [--watch[=D]] [--interval D] [--format text|json]\n\n"+
		"One line per rank: its role, host and state, worker slots busy and idle\n"+
		"(a manager's or the server's: those of its subtree), tasks queued, running\n"+
		"and done, tasks per second since the previous refresh (with --watch) and how\n"+
		"long its parent has not heard from it (its last heartbeat's age). Ranks the\n"+
		"server expected from the job's plan and has not got show as missing or lost.\n"+
		"A worker rank its manager restarted shows how many times (RESTARTS).\n"+
		"A server with an [alloc] table adds its allocations (as qlaunch alloc list).\n"+
		"--format json prints one JSON object ({\"time\":…,\"ranks\":[…]}); with --watch,\n"+
		"one a line.")
	var cf clientFlags
	cf.add(fs)
	format := fs.String("format", "text", "output format: text or json")
	watch := watchFlag{interval: time.Second}
	fs.Var(&watch, "watch", "refresh every --interval until interrupted (--watch=D sets the interval)")
	interval := fs.Duration("interval", 0, "refresh interval of --watch (default 1s)")
	if err := parseFlags(e, fs, args); err != nil {
		return err
	}
	if *format != "text" && *format != "json" {
		return usagef("status: unknown format %q", *format)
	}
	if fs.NArg() > 0 {
		// "--watch 1s": the interval goes after "=" (or in --interval).
		if d, err := time.ParseDuration(fs.Arg(0)); err == nil && d > 0 && flagGiven(fs, "watch") {
			return usagef("status: --watch takes its interval after \"=\": write --watch=%s (or --watch --interval %s)", fs.Arg(0), fs.Arg(0))
		}
		return usagef("status: unexpected arguments %q", fs.Args())
	}
	if *interval < 0 {
		return usagef("status: --interval must be positive")
	}
	if *interval > 0 {
		watch.interval = *interval
	}
	c, err := cf.dial(ctx, e, nil)
	if err != nil {
		return err
	}
	defer c.Close()
	if !watch.on {
		snap, err := takeStatus(ctx, c, nil)
		if err != nil {
			return err
		}
		if err := writeStatus(e.stdout, snap, *format, true); err != nil {
			return err
		}
		if *format == "text" && cf.ip == "" && e.getenv("QLAUNCH_ADDR") == "" {
			// A server that grows the job by itself: its allocations too.
			writeAllocations(ctx, e, e.stdout, "status", addressFile(e, cf.addrFile, nil), cf.secretFile)
		}
		return nil
	}
	live := *format == "text" && stdoutTerminal(e)
	tick := time.NewTicker(watch.interval)
	defer tick.Stop()
	var prev *statusSnapshot
	for {
		snap, err := takeStatus(ctx, c, prev)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		var buf strings.Builder
		if live {
			buf.WriteString("\x1b[H\x1b[2J") // home, clear: redraw in place
		}
		if *format == "text" {
			fmt.Fprintf(&buf, "%s  every %v\n", snap.Time.Format("2006-01-02 15:04:05"), watch.interval)
		}
		if err := writeStatus(&buf, snap, *format, false); err != nil {
			return err
		}
		if *format == "text" && !live {
			buf.WriteString("\n")
		}
		if _, err := io.WriteString(e.stdout, buf.String()); err != nil {
			return err
		}
		prev = &snap
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

func stdoutTerminal(e *env) bool {
	f, ok := e.stdout.(*os.File)
	return ok && term.IsTerminal(int(f.Fd())) && e.getenv("TERM") != "dumb"
}

// statusRank is one rank's line of qlaunch status (and its JSON).
type statusRank struct {
	Rank   int    `json:"rank"`
	Parent int    `json:"parent"`
	Depth  int    `json:"depth"`
	Role   string `json:"role"`
	Host   string `json:"host"`
	State  string `json:"state"` // joined, missing, lost
	// Slots, Busy and Idle are a worker rank's slots; for the server and
	// managers, the sums over their subtree.
	Slots   int    `json:"slots"`
	Busy    int    `json:"busy"`
	Idle    int    `json:"idle"`
	Queued  int    `json:"queued"`
	Running int    `json:"running"`
	Done    uint64 `json:"done"`
	// TasksPerSecond is the rate of Done since the previous refresh
	// (--watch); absent on the first.
	TasksPerSecond *float64 `json:"tasks_per_second,omitempty"`
	// HeartbeatAge is how long the rank's parent had not heard from it.
	HeartbeatAge float64 `json:"heartbeat_age_seconds"`
	LostAt       string  `json:"lost_at,omitempty"` // RFC 3339, lost ranks
	Reason       string  `json:"reason,omitempty"`  // missing and lost ranks
	// Alloc is the allocation (job id) the rank runs in, when the rank
	// knows one: the ranks of a job that joined carry their own.
	Alloc string `json:"alloc,omitempty"`
	// Restarts is how many times the rank's parent started the rank's
	// process again after it died ([workers] restarts, qlaunch manager
	// --restarts); 0 for a rank never restarted or not supervised.
	Restarts int `json:"restarts"`
}

// statusSnapshot is one status of the tree.
type statusSnapshot struct {
	Time  time.Time    `json:"time"`
	Ranks []statusRank `json:"ranks"`
}

// takeStatus asks the tree for its status; with prev, it adds each rank's
// rate since then.
func takeStatus(ctx context.Context, c *client.Client, prev *statusSnapshot) (statusSnapshot, error) {
	rows, err := c.Status(ctx)
	if err != nil {
		return statusSnapshot{}, err
	}
	return makeSnapshot(time.Now(), rows, prev), nil
}

// makeSnapshot turns a status reply into lines: subtree sums for relays,
// rates against prev.
func makeSnapshot(now time.Time, rows []wire.RankStatus, prev *statusSnapshot) statusSnapshot {
	snap := statusSnapshot{Time: now, Ranks: make([]statusRank, 0, len(rows))}
	index := map[int]int{} // rank → line of its joined row
	for _, r := range rows {
		l := statusRank{
			Rank: r.Rank, Parent: r.Parent, Depth: r.Depth, Role: r.Role, Host: r.Host, State: r.State.String(),
			Queued: r.Queued, Done: r.Done, HeartbeatAge: r.Silent.Seconds(), Reason: r.Reason, Alloc: r.Alloc,
			Restarts: r.Restarts,
		}
		if r.Since != 0 {
			l.LostAt = time.Unix(0, r.Since).UTC().Format(time.RFC3339Nano)
		}
		if r.State == wire.RankJoined {
			if r.Role == "worker" {
				l.Slots, l.Busy, l.Idle, l.Running = r.Slots, r.Busy, r.Slots-r.Busy, r.Busy
			}
			if _, dup := index[r.Rank]; !dup {
				index[r.Rank] = len(snap.Ranks)
			}
		}
		snap.Ranks = append(snap.Ranks, l)
	}
	// Add each worker rank's slots to its ancestors' (bounded: a parent
	// chain longer than the tree is a cycle).
	for _, r := range snap.Ranks {
		if r.State != "joined" || r.Role != "worker" {
			continue
		}
		p := r.Parent
		for hops := 0; hops < len(snap.Ranks); hops++ {
			i, ok := index[p]
			if !ok || p == r.Rank {
				break
			}
			a := &snap.Ranks[i]
			a.Slots += r.Slots
			a.Busy += r.Busy
			a.Idle += r.Idle
			a.Running += r.Running
			p = a.Parent
		}
	}
	if prev != nil {
		dt := now.Sub(prev.Time).Seconds()
		before := map[int]uint64{}
		for _, r := range prev.Ranks {
			if r.State == "joined" {
				before[r.Rank] = r.Done
			}
		}
		for i := range snap.Ranks {
			r := &snap.Ranks[i]
			if d, ok := before[r.Rank]; ok && r.State == "joined" && dt > 0 && r.Done >= d {
				rate := float64(r.Done-d) / dt
				r.TasksPerSecond = &rate
			}
		}
	}
	return snap
}

// writeStatus prints snap as a table or as JSON (indented, or one line
// for --watch).
func writeStatus(w io.Writer, snap statusSnapshot, format string, indent bool) error {
	if format == "json" {
		enc := json.NewEncoder(w)
		if indent {
			enc.SetIndent("", "  ")
		}
		return enc.Encode(snap)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	// The allocation column shows when a rank knows its allocation.
	allocs := slices.ContainsFunc(snap.Ranks, func(r statusRank) bool { return r.Alloc != "" })
	// The restarts column shows when a rank was restarted.
	restarts := slices.ContainsFunc(snap.Ranks, func(r statusRank) bool { return r.Restarts > 0 })
	// tail returns row r's optional columns.
	tail := func(r statusRank) string {
		var b strings.Builder
		if restarts {
			b.WriteString("\t" + strconv.Itoa(r.Restarts))
		}
		if allocs {
			b.WriteString("\t" + cmp.Or(r.Alloc, "-"))
		}
		return b.String()
	}
	fmt.Fprint(tw, "RANK\tROLE\tHOST\tSTATE\tSLOTS\tBUSY\tIDLE\tQUEUED\tRUNNING\tDONE\tTASKS/S\tHEARTBEAT")
	if restarts {
		fmt.Fprint(tw, "\tRESTARTS")
	}
	if allocs {
		fmt.Fprint(tw, "\tALLOC")
	}
	fmt.Fprintln(tw)
	for _, r := range snap.Ranks {
		indent := strings.Repeat("  ", r.Depth)
		if r.State != "joined" {
			why := r.Reason
			if r.LostAt != "" {
				if t, err := time.Parse(time.RFC3339Nano, r.LostAt); err == nil {
					why = "at " + t.Local().Format("15:04:05") + ": " + why
				}
			}
			fmt.Fprintf(tw, "%s%d\t%s\t%s\t%s\t-\t-\t-\t-\t-\t-\t-\t%s%s\n", indent, r.Rank, r.Role, r.Host, r.State, why, tail(r))
			continue
		}
		rate := "-"
		if r.TasksPerSecond != nil {
			rate = strconv.FormatFloat(*r.TasksPerSecond, 'f', 1, 64)
		}
		beat := "-"
		if r.Parent >= 0 {
			beat = (time.Duration(r.HeartbeatAge * float64(time.Second))).Round(time.Millisecond).String() + " ago"
		}
		fmt.Fprintf(tw, "%s%d\t%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%s\t%s%s\n", indent, r.Rank, r.Role, r.Host, r.State,
			r.Slots, r.Busy, r.Idle, r.Queued, r.Running, r.Done, rate, beat, tail(r))
	}
	return tw.Flush()
}
