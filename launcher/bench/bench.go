package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"time"

	"github.com/qlaunch/qlaunch/launcher/client"
)

// Defaults of Options.
const (
	DefaultRepeat  = 5
	DefaultPayload = 1 << 20
)

var (
	// ErrUnknownWorkload is returned by Run for a name Workloads lacks.
	ErrUnknownWorkload = errors.New("bench: unknown workload")
	// ErrNoClient is returned by Run for a workload that needs a runtime
	// when it was given no client.
	ErrNoClient = errors.New("bench: workload needs a runtime, and no client was given")
	// ErrNoLaunch is returned by the startup workload without
	// Options.Launch.
	ErrNoLaunch = errors.New("bench: startup needs a launch command")
	// ErrNoHop is returned by the chain workload without Options.Hop.
	ErrNoHop = errors.New("bench: chain needs the hop command (qlaunch bench-hop)")
	// ErrHopUsage is returned by ServeHop for arguments it does not know.
	ErrHopUsage = errors.New("bench: bench-hop usage")
)

// Options adjust a run. Zero values mean defaults.
type Options struct {
	// Tasks is N, the size of a workload; zero means its default
	// (Workload.DefaultTasks). nested always runs 100 × 100.
	Tasks int
	// Payload is the size in bytes of each payload task; default 1 MiB.
	Payload int
	// Repeat is the number of measured runs, after one warm-up.
	Repeat int
	// Launch is the command the startup workload runs, with Env added
	// to this process's environment: it must start a runtime, get one
	// result, write it to its standard output and exit (qlaunch run
	// TOPOLOGY -- qlaunch submit echo ready).
	Launch []string
	Env    []string
	// StartTrace, if set, is the file the startup workload's runs record
	// their moments in (package starttrace): the launch, its first
	// output and its exit here, and every moment of its processes, which
	// get it as $QLAUNCH_TRACE_STARTUP.
	StartTrace string
	// Hop is the command that runs one process of the chain workload
	// (ServeHop): the qlaunch binary and HopArg.
	Hop []string
	// Progress, if not nil, receives a progress line per repeat, each
	// starting with a carriage return, and a final line-clearing
	// sequence: meant for a terminal.
	Progress io.Writer
}

func (o Options) withDefaults() Options {
	if o.Repeat <= 0 {
		o.Repeat = DefaultRepeat
	}
	if o.Payload <= 0 {
		o.Payload = DefaultPayload
	}
	return o
}

// Stat is the minimum, median and maximum of a figure over the repeats.
type Stat struct {
	Min, Median, Max float64
}

// statOf summarises xs (not empty); it sorts xs.
func statOf(xs []float64) Stat {
	slices.Sort(xs)
	return Stat{Min: xs[0], Median: median(xs), Max: xs[len(xs)-1]}
}

// median of sorted xs: the mean of the two middle values when even.
func median(xs []float64) float64 {
	n := len(xs)
	if n%2 == 1 {
		return xs[n/2]
	}
	return (xs[n/2-1] + xs[n/2]) / 2
}

// Figure is one named figure of a result, such as tasks_per_s.
type Figure struct {
	Name string
	Stat Stat
}

// Result is the outcome of one workload (or one variant of it).
type Result struct {
	Workload string
	Variant  string // "" when the workload has one
	Tasks    int
	Repeat   int
	Seconds  Stat // wall time of one repeat
	Figures  []Figure
}

// Name is the workload and its variant, joined by a slash.
func (r Result) Name() string {
	if r.Variant == "" {
		return r.Workload
	}
	return r.Workload + "/" + r.Variant
}

// Figure returns the figure called name.
func (r Result) Figure(name string) (Stat, bool) {
	for _, f := range r.Figures {
		if f.Name == name {
			return f.Stat, true
		}
	}
	return Stat{}, false
}

// Workload is one workload of the suite.
type Workload struct {
	Name         string
	Doc          string
	DefaultTasks int
	// NeedsClient is false for the workloads that run without a
	// runtime (loopback, chain, startup).
	NeedsClient bool
	run         func(ctx context.Context, r *runner) ([]Result, error)
}

// Workloads returns the suite in the order "all" runs it: the baseline
// first.
func Workloads() []Workload {
	return []Workload{
		{"loopback", "raw TCP over 127.0.0.1 in this process: round trip, pipelined messages, bulk", 1000000, false, runLoopback},
		{"chain", "raw TCP through three processes (this one, a relay, an echo) as a task travels: round trip, bulk", 0, false, runChain},
		{"tiny", "one task maps N noop children inside the runtime (fanout N 1)", 10000, true, runTiny},
		{"client-map", "the client maps N noop tasks", 10000, true, runClientMap},
		{"latency", "N sequential submit → result round trips of noop", 2000, true, runLatency},
		{"payload", "N tasks carrying --payload bytes (random, repetitive), returning their length", 200, true, runPayload},
		{"nested", "a task maps 100 children each mapping 100 noop grandchildren", 10100, true, runNested},
		{"startup", "qlaunch run TOPOLOGY -- qlaunch submit echo ready: launch to first result, and shutdown", 1, false, runStartup},
	}
}

// Lookup returns the workload called name.
func Lookup(name string) (Workload, bool) {
	for _, w := range Workloads() {
		if w.Name == name {
			return w, true
		}
	}
	return Workload{}, false
}

// Run runs the workload called name against the runtime of c (nil for
// loopback and startup) and returns its results, one per variant.
func Run(ctx context.Context, c *client.Client, name string, opts Options) ([]Result, error) {
	w, ok := Lookup(name)
	if !ok {
		return nil, fmt.Errorf("%w %q", ErrUnknownWorkload, name)
	}
	if w.NeedsClient && c == nil {
		return nil, fmt.Errorf("%s: %w", name, ErrNoClient)
	}
	opts = opts.withDefaults()
	r := &runner{c: c, opts: opts, w: w, tasks: opts.Tasks}
	if r.tasks <= 0 {
		r.tasks = w.DefaultTasks
	}
	res, err := w.run(ctx, r)
	r.clearProgress()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return res, nil
}

// runner carries one workload's run.
type runner struct {
	c     *client.Client
	opts  Options
	w     Workload
	tasks int
}

func (r *runner) progress(variant string, i int) {
	if r.opts.Progress == nil {
		return
	}
	name := r.w.Name
	if variant != "" {
		name += "/" + variant
	}
	if i == 0 {
		fmt.Fprintf(r.opts.Progress, "\r\033[K%s: warm-up", name)
		return
	}
	fmt.Fprintf(r.opts.Progress, "\r\033[K%s: %d/%d", name, i, r.opts.Repeat)
}

func (r *runner) clearProgress() {
	if r.opts.Progress != nil {
		fmt.Fprint(r.opts.Progress, "\r\033[K")
	}
}

// sample is what one measured repeat gives: its wall time and figures, in
// the same order at every repeat.
type sample struct {
	seconds float64
	figures []Figure // Stat.Median holds the repeat's value
}

// repeat runs once to warm up, then opts.Repeat times, and summarises.
func (r *runner) repeat(variant string, tasks int, once func() (sample, error)) (Result, error) {
	var samples []sample
	for i := 0; i <= r.opts.Repeat; i++ {
		r.progress(variant, i)
		s, err := once()
		if err != nil {
			return Result{}, err
		}
		if i > 0 {
			samples = append(samples, s)
		}
	}
	res := Result{Workload: r.w.Name, Variant: variant, Tasks: tasks, Repeat: r.opts.Repeat}
	secs := make([]float64, len(samples))
	for i, s := range samples {
		secs[i] = s.seconds
	}
	res.Seconds = statOf(secs)
	for j, f := range samples[0].figures {
		xs := make([]float64, len(samples))
		for i, s := range samples {
			xs[i] = s.figures[j].Stat.Median
		}
		res.Figures = append(res.Figures, Figure{Name: f.Name, Stat: statOf(xs)})
	}
	return res, nil
}

// fig is a one-repeat figure.
func fig(name string, v float64) Figure { return Figure{Name: name, Stat: Stat{v, v, v}} }

// rate is a throughput sample: n per second over d.
func rate(name string, n int, d time.Duration) sample {
	s := d.Seconds()
	return sample{seconds: s, figures: []Figure{fig(name, float64(n)/s)}}
}

// quantile of sorted ds at q in [0, 1], nearest rank.
func quantile(ds []time.Duration, q float64) time.Duration {
	i := int(math.Ceil(q*float64(len(ds)))) - 1
	return ds[min(max(i, 0), len(ds)-1)]
}

func micros(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 }
