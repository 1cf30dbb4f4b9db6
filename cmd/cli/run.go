package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/qlaunch/qlaunch/kernels"
	"github.com/qlaunch/qlaunch/launcher/bench"
)

// env is what a subcommand may touch of the outside world. Tests build one
// with buffers and a map-backed getenv and call run in-process.
type env struct {
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	getenv func(string) string
	// setGCPercent sets the process's garbage-collector target
	// (debug.SetGCPercent); nil leaves it alone, as tests that run a
	// role in process do.
	setGCPercent func(int) int
	// reg is the kernels of the ranks this process starts or becomes;
	// nil: the stock kernels (Registry()).
	reg *kernels.Registry
	// signalsCaught returns once SIGINT and SIGTERM are caught (Main
	// catches them beside the command); nil: at once.
	signalsCaught func()
}

// awaitSignals waits until interrupts are caught: a command calls it
// before it starts processes, so that none outlives it.
func (e *env) awaitSignals() {
	if e.signalsCaught != nil {
		e.signalsCaught()
	}
}

// registry returns the kernels of this binary's ranks.
func (e *env) registry() (*kernels.Registry, error) {
	if e.reg != nil {
		return e.reg, nil
	}
	return Registry()
}

// command is one qlaunch subcommand.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, e *env, args []string) error
}

// commands lists every subcommand; each lives in its own file.
func commands() []command {
	return []command{
		{"run", "attached mode: start the runtime here, run CMD with QLAUNCH_ADDR set, shut down", cmdRun},
		{"plan", "print the plan of a topology for a node list (table, json or dot)", cmdPlan},
		{"server", "run the server: dial the managers, accept clients", cmdServer},
		{"manager", "run a manager: spawn or accept worker ranks, or manage lower managers", cmdManager},
		{"worker", "run one worker rank with N slots, connected to its manager", cmdWorker},
		{"submit", "run one kernel on the runtime and print its result", cmdSubmit},
		{"kernels", "list the kernels this binary runs, with their arguments", cmdKernels},
		{"version", "print this binary's version, source revision and Go version", cmdVersion},
		{"status", "print the runtime's tree: ranks, slots busy/idle, tasks done", cmdStatus},
		{"wait", "wait until the whole tree has joined", cmdWait},
		{"drain", "drain ranks (by rank or host): they finish their tasks and leave", cmdDrain},
		{"alloc", "list, add or remove the allocations the server submitted ([alloc])", cmdAlloc},
		{"whoami", "print the launcher and rank identity this process detects", cmdWhoami},
		{"bench", "measure the runtime on the standard workloads", cmdBench},
		{"hostlist", "expand, compress or count SLURM hostlist expressions", cmdHostlist},
		{"script", "print a ready sbatch or qsub script for a topology", cmdScript},
		{"synth", "synthesise a circuit for a unitary on the runtime", cmdSynth},
		{"compile", "resynthesise a whole OpenQASM circuit block by block on the runtime", cmdCompile},
	}
}

// run dispatches args to a subcommand and returns the process exit status:
// 0 success, 1 the work failed, 2 bad usage or bad input.
func run(ctx context.Context, args []string, e *env) int {
	err := dispatch(ctx, args, e)
	code := exitCode(err)
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		var silent exitStatus
		if !errors.As(err, &silent) {
			fmt.Fprintf(e.stderr, "qlaunch: %v\n", err)
		}
		var u usageError
		if errors.As(err, &u) {
			fmt.Fprintf(e.stderr, "see %s\n", helpHint(args))
		}
	}
	return code
}

// helpHint is where the usage of the command args run is printed.
func helpHint(args []string) string {
	if len(args) == 0 {
		return `"qlaunch help"`
	}
	for _, c := range commands() {
		if c.name == args[0] {
			return fmt.Sprintf(`"qlaunch %s --help"`, c.name)
		}
	}
	if strings.HasSuffix(args[0], ".toml") || isFile(args[0]) {
		return `"qlaunch TOPOLOGY.toml --help"`
	}
	return `"qlaunch help"`
}

func dispatch(ctx context.Context, args []string, e *env) error {
	if len(args) == 0 {
		usage(e.stderr)
		return usagef("no subcommand given")
	}
	name := args[0]
	switch name {
	case "help", "-h", "-help", "--help":
		if name == "help" && len(args) > 1 {
			return helpOf(ctx, e, args[1:])
		}
		usage(e.stdout)
		return nil
	case "--version":
		return cmdVersion(ctx, e, args[1:])
	case kernels.ExecGuardArg:
		// Hidden: the process-group guard of an exec task's command,
		// started by a worker rank of this binary.
		return kernels.RunExecGuard(args[1:])
	case bench.HopArg:
		// Hidden: one process of the bench chain workload, started by
		// qlaunch bench.
		err := bench.ServeHop(args[1:], e.stdin, e.stdout, e.stderr)
		if errors.Is(err, bench.ErrHopUsage) {
			return usagef("%w", err)
		}
		return err
	}
	for _, c := range commands() {
		if c.name == name {
			return c.run(ctx, e, args[1:])
		}
	}
	if strings.HasSuffix(name, ".toml") || isFile(name) {
		return cmdBoot(ctx, e, args)
	}
	return usagef("unknown subcommand %q", name)
}

// helpOf is "qlaunch help CMD": CMD's usage, as "qlaunch CMD --help".
func helpOf(ctx context.Context, e *env, args []string) error {
	name := args[0]
	for _, c := range commands() {
		if c.name == name {
			return c.run(ctx, e, append(args[1:], "--help"))
		}
	}
	if strings.HasSuffix(name, ".toml") || name == "TOPOLOGY.toml" {
		return cmdBoot(ctx, e, []string{name, "--help"})
	}
	return usagef("help: unknown subcommand %q", name)
}

func isFile(path string) bool {
	st, err := os.Stat(path)
	return err == nil && st.Mode().IsRegular()
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: qlaunch TOPOLOGY.toml            take this rank's role (under srun, mpirun, mpiexec)")
	fmt.Fprintln(w, "       qlaunch SUBCOMMAND [flags] [args]")
	fmt.Fprintln(w, "\nsubcommands:")
	cs := commands()
	sort.Slice(cs, func(i, j int) bool { return cs[i].name < cs[j].name })
	for _, c := range cs {
		fmt.Fprintf(w, "  %-9s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun \"qlaunch help SUBCOMMAND\" (or \"qlaunch SUBCOMMAND --help\") for a subcommand's flags,")
	fmt.Fprintln(w, "\"qlaunch version\" for this binary's version.")
	fmt.Fprintln(w, "Exit status: 0 success, 1 the work failed, 2 bad usage or bad input.")
}

// newFlagSet returns a FlagSet for subcommand name whose usage text starts
// with synopsis (the line after "usage: qlaunch ").
func newFlagSet(e *env, name, synopsis string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: qlaunch %s\n", synopsis)
		var hasFlags bool
		fs.VisitAll(func(*flag.Flag) { hasFlags = true })
		if hasFlags {
			fmt.Fprintln(fs.Output(), "\nflags:")
			fs.PrintDefaults()
		}
	}
	return fs
}

// parseFlags parses args with fs. "--help" prints the usage on stdout and
// yields flag.ErrHelp (exit 0); any other error is a usage error (exit 2).
func parseFlags(e *env, fs *flag.FlagSet, args []string) error {
	for _, a := range args {
		if a == "--" {
			break
		}
		if a == "-h" || a == "-help" || a == "--help" {
			fs.SetOutput(e.stdout)
			fs.Usage()
			return flag.ErrHelp
		}
	}
	// A parse error is reported once, by run, with a pointer to --help:
	// not above the whole flag list.
	fs.SetOutput(io.Discard)
	defer fs.SetOutput(e.stderr)
	if err := fs.Parse(args); err != nil {
		return usageError{err}
	}
	return nil
}

// usageError marks bad usage or bad input: exit status 2. run follows
// its message with where to read the command's usage.
type usageError struct{ err error }

func (u usageError) Error() string { return u.err.Error() }
func (u usageError) Unwrap() error { return u.err }

// usagef returns a usageError with a formatted message.
func usagef(format string, a ...any) error { return usageError{fmt.Errorf(format, a...)} }

// badInputError is bad input whose message says all (exit status 2, with
// no pointer to the command's usage), such as an unknown kernel.
type badInputError struct{ err error }

func (i badInputError) Error() string  { return i.err.Error() }
func (i badInputError) Unwrap() error  { return i.err }
func (i badInputError) BadInput() bool { return true }

// inputf returns a badInputError with a formatted message.
func inputf(format string, a ...any) error { return badInputError{fmt.Errorf(format, a...)} }

// exitStatus is returned by a command that has already reported what went
// wrong (or passes on a child's status) and wants this exit status.
type exitStatus int

func (s exitStatus) Error() string { return fmt.Sprintf("exit status %d", int(s)) }

// badInput is implemented by errors that mean the input was wrong (exit 2),
// such as topology.ConfigError or a hostlist syntax error.
type badInput interface{ BadInput() bool }

// exitCode maps an error to the process exit status, in one place.
func exitCode(err error) int {
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return 0
	}
	var s exitStatus
	if errors.As(err, &s) {
		return int(s)
	}
	var u usageError
	if errors.As(err, &u) {
		return 2
	}
	var b badInput
	if errors.As(err, &b) && b.BadInput() {
		return 2
	}
	return 1
}
