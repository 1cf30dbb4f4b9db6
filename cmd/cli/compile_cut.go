package cli

import (
	"context"
	"math"

	"github.com/qlaunch/qlaunch/kernels/circuit"
	"github.com/qlaunch/qlaunch/kernels/mapping"
	"github.com/qlaunch/qlaunch/kernels/resynth"
)

// cutFractions are the points, as fractions of a routed circuit's
// two-qubit gates, where compileCut cuts it.
var cutFractions = []float64{0.25, 0.5, 0.75}

// compileCut compiles routed (on job.graph, final mapping perm) cut in
// two after its two-qubit gate at fraction of them: the prefix compiled
// with its first and last blocks permuted (see resynth.Request), so that
// its last blocks end the prefix on a new layout at no cost; the suffix
// unrouted (unroute) and routed again from that layout, then compiled with
// only its last blocks permuted. The outcome's PermutedOutputs take the
// routed circuit's output qubit p to where it now ends, so that
// compileCircuit's mappings and check hold as for an uncut compile. It
// returns nil when the circuit has no cut there, or when routed holds an
// op other than an unconditioned gate (a measurement's qubit would move).
func compileCut(ctx context.Context, r taskRunner, job compileJob, routed *circuit.Circuit, fraction float64) (*compiled, error) {
	g := job.graph
	var twoQ []int
	for i, op := range routed.Ops {
		if !op.Gate.Unitary() || op.Cond.Set() {
			return nil, nil
		}
		if len(op.QubitList()) == 2 {
			twoQ = append(twoQ, i)
		}
	}
	n := int(math.Round(fraction * float64(len(twoQ))))
	if n < 1 || n >= len(twoQ) {
		return nil, nil
	}
	cut := twoQ[n-1] + 1
	prefix := &circuit.Circuit{Qubits: routed.Qubits, Cregs: routed.Cregs, Defs: routed.Defs, Ops: routed.Ops[:cut]}
	head, err := compileWindows(ctx, r, job, prefix, g.Edges)
	if err != nil {
		return nil, err
	}
	suffix, moved := unroute(&circuit.Circuit{Qubits: routed.Qubits, Cregs: routed.Cregs, Defs: routed.Defs, Ops: routed.Ops[cut:]})
	layout := head.res.PermutedOutputs
	if layout == nil {
		layout = resynth.Identity(g.Nodes)
	}
	rerouted, final, err := mapping.RouteFrom(suffix, g, layout)
	if err != nil {
		return nil, err
	}
	tailJob := job
	tailJob.keepInputs = true
	tail, err := compileWindows(ctx, r, tailJob, rerouted, g.Edges)
	if err != nil {
		return nil, err
	}
	c := head
	c.out.Ops = append(c.out.Ops, tail.out.Ops...)
	if c.out.Defs == nil {
		c.out.Defs = tail.out.Defs
	}
	res := &c.res
	res.QASM = circuit.FormatQASM(c.out)
	res.TwoQubitGatesAfter, res.CNOTsAfter = c.out.TwoQubitGates(), c.out.CNOTs()
	res.Blocks += tail.res.Blocks
	res.Synthesised += tail.res.Synthesised
	res.Replaced += tail.res.Replaced
	res.BlockDistances += tail.res.BlockDistances
	res.Unreached += tail.res.Unreached
	res.ErrorBound = math.Pow(math.Sqrt(res.ErrorBound)+math.Sqrt(tail.res.ErrorBound), 2)
	// The routed circuit's output qubit p is the suffix's qubit
	// Inverse(moved)[p], which the new routing takes to final[…], and the
	// tail's last blocks to their permutation.
	res.PermutedOutputs = resynth.Compose(resynth.Compose(resynth.Inverse(moved), final), tail.res.PermutedOutputs)
	c.passes = max(c.passes, tail.passes)
	c.windows += tail.windows
	return c, nil
}

// unroute returns the gates of c with every swap taken as a relabelling
// of the qubits instead of a gate: the circuit on c's qubits as they are
// at its start, and where each of them ends (moved[q]: c's qubit q at the
// start is on moved[q] at the end). c followed by nothing equals the
// returned circuit followed by PermutationSwaps(moved).
func unroute(c *circuit.Circuit) (*circuit.Circuit, []int) {
	out := &circuit.Circuit{Qubits: c.Qubits, Cregs: c.Cregs, Defs: c.Defs}
	moved := resynth.Identity(c.Qubits) // start qubit → where it is now
	at := resynth.Identity(c.Qubits)    // qubit now → its start qubit
	for _, op := range c.Ops {
		qs := op.QubitList()
		if op.Gate == circuit.Swap && !op.Cond.Set() {
			a, b := qs[0], qs[1]
			at[a], at[b] = at[b], at[a]
			moved[at[a]], moved[at[b]] = a, b
			continue
		}
		for j, q := range qs {
			op.Qubits[j] = at[q]
		}
		out.Ops = append(out.Ops, op)
	}
	return out, moved
}
