package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/qlaunch/qlaunch/launcher/bench"
	"github.com/qlaunch/qlaunch/launcher/client"
	"github.com/qlaunch/qlaunch/launcher/starttrace"
	"golang.org/x/sys/unix"
)

// cmdBench measures the runtime on the standard workloads (package
// launcher/bench) and prints a table or JSON lines.
func cmdBench(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet(e, "bench", "bench [--ip ADDR] [--workload NAME] [--tasks N] [--payload BYTES] [--repeat R] [--format text|json]")
	var cf clientFlags
	cf.add(fs)
	var names []string
	for _, w := range bench.Workloads() {
		names = append(names, w.Name)
	}
	workload := fs.String("workload", "all", "workload to run: "+strings.Join(names, ", ")+" or all")
	tasks := fs.Int("tasks", 0, "tasks per run (default: the workload's own)")
	payload := fs.Int("payload", bench.DefaultPayload, "bytes per task of the payload workload")
	repeat := fs.Int("repeat", bench.DefaultRepeat, "measured runs of each workload, after one warm-up")
	format := fs.String("format", "text", "output format: text or json")
	topo := fs.String("topology", "configs/local.toml", "topology the startup workload launches with qlaunch run")
	traceStart := fs.Bool("trace-startup", false, "startup: also print where the time of a launch goes (each moment of its processes, median ms after the launch), to standard error")
	if err := parseFlags(e, fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("bench: unexpected argument %q", fs.Arg(0))
	}
	if *format != "text" && *format != "json" {
		return usagef("bench: unknown format %q", *format)
	}
	if *tasks < 0 || *payload <= 0 || *repeat <= 0 {
		return usagef("bench: --tasks must be ≥ 0, --payload and --repeat > 0")
	}
	run := names
	if *workload != "all" {
		if _, ok := bench.Lookup(*workload); !ok {
			return usagef("bench: unknown workload %q (want one of %s or all)", *workload, strings.Join(names, ", "))
		}
		run = []string{*workload}
	}
	opts := bench.Options{Tasks: *tasks, Payload: *payload, Repeat: *repeat}
	if isTerminal(e.stdout) {
		opts.Progress = e.stderr
	}

	var c *client.Client
	for _, name := range run {
		if w, _ := bench.Lookup(name); w.NeedsClient {
			var err error
			if c, err = cf.dial(ctx, e, nil); err != nil {
				return fmt.Errorf("bench: %w", err)
			}
			defer c.Close()
			break
		}
	}
	e.awaitSignals() // the chain and startup workloads start processes
	if slices.Contains(run, "chain") {
		exe, err := os.Executable()
		if err != nil {
			return fmt.Errorf("bench: %w", err)
		}
		opts.Hop = []string{exe, bench.HopArg}
	}
	if slices.Contains(run, "startup") {
		launch, env, cleanup, err := startupCommand(*topo)
		if err != nil {
			return err
		}
		defer cleanup()
		opts.Launch, opts.Env = launch, env
		if *traceStart {
			opts.StartTrace = filepath.Join(filepath.Dir(strings.TrimPrefix(env[0], "QLAUNCH_ADDRESS_FILE=")), "trace")
		}
	}

	h, err := bench.NewHeader(ctx, c)
	if err != nil {
		return err
	}
	var table *bench.TableWriter
	if *format == "json" {
		err = bench.WriteHeaderJSON(e.stdout, h)
	} else {
		err = bench.WriteHeader(e.stdout, h)
		table = bench.NewTableWriter(e.stdout)
	}
	if err != nil {
		return err
	}
	var failed []error
	var all []bench.Result
	for _, name := range run {
		rs, err := bench.Run(ctx, c, name, opts)
		if err != nil {
			fmt.Fprintf(e.stderr, "qlaunch: bench: %v\n", err)
			failed = append(failed, err)
			if ctx.Err() != nil {
				break
			}
			continue
		}
		all = append(all, rs...)
		if table != nil {
			table.Write(rs)
			continue
		}
		if err := bench.WriteJSON(e.stdout, rs); err != nil {
			return err
		}
	}
	ratios := bench.Ratios(all)
	if table != nil {
		if err := table.Flush(); err != nil {
			return err
		}
		if err := bench.WriteRatios(e.stdout, ratios); err != nil {
			return err
		}
	} else if err := bench.WriteRatiosJSON(e.stdout, ratios); err != nil {
		return err
	}
	if opts.StartTrace != "" {
		if err := writeStartTrace(e.stderr, opts.StartTrace); err != nil {
			return err
		}
	}
	if len(failed) > 0 {
		return exitStatus(1)
	}
	return nil
}

// writeStartTrace prints the breakdown of the startup workload's trace
// (its warm-up run left out).
func writeStartTrace(w io.Writer, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("bench: --trace-startup: %w", err)
	}
	defer f.Close()
	recs, err := starttrace.Parse(f, path)
	if err != nil {
		return fmt.Errorf("bench: --trace-startup: %w", err)
	}
	fmt.Fprintln(w, "startup: where the time goes")
	return starttrace.WriteBreakdown(w, starttrace.Breakdown(recs, 1))
}

// startupCommand is the launch the startup workload times: this binary
// running qlaunch run TOPOLOGY -- (this binary) submit echo ready, with its own
// address and secret files so that it leaves those of a runtime around
// this command alone.
func startupCommand(topo string) (argv, env []string, cleanup func(), err error) {
	if _, err := os.Stat(topo); err != nil {
		return nil, nil, nil, usagef("bench: startup: %w (set --topology)", err)
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, nil, nil, fmt.Errorf("bench: %w", err)
	}
	dir, err := os.MkdirTemp("", "qlaunch-bench-")
	if err != nil {
		return nil, nil, nil, fmt.Errorf("bench: %w", err)
	}
	argv = []string{exe, "run", topo, "--", exe, "submit", "echo", "ready"}
	env = []string{
		"QLAUNCH_ADDRESS_FILE=" + filepath.Join(dir, "addr"),
		"QLAUNCH_SECRET_FILE=" + filepath.Join(dir, "secret"),
	}
	return argv, env, func() { os.RemoveAll(dir) }, nil
}

// isTerminal reports whether w is a terminal, the only place progress
// lines go.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}
