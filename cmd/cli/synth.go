package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/qlaunch/qlaunch/kernels"
	"github.com/qlaunch/qlaunch/kernels/circuit"
	"github.com/qlaunch/qlaunch/kernels/instantiate"
	"github.com/qlaunch/qlaunch/kernels/kerneltest"
	"github.com/qlaunch/qlaunch/kernels/resynth"
	"github.com/qlaunch/qlaunch/kernels/synth"
	"github.com/qlaunch/qlaunch/launcher/client"
	"github.com/qlaunch/qlaunch/launcher/wire"
)

// numericFlags are the flags of the numerical client commands.
type numericFlags struct {
	clientFlags
	local  bool
	format string
	seed   uint64
	// slots and ranks are the worker slots and worker ranks the task ran
	// on, as runTask found them (0: unknown).
	slots, ranks int
}

func (n *numericFlags) add(fs interface {
	BoolVar(*bool, string, bool, string)
	StringVar(*string, string, string, string)
	Uint64Var(*uint64, string, uint64, string)
}) {
	fs.BoolVar(&n.local, "local", false, "run in this process on NumCPU slots instead of on a runtime")
	fs.StringVar(&n.format, "format", "text", "output format: text or json")
	fs.Uint64Var(&n.seed, "seed", 1, "random seed (the result depends only on it and the input)")
}

// runTask runs one task, on the runtime found as usual or, with --local,
// on an in-process runtime with one slot per CPU.
func (n *numericFlags) runTask(ctx context.Context, e *env, t kernels.Task) ([]byte, error) {
	if n.local {
		reg, err := kernels.NewRegistry(resynth.Kernels()...)
		if err != nil {
			return nil, err
		}
		n.slots, n.ranks = runtime.NumCPU(), 1
		return kerneltest.New(reg, runtime.NumCPU()).Run(ctx, t)
	}
	c, err := n.dial(ctx, e, newLogger(e, n.verbose.level()))
	if err != nil {
		return nil, err
	}
	defer c.Close()
	f, err := c.Submit(ctx, t)
	if err != nil {
		return nil, err
	}
	vals, err := c.Wait(ctx, f)
	if err != nil {
		if ctx.Err() != nil {
			_ = c.Cancel(f)
			return nil, fmt.Errorf("interrupted, task cancelled")
		}
		var te *client.TaskError
		if errors.As(err, &te) && !te.Cancelled && !te.Lost && te.Kernel != "" {
			return nil, fmt.Errorf("%s (rank %d, host %s)", te.Message, te.Rank, te.Host)
		}
		return nil, err
	}
	if rows, err := c.Status(ctx); err == nil {
		for _, r := range rows {
			if r.State == wire.RankJoined && r.Slots > 0 {
				n.slots += r.Slots
				n.ranks++
			}
		}
	}
	return vals[0], nil
}

// withRunner runs fn with the runtime found as usual, every task it
// places spread over the whole tree, or, with --local, with an in-process
// runtime of one slot per CPU. On an interrupt fn's context ends and its
// tasks are cancelled.
func (n *numericFlags) withRunner(ctx context.Context, e *env, fn func(context.Context, taskRunner) error) error {
	if n.local {
		n.slots, n.ranks = runtime.NumCPU(), 1
		return runLocal(ctx, runtime.NumCPU(), fn)
	}
	c, err := n.dial(ctx, e, newLogger(e, n.verbose.level()))
	if err != nil {
		return err
	}
	defer c.Close()
	if err := fn(ctx, c); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("interrupted, tasks cancelled")
		}
		var te *client.TaskError
		if errors.As(err, &te) && !te.Cancelled && !te.Lost && te.Kernel != "" {
			return fmt.Errorf("%s (rank %d, host %s)", te.Message, te.Rank, te.Host)
		}
		return err
	}
	if rows, err := c.Status(ctx); err == nil {
		for _, r := range rows {
			if r.State == wire.RankJoined && r.Slots > 0 {
				n.slots += r.Slots
				n.ranks++
			}
		}
	}
	return nil
}

// knownCNOTs are the fewest CNOTs known to build the named targets
// (with any one-qubit gates): the Toffoli gate needs 6 (Shende and
// Markov, 2009), SWAP 3.
var knownCNOTs = map[string]int{"cnot": 1, "swap": 3, "toffoli": 6}

// writeSynthSummary tells a person what synth computed: the target, the
// CNOT count against the known optimum, what the distance means, the
// tasks, the slots and the time.
func writeSynthSummary(w io.Writer, name string, qubits int, res *synth.Result, threshold float64, slots, ranks int, seconds float64) {
	if name == "" {
		name = "the unitary"
	}
	fmt.Fprintf(w, "synth: %s (%d qubits) as the CNOT+U3 circuit above: %s", name, qubits, plural(res.CNOTs, "CNOT"))
	if best, ok := knownCNOTs[name]; ok {
		if res.CNOTs == best {
			fmt.Fprint(w, ", the known optimum")
		} else {
			fmt.Fprintf(w, " (the known optimum is %d)", best)
		}
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "synth: distance %.3g: how far the circuit's unitary is from the target, 1 − |Tr(U†V)|/N (0: the same gate up to a global phase; below %.0e counts as exact)\n", res.Distance, threshold)
	tasks := 0
	for _, n := range res.StepTasks {
		tasks += n
	}
	where := "the runtime"
	if slots > 0 {
		where = fmt.Sprintf("%s (%s)", plural(slots, "worker slot"), plural(ranks, "worker rank"))
	}
	fmt.Fprintf(w, "synth: %d candidate circuits instantiated by %d tasks in %d rounds, on %s, in %.3f s\n",
		res.Instantiations, tasks+1, len(res.StepTasks), where, seconds)
}

// unitaryFile is the --unitary file format.
type unitaryFile struct {
	Qubits int            `json:"qubits"`
	Matrix circuit.Matrix `json:"matrix"`
}

// inputError is bad input named by its source (exit status 2).
type inputError struct {
	src string
	err error
}

func (e *inputError) Error() string  { return e.src + ": " + e.err.Error() }
func (e *inputError) Unwrap() error  { return e.err }
func (e *inputError) BadInput() bool { return true }

func readUnitaryFile(path string) (circuit.Matrix, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return circuit.Matrix{}, usageError{err}
	}
	var f unitaryFile
	if err := json.Unmarshal(b, &f); err != nil {
		return circuit.Matrix{}, &inputError{path, err}
	}
	if f.Matrix.Qubits() != f.Qubits {
		return circuit.Matrix{}, &inputError{path, fmt.Errorf("qubits is %d but the matrix has %d rows", f.Qubits, f.Matrix.Dim)}
	}
	if err := f.Matrix.Validate(1e-8); err != nil {
		return circuit.Matrix{}, &inputError{path, err}
	}
	return f.Matrix, nil
}

// cmdSynth synthesises a circuit for a unitary.
func cmdSynth(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet(e, "synth", "synth [--ip ADDR | --local] (--target NAME | --unitary FILE) [--seed S] [--max-cnots N] [--format text|json]")
	var nf numericFlags
	nf.clientFlags.add(fs)
	nf.add(fs)
	target := fs.String("target", "", "named unitary: "+strings.Join(synth.TargetNames(), ", ")+", or random:QUBITS:SEED")
	unitary := fs.String("unitary", "", `JSON file {"qubits": n, "matrix": [[[re, im], …], …]} (qubit 0 is the most significant bit)`)
	maxCNOTs := fs.Int("max-cnots", 0, "CNOT budget (default: 3 on two qubits, 14 on three)")
	if err := parseFlags(e, fs, args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return usagef("synth: unexpected argument %q", fs.Arg(0))
	}
	if (*target == "") == (*unitary == "") {
		return usagef("synth: give exactly one of --target and --unitary")
	}
	if nf.format != "text" && nf.format != "json" {
		return usagef("synth: --format %q: want text or json", nf.format)
	}
	var u circuit.Matrix
	var err error
	if *target != "" {
		u, err = synth.Target(*target)
	} else {
		u, err = readUnitaryFile(*unitary)
	}
	if err != nil {
		return err
	}
	req := synth.Request{Target: u, Seed: nf.seed, MaxCNOTs: *maxCNOTs}
	if err := req.Validate(); err != nil {
		return err
	}
	payload, err := json.Marshal(req)
	if err != nil {
		return err
	}
	start := time.Now()
	p := newProgress(e, 0, "synth")
	out, err := nf.runTask(ctx, e, kernels.Task{Kernel: synth.KernelSynth, Payload: payload})
	p.Done()
	if err != nil {
		return fmt.Errorf("synth: %w", err)
	}
	seconds := time.Since(start).Seconds()
	var res synth.Result
	if err := json.Unmarshal(out, &res); err != nil {
		return fmt.Errorf("synth: reading the result: %w", err)
	}
	if nf.format == "json" {
		err = writeJSON(e.stdout, map[string]any{
			"cnots": res.CNOTs, "distance": res.Distance, "success": res.Success, "seconds": seconds,
			"qasm": res.QASM, "qubits": res.Template.Qubits, "instantiations": res.Instantiations, "seed": nf.seed,
			"slots": nf.slots,
		})
	} else {
		_, err = io.WriteString(e.stdout, res.QASM)
		writeSynthSummary(e.stderr, *target, res.Template.Qubits, &res, instantiate.DefaultThreshold, nf.slots, nf.ranks, seconds)
	}
	if err != nil {
		return err
	}
	if !res.Success {
		return fmt.Errorf("synth: best circuit within %d CNOTs is at distance %.3g, above the threshold", res.CNOTs, res.Distance)
	}
	return nil
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// plural is "1 thing" or "N things".
func plural(n int, thing string) string {
	if n == 1 {
		return "1 " + thing
	}
	return fmt.Sprintf("%d %ss", n, thing)
}
