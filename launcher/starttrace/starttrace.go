// Package starttrace records the moments of a runtime's start-up and
// shutdown across its processes, for finding where the time of
// "qlaunch run TOPOLOGY -- CMD" goes before the first result and after it.
//
// When $QLAUNCH_TRACE_STARTUP names a file, every call of Mark in every
// process that inherited the variable (qlaunch run, its worker ranks, the
// client CMD, qlaunch bench) appends one line to it:
//
//	UNIX_NANOSECONDS PID ROLE EVENT…
//
// with one write on a file opened O_APPEND, so that the lines of several
// processes never interleave within a line. The wall clock is the one
// clock every process of one machine shares. Without the variable Mark
// costs one environment look-up.
//
// Parse reads such a file back and Breakdown lines the runs of
// "qlaunch bench --workload startup" up against each run's launch: the
// median time of each moment after it (qlaunch bench --trace-startup
// prints that table).
package starttrace

import (
	"bufio"
	"cmp"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Env is the environment variable naming the trace file.
const Env = "QLAUNCH_TRACE_STARTUP"

// Launch is the event qlaunch bench marks (role "bench") just before it
// starts a launch: each one begins a run in Breakdown.
const Launch = "launch"

// Mark appends the moment event of role to the file $QLAUNCH_TRACE_STARTUP
// names, if it names one. Errors are ignored: tracing never fails the
// runtime.
func Mark(role, event string) {
	path := os.Getenv(Env)
	if path == "" {
		return
	}
	MarkTo(path, role, event)
}

// MarkTo is Mark with the file given.
func MarkTo(path, role, event string) {
	line := Format(Record{At: time.Now().UnixNano(), PID: os.Getpid(), Role: role, Event: event})
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return
	}
	_, _ = f.WriteString(line)
	_ = f.Close()
}

// Record is one line of a trace.
type Record struct {
	At    int64 // wall clock, Unix nanoseconds
	PID   int
	Role  string // one word: bench, run, server, worker, submit, …
	Event string // the rest of the line
}

// Format is r as a line of the trace file, newline included. A role's
// spaces and an event's line breaks become underscores and spaces, so
// that the line parses back.
func Format(r Record) string {
	role := strings.Map(func(c rune) rune {
		if c == ' ' || c == '\n' || c == '\r' || c == '\t' {
			return '_'
		}
		return c
	}, r.Role)
	if role == "" {
		role = "_"
	}
	event := strings.Map(func(c rune) rune {
		if c == '\n' || c == '\r' {
			return ' '
		}
		return c
	}, r.Event)
	return fmt.Sprintf("%d %d %s %s\n", r.At, r.PID, role, event)
}

// ErrSyntax is the error of a line that is not "NANOS PID ROLE EVENT".
var ErrSyntax = errors.New("starttrace: bad line")

// Parse reads a trace. A bad line is an error naming its number; name is
// the trace's name in it.
func Parse(r io.Reader, name string) ([]Record, error) {
	var out []Record
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if strings.TrimSpace(line) == "" {
			continue
		}
		f := strings.SplitN(line, " ", 4)
		if len(f) < 4 {
			return nil, fmt.Errorf("%w: %s:%d: %q: want UNIX_NANOSECONDS PID ROLE EVENT", ErrSyntax, name, n, line)
		}
		at, err1 := strconv.ParseInt(f[0], 10, 64)
		pid, err2 := strconv.Atoi(f[1])
		if err1 != nil || err2 != nil || f[2] == "" {
			return nil, fmt.Errorf("%w: %s:%d: %q: want UNIX_NANOSECONDS PID ROLE EVENT", ErrSyntax, name, n, line)
		}
		out = append(out, Record{At: at, PID: pid, Role: f[2], Event: f[3]})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("starttrace: %s: %w", name, err)
	}
	return out, nil
}

// Step is one moment of a Breakdown: the median time of "ROLE EVENT"
// after each run's launch, over the runs that had it.
type Step struct {
	Role, Event string
	Median      time.Duration
	Runs        int
}

// Breakdown splits records (in file order) into runs, each beginning at
// a "bench launch" record, and returns each moment's median time after
// its run's launch, the earliest first. Runs before skip (a warm-up) are
// left out. Within a run only the first record of a role and event
// counts. Records before the first launch are left out.
func Breakdown(records []Record, skip int) []Step {
	type key struct{ role, event string }
	offsets := make(map[key][]time.Duration)
	var order []key
	run := -1
	var t0 int64
	var seen map[key]bool
	for _, r := range records {
		if r.Role == "bench" && r.Event == Launch {
			run++
			t0 = r.At
			seen = make(map[key]bool)
		}
		if run < skip {
			continue
		}
		k := key{r.Role, r.Event}
		if seen[k] {
			continue
		}
		seen[k] = true
		if _, ok := offsets[k]; !ok {
			order = append(order, k)
		}
		offsets[k] = append(offsets[k], time.Duration(r.At-t0))
	}
	steps := make([]Step, 0, len(order))
	for _, k := range order {
		d := offsets[k]
		slices.Sort(d)
		med := d[len(d)/2]
		if len(d)%2 == 0 {
			med = (d[len(d)/2-1] + d[len(d)/2]) / 2
		}
		steps = append(steps, Step{Role: k.role, Event: k.event, Median: med, Runs: len(d)})
	}
	slices.SortStableFunc(steps, func(a, b Step) int { return cmp.Compare(a.Median, b.Median) })
	return steps
}

// WriteBreakdown writes steps as a table: each moment's median time after
// the launch and the time since the moment before it.
func WriteBreakdown(w io.Writer, steps []Step) error {
	if _, err := fmt.Fprintf(w, "%10s %10s  %-8s %s\n", "AT ms", "+ms", "ROLE", "EVENT (median over runs)"); err != nil {
		return err
	}
	var prev time.Duration
	for _, s := range steps {
		if _, err := fmt.Fprintf(w, "%10.2f %10.2f  %-8s %s\n", ms(s.Median), ms(s.Median-prev), s.Role, s.Event); err != nil {
			return err
		}
		prev = s.Median
	}
	return nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1e3 }
