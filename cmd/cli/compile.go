package cli

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/cmplx"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/qlaunch/qlaunch/kernels"
	"github.com/qlaunch/qlaunch/kernels/circuit"
	"github.com/qlaunch/qlaunch/kernels/instantiate"
	"github.com/qlaunch/qlaunch/kernels/kerneltest"
	"github.com/qlaunch/qlaunch/kernels/mapping"
	"github.com/qlaunch/qlaunch/kernels/resynth"
)

// compileStates is the number of random input states compared beyond
// circuit.MaxUnitaryQubits / 10 qubits.
const compileStates = 8

// maxCheckedUnitaryQubits is the widest circuit compile compares by
// unitary; wider ones are compared on random states.
const maxCheckedUnitaryQubits = 10

// maxCheckedStateQubits is the widest circuit compile can check at all.
const maxCheckedStateQubits = 24

// Optimisation levels of compile.
const (
	minLevel     = 1
	maxLevel     = 4
	defaultLevel = 2
)

// resynthPass is one resynthesis pass of a level: its block width, and
// whether its partition scans from the circuit's end (then its blocks'
// edges fall elsewhere than a forward scan's).
type resynthPass struct {
	width    int
	backward bool
}

// levelPasses returns the resynthesis passes of a level:
//
//	1: one pass of 2-qubit blocks
//	2: one pass of 3-qubit blocks
//	3: 2-qubit blocks, then 3-qubit blocks up to four times, partitioned
//	   from the start and from the end in turn
//	4: level 3, then 4-qubit blocks twice, from the start and from the end
//
// blockQubits, when not 0, replaces every width at levels 1 and 2; at
// levels 3 and 4 it is the widest: the level 3 passes narrower than it
// run as they are, the wider ones at its width (consecutive equal passes
// merged), and at 4 the two 4-qubit passes follow. The passes run in
// order, the narrow ones first, so that a wide pass starts from what
// the narrow ones made and keeps a block only where it has fewer CNOTs:
// wider blocks are never worse than narrower ones.
//
// A pass that does not lower the two-qubit count is dropped, and so are
// the later passes of its width and direction (a fixed point there):
// level 4 is then never worse than level 3.
// At levels 3 and 4 the circuit is also compiled with its commuting
// diagonal units reordered (see compileCircuit), the fewer CNOTs kept;
// the passes of wideBlockQubits run once after that choice, on the
// better order only. With them (all-to-all, cx,u3, no error threshold)
// the input's 4-qubit blocks on a line are also fitted to six 2-CNOT
// units (resynth.FitUnits, a TFIM chain's free-fermion form) and the
// narrow passes run on that circuit: the fewer CNOTs win, the passes'
// result on a tie.
func levelPasses(level, blockQubits int) []resynthPass {
	f := func(w int) resynthPass { return resynthPass{width: w} }
	b := func(w int) resynthPass { return resynthPass{width: w, backward: true} }
	if level < 3 {
		w := [...]int{0, 2, 3}[level]
		return []resynthPass{f(cmp.Or(blockQubits, w))}
	}
	widest := cmp.Or(blockQubits, level)
	var passes []resynthPass
	for _, p := range []resynthPass{f(2), f(3), b(3), f(3), b(3)} {
		p.width = min(p.width, widest)
		if n := len(passes); n == 0 || passes[n-1] != p {
			passes = append(passes, p)
		}
	}
	if widest >= wideBlockQubits {
		passes = append(passes, f(widest), b(widest))
	}
	return passes
}

// wideBlockQubits is the block width whose passes run after the choice of
// term order, on the better order only: a 4-qubit pass costs several
// times all narrower ones together.
const wideBlockQubits = 4

// splitWide returns the passes narrower than wideBlockQubits, then the
// others; all passes are narrow when none or all of them are.
func splitWide(passes []resynthPass) (narrow, wide []resynthPass) {
	i := slices.IndexFunc(passes, func(p resynthPass) bool { return p.width >= wideBlockQubits })
	if i <= 0 {
		return passes, nil
	}
	return passes[:i], passes[i:]
}

// compileJob is what compileCircuit compiles, and how.
type compileJob struct {
	in             *circuit.Circuit
	seed           uint64
	level          int
	blockQubits    int // 0: the level's
	gates          string
	matrix         *circuit.Matrix
	errorThreshold float64
	graph          *mapping.Graph // nil: all-to-all
	windowOps      int            // ops per window; compileWindowOps when 0
	keepInputs     bool           // on a graph, permute no block's inputs (see compileCut)
	// progress, when set, shows a pass's blocks done of total.
	progress func(what string, total int) progress
}

// compiled is the outcome of compileCircuit, checked.
type compiled struct {
	res     resynth.Result // of all passes: counts before the first, after the last
	out     *circuit.Circuit
	passes  int
	windows int   // windows compiled one after the other (see compileWindowOps)
	final   []int // logical → physical at the end
	report  map[string]any
	check   string
	seconds float64
}

// taskRunner places tasks on a runtime and hands their results back as
// they complete: *client.Client (the whole tree) and a kernel's
// kernels.Runtime are both one.
type taskRunner interface {
	Map(ctx context.Context, ts []kernels.Task) (kernels.Future, error)
	Next(ctx context.Context, f kernels.Future) ([]kernels.Result, error)
	Cancel(f kernels.Future) error
}

// runLocal runs fn with a runtime of slots slots in this process that
// knows the resynth kernels.
func runLocal(ctx context.Context, slots int, fn func(context.Context, taskRunner) error) error {
	const driver = "compile.driver"
	reg, err := kernels.NewRegistry(append(resynth.Kernels(), kernels.Kernel{Name: driver,
		Func: func(ctx context.Context, rt kernels.Runtime, _ []string, _ []byte) ([]byte, error) {
			return nil, fn(ctx, rt)
		}})...)
	if err != nil {
		return err
	}
	_, err = kerneltest.New(reg, slots).Run(ctx, kernels.Task{Kernel: driver})
	return err
}

// runPlan runs a resynthesis plan's synth tasks, each block its own task
// placed by the runtime, as one Map, counts them on p as they complete,
// and returns the plan's result. The result depends on the tasks' values
// alone, not on where or in which order they ran.
func runPlan(ctx context.Context, r taskRunner, plan *resynth.Plan, p progress) (*resynth.Result, error) {
	tasks := plan.Tasks()
	values := make([][]byte, len(tasks))
	if len(tasks) > 0 {
		f, err := r.Map(ctx, tasks)
		if err != nil {
			return nil, err
		}
		for left := len(tasks); left > 0; {
			batch, err := r.Next(ctx, f)
			if err != nil {
				_ = r.Cancel(f)
				return nil, err
			}
			for _, res := range batch {
				if res.Err != nil {
					_ = r.Cancel(f)
					return nil, fmt.Errorf("block task %d of %d: %w", res.Index+1, len(tasks), res.Err)
				}
				values[res.Index] = res.Value
			}
			left -= len(batch)
			p.Add(len(batch))
		}
	}
	return plan.Finish(values)
}

// compileCircuit compiles job.in with synth tasks placed by r, one per
// block: with a coupling graph it decomposes three-qubit gates and routes
// the circuit (swaps inserted) first, at level 4 in several ways of
// which the narrow passes' fewest CNOTs choose (see compileLayouts);
// then it resynthesises block by block on the graph's edges, once
// (levels 1 and 2) or until the two-qubit count stops falling (levels 3
// and 4; see levelPasses), in windows of compileWindowOps ops (see
// compileWindow). The partition of
// each pass is made here and every block's synthesis is a task of its
// own, so the blocks spread over every slot of the tree; the output
// depends only on the input and the seed. It checks the result: the same
// measurements, resets, barriers and conditions in order, every
// two-qubit gate on an edge, and, up to maxCheckedStateQubits qubits, the
// unitary part within the error bound of the input's followed by the
// final mapping's permutation.
func compileCircuit(ctx context.Context, r taskRunner, job compileJob) (*compiled, error) {
	start := time.Now()
	in := job.in
	widths := levelPasses(job.level, job.blockQubits)
	identity := make([]int, in.Qubits)
	for i := range identity {
		identity[i] = i
	}
	reference := in
	narrow, wide := splitWide(widths)
	// On a graph the circuit is routed, at level 4 in several ways, and
	// the routing of the fewest CNOTs after the narrow passes kept (see
	// compileLayouts).
	var c *compiled
	routed, initial, final := in, identity, identity
	var coupling [][2]int
	preBound := 0.0 // the error bound of the all-to-all passes a routing started from
	if g := job.graph; g != nil {
		coupling = g.Edges
		best, err := compileLayouts(ctx, r, job, g, widths, narrow)
		if err != nil {
			return nil, err
		}
		c, routed, initial, final, preBound = best.out, best.routed, best.initial, best.final, best.preBound
	} else {
		var err error
		if c, err = compileNarrow(ctx, r, job, in, nil, widths, narrow); err != nil {
			return nil, err
		}
	}
	if job.graph != nil && job.level >= 4 && job.errorThreshold == 0 {
		// At level 4 the routed circuit is also cut in two at each of
		// cutFractions, the second part routed again from where the
		// first's last blocks leave the qubits (see compileCut); the
		// fewer CNOTs, then two-qubit gates, win (not under an error
		// threshold: each part would spend all of it). Each cut costs a
		// compile of the whole circuit; at level 3 it found one CNOT on
		// qaoa:6:2 on a line and none on the rest (see BENCHMARKS.md).
		for _, f := range cutFractions {
			cc, err := compileCut(ctx, r, job, routed, f, stage{narrow, 0, len(widths)})
			if err != nil {
				return nil, err
			}
			if cc != nil && fewerCNOTs(cc, c) {
				c = cc
			}
		}
	}
	if len(wide) > 0 {
		// The wide passes, once, from the narrow passes' result.
		cw, err := compileWindows(ctx, r, job, c.out, coupling, stage{wide, len(narrow), len(widths)})
		if err != nil {
			return nil, err
		}
		c.add(cw)
		if job.graph == nil && job.errorThreshold == 0 && cmp.Or(job.gates, resynth.DefaultGates) == resynth.DefaultGates {
			// The 4-qubit blocks of the input on a line, fitted to six
			// 2-CNOT units along it (free fermions: a TFIM chain's
			// Trotter steps; see resynth.FitUnits), then the narrow
			// passes: the fewer CNOTs win, the passes' result on a tie.
			alt, fitted, bound, err := resynth.FitUnits(ctx, in, instantiate.DefaultThreshold, job.seed)
			if err != nil {
				return nil, err
			}
			if fitted > 0 {
				ca, err := compileWindows(ctx, r, job, alt, coupling, stage{narrow, 0, len(widths)})
				if err != nil {
					return nil, err
				}
				if ca.res.CNOTsAfter < c.res.CNOTsAfter {
					root := math.Sqrt(bound) + math.Sqrt(ca.res.ErrorBound)
					ca.res.ErrorBound = root * root
					ca.res.Replaced += fitted
					c = ca
				}
			}
		}
	}
	if g := job.graph; g != nil {
		// The first and last blocks' permutations of the graph's qubits
		// (see resynth.Request.PermuteInputs) move the mappings. The
		// reference on the graph's qubits: the initial mapping's
		// permutation undone, the input, the final mapping's permutation
		// (both as swaps).
		initial, final = resynth.Compose(initial, c.res.PermutedInputs), resynth.Compose(final, c.res.PermutedOutputs)
		reference = &circuit.Circuit{Qubits: g.Nodes, Cregs: in.Cregs, Defs: in.Defs}
		reference.Append(resynth.PermutationSwaps(resynth.Inverse(initial))...)
		reference.Append(in.Ops...)
		reference.Append(resynth.PermutationSwaps(final)...)
		initial, final = initial[:in.Qubits], final[:in.Qubits]
	}
	c.final = final
	res := &c.res
	if preBound > 0 {
		root := math.Sqrt(res.ErrorBound) + math.Sqrt(preBound)
		res.ErrorBound = root * root
	}
	// The counts before are the input's, not the routed circuit's.
	res.TwoQubitGatesBefore, res.CNOTsBefore = in.TwoQubitGates(), in.CNOTs()
	c.seconds = time.Since(start).Seconds()
	c.report = map[string]any{
		"two_qubit_gates_before": res.TwoQubitGatesBefore, "two_qubit_gates_after": res.TwoQubitGatesAfter,
		"blocks": res.Blocks, "replaced": res.Replaced, "seconds": c.seconds, "qubits": in.Qubits,
		"gates": res.Gates, "error_bound": res.ErrorBound, "block_distances": res.BlockDistances,
		"unreached": res.Unreached, "initial_mapping": initial, "final_mapping": final,
		"level": job.level, "block_qubits": widths[len(widths)-1].width, "passes": c.passes, "windows": c.windows,
	}
	if res.PermutedInputs != nil {
		c.report["permuted_inputs"] = res.PermutedInputs
	}
	if res.PermutedOutputs != nil {
		c.report["permuted_outputs"] = res.PermutedOutputs
	}
	if res.Gates == resynth.DefaultGates {
		c.report["cnots_before"], c.report["cnots_after"] = res.CNOTsBefore, res.CNOTsAfter
	}
	// The check.
	out := c.out
	allowed := max(res.ErrorBound*(1+1e-6)+1e-12, instantiate.DefaultThreshold)
	if g := job.graph; g != nil {
		for _, op := range out.Ops {
			if qs := op.QubitList(); len(qs) == 2 && !g.Adjacent(qs[0], qs[1]) {
				return nil, fmt.Errorf("%s on qubits %v, not an edge of the coupling graph; nothing written", op.Gate, qs)
			}
		}
	}
	if !slices.Equal(nonUnitaryOps(routed), nonUnitaryOps(out)) {
		return nil, errors.New("the compiled circuit's measurements, resets or barriers differ from the input's; nothing written")
	}
	var ok bool
	switch {
	case reference.Qubits > maxCheckedStateQubits:
		// Too wide to simulate: every block's replacement was checked by
		// its synthesis, within the error bound.
		c.check, ok = fmt.Sprintf("not simulated (%d qubits; the blocks' error bound holds)", reference.Qubits), true
	case reference.Qubits <= maxCheckedUnitaryQubits:
		d, err := unitaryDistance(reference.UnitaryPart(), out.UnitaryPart())
		if err != nil {
			return nil, err
		}
		c.report["distance"] = d
		c.check, ok = fmt.Sprintf("distance %.3g", d), d < allowed
	default:
		f, err := worstFidelity(reference.UnitaryPart(), out.UnitaryPart(), job.seed)
		if err != nil {
			return nil, err
		}
		c.report["worst_fidelity"] = f
		// 1 − |⟨ψ|U†V|ψ⟩|² ≤ ‖U − e^{iφ}V‖² ≤ 2·N·d.
		c.check = fmt.Sprintf("worst fidelity on %d random states 1-%.3g", compileStates, 1-f)
		ok = 1-f < max(2*float64(int(1)<<reference.Qubits)*allowed, instantiate.DefaultThreshold)
	}
	if !ok {
		return nil, fmt.Errorf("the compiled circuit differs from the input (%s, error bound %.3g); nothing written", c.check, res.ErrorBound)
	}
	return c, nil
}

// layoutCandidate is a routing compileCircuit compiles: the circuit on
// the graph's qubits, its initial and final mappings (logical →
// physical), the seed its passes synthesise with, and, for a routing of
// the all-to-all passes' output, their error bound; out is its compile.
type layoutCandidate struct {
	routed         *circuit.Circuit
	initial, final []int
	seed           uint64
	preBound       float64
	out            *compiled
}

// layoutCandidates is the number of initial mappings compileLayouts
// routes the input from at level 4 (mapping.PlaceCandidates:
// Place's, then the next starts of its forward passes by estimate, the
// routings alike left out), and preLayoutCandidates the number it routes
// the all-to-all narrow passes' output from. screenPasses is the number
// of the level's first passes that screen the routings, and
// screenFinalists the number of the screen's best that go through all
// the narrow passes.
const (
	layoutsLevel        = 4 // 4–10× the CPU of one routing on a line, for 1–3 CNOTs (BENCHMARKS.md)
	layoutCandidates    = 8
	preLayoutCandidates = 4
	screenPasses        = 2
	screenFinalists     = 2
)

// compileLayouts routes job.in onto g and compiles the routing through
// the narrow passes. At level 4 (no error threshold) it also
// routes the input from the next layoutCandidates−1 initial mappings, and
// the output of the all-to-all narrow passes (shorter: the 3-qubit blocks
// have joined gates) from preLayoutCandidates; each of those routings
// goes through the first screenPasses passes (2-qubit blocks, then
// 3-qubit blocks from the start) with a seed of its own, at once, so
// that their blocks spread over the tree together, and the
// screenFinalists of the fewest CNOTs are compiled through all the
// narrow passes beside Place's routing. The two-qubit count after the 3-qubit passes follows a
// routing's estimate loosely, so compiled counts choose. The fewer CNOTs,
// then two-qubit gates, win; Place's routing on a tie, so that no
// circuit compiles to more than from Place's routing alone. When Place's
// routing needs no swap, or the circuit is longer than a window (see
// compileWindowOps), it is the only one. The result depends only on the
// input and the seed.
func compileLayouts(ctx context.Context, r taskRunner, job compileJob, g *mapping.Graph, widths, narrow []resynthPass) (*layoutCandidate, error) {
	in := job.in
	decomposed := mapping.Decompose(in)
	n := 1
	if job.level >= layoutsLevel && job.errorThreshold == 0 && len(narrow) > screenPasses && len(decomposed.Ops) <= cmp.Or(job.windowOps, compileWindowOps) {
		n = layoutCandidates
	}
	cands, err := routeLayouts(decomposed, g, job, n)
	if err != nil {
		return nil, err
	}
	first := cands[0]
	if first.routed.TwoQubitGates() == decomposed.TwoQubitGates() {
		cands = cands[:1] // no swap: no routing has fewer gates to compile
	}
	if len(cands) == 1 {
		first.out, err = compileNarrow(ctx, r, job, first.routed, g.Edges, widths, narrow)
		return first, err
	}
	screen := stage{narrow[:screenPasses], 0, len(widths)}
	// Wave one: Place's routing through the narrow passes, the other
	// routings of the input screened, and the all-to-all narrow passes.
	others := cands[1:]
	var pre *compiled
	err = parallel(ctx, len(others)+2, func(ctx context.Context, i int) error {
		var err error
		switch {
		case i == len(others):
			first.out, err = compileNarrow(ctx, r, job, first.routed, g.Edges, widths, narrow)
		case i == len(others)+1:
			all := job
			all.graph, all.progress = nil, nil
			pre, err = compileNarrow(ctx, r, all, in, nil, widths, narrow)
		default:
			others[i].out, err = compileWindows(ctx, r, candidateJob(job, others[i].seed), others[i].routed, g.Edges, screen)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	// Wave two: the all-to-all output's routings screened.
	more, err := routeLayouts(pre.out, g, job, preLayoutCandidates)
	if err != nil {
		return nil, err
	}
	for i := range more {
		more[i].seed = job.seed + uint64(len(cands)+i)*candidateSeedStep
		more[i].preBound = pre.res.ErrorBound
	}
	err = parallel(ctx, len(more), func(ctx context.Context, i int) error {
		var err error
		more[i].out, err = compileWindows(ctx, r, candidateJob(job, more[i].seed), more[i].routed, g.Edges, screen)
		return err
	})
	if err != nil {
		return nil, err
	}
	others = append(others, more...)
	// The finalists: the screen's best, fewest CNOTs first, ties in
	// candidate order.
	slices.SortStableFunc(others, func(a, b *layoutCandidate) int {
		switch {
		case fewerCNOTs(a.out, b.out):
			return -1
		case fewerCNOTs(b.out, a.out):
			return 1
		}
		return 0
	})
	// Wave three: the finalists through all the narrow passes.
	finalists := others[:min(len(others), screenFinalists)]
	err = parallel(ctx, len(finalists), func(ctx context.Context, i int) error {
		var err error
		f := finalists[i]
		f.out, err = compileNarrow(ctx, r, candidateJob(job, f.seed), f.routed, g.Edges, widths, narrow)
		return err
	})
	if err != nil {
		return nil, err
	}
	best := first
	for _, f := range finalists {
		if fewerCNOTs(f.out, best.out) {
			best = f
		}
	}
	return best, nil
}

// routeLayouts routes c (decomposed) on g from each of n initial
// mappings (mapping.PlaceCandidates), the first with job's seed, the
// others with seeds of their own (candidateSeedStep apart).
func routeLayouts(c *circuit.Circuit, g *mapping.Graph, job compileJob, n int) ([]*layoutCandidate, error) {
	var cands []*layoutCandidate
	for i, place := range mapping.PlaceCandidates(c, g, job.seed, n) {
		routed, final, err := mapping.RouteFrom(c, g, place)
		if err != nil {
			return nil, err
		}
		cands = append(cands, &layoutCandidate{routed: routed, initial: place, final: final, seed: job.seed + uint64(i)*candidateSeedStep})
	}
	return cands, nil
}

// candidateJob returns job for a routing compiled beside Place's, at
// once: with the routing's seed, and no progress shown.
func candidateJob(job compileJob, seed uint64) compileJob {
	job.progress, job.seed = nil, seed
	return job
}

// candidateSeedStep separates the candidates' seeds: above the windows'
// (w·2³²) and passes' (pass·2¹⁶) shifts of one compile.
const candidateSeedStep = 1 << 48

// parallel runs fn(ctx, i) for i below n, each in a goroutine, and
// returns the first error; that error cancels the others' ctx, and what
// they return then is not reported.
func parallel(ctx context.Context, n int, fn func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg    sync.WaitGroup
		once  sync.Once
		first error
	)
	for i := range n {
		wg.Go(func() {
			if err := fn(ctx, i); err != nil {
				once.Do(func() { first = err })
				cancel()
			}
		})
	}
	wg.Wait()
	return first
}

// compileNarrow compiles cur through the narrow passes of widths and, at
// levels 3 and 4, its commuting diagonal units (ZZ rotations, cz, rzz,
// cu1) also in the order that joins more of them into the blocks a
// forward partition has open (see mapping.DiagonalOrder), an exactly
// equivalent circuit; the fewer CNOTs (then two-qubit gates) win, the
// order as given on a tie, so the output still depends only on the input
// and the seed.
func compileNarrow(ctx context.Context, r taskRunner, job compileJob, cur *circuit.Circuit, coupling [][2]int, widths, narrow []resynthPass) (*compiled, error) {
	c, err := compileWindows(ctx, r, job, cur, coupling, stage{narrow, 0, len(widths)})
	if err != nil {
		return nil, err
	}
	if job.level >= 3 {
		if alt, moved := mapping.DiagonalOrder(cur, reorderWidth(widths)); moved {
			ca, err := compileWindows(ctx, r, job, alt, coupling, stage{narrow, 0, len(widths)})
			if err != nil {
				return nil, err
			}
			if fewerCNOTs(ca, c) {
				c = ca
			}
		}
	}
	return c, nil
}

// fewerCNOTs reports whether a has fewer CNOTs than b, or as many and
// fewer two-qubit gates.
func fewerCNOTs(a, b *compiled) bool {
	return a.res.CNOTsAfter < b.res.CNOTsAfter || a.res.CNOTsAfter == b.res.CNOTsAfter && a.res.TwoQubitGatesAfter < b.res.TwoQubitGatesAfter
}

// add appends the outcome of later passes, d, compiled from c.out.
func (c *compiled) add(d *compiled) {
	if d.passes == 0 {
		return
	}
	c.out, c.passes = d.out, c.passes+d.passes
	c.windows = max(c.windows, d.windows)
	c.res.QASM, c.res.TwoQubitGatesAfter, c.res.CNOTsAfter = d.res.QASM, d.res.TwoQubitGatesAfter, d.res.CNOTsAfter
	c.res.Replaced += d.res.Replaced
	c.res.PermutedInputs = resynth.Compose(c.res.PermutedInputs, d.res.PermutedInputs)
	c.res.PermutedOutputs = resynth.Compose(c.res.PermutedOutputs, d.res.PermutedOutputs)
	c.res.BlockDistances += d.res.BlockDistances
	c.res.Unreached += d.res.Unreached
	root := math.Sqrt(c.res.ErrorBound) + math.Sqrt(d.res.ErrorBound)
	c.res.ErrorBound = root * root
}

// stage is a run of consecutive passes of a level: passes, the first
// of which is the level's pass number first, of total.
type stage struct {
	passes       []resynthPass
	first, total int
}

// reorderWidth is the block width mapping.DiagonalOrder arranges for: the
// first of the passes wider than two qubits, else the last pass's.
func reorderWidth(passes []resynthPass) int {
	for _, p := range passes {
		if p.width > 2 {
			return p.width
		}
	}
	return passes[len(passes)-1].width
}

// compileWindows resynthesises cur, cut into windows (see windowCuts),
// window by window through the passes of st, and returns the outcome
// with its counts after, passes and windows set.
func compileWindows(ctx context.Context, r taskRunner, job compileJob, cur *circuit.Circuit, coupling [][2]int, st stage) (*compiled, error) {
	c := &compiled{}
	// The circuit is compiled window by window, each window's passes
	// whole before the next window starts, so that a pass holds the
	// blocks, tasks and results of one window at most.
	cuts := windowCuts(cur.Ops, cmp.Or(job.windowOps, compileWindowOps))
	windows := len(cuts) - 1
	c.windows = windows
	var rootSum float64
	var outOps []circuit.Op
	for w := range windows {
		win := cur
		if windows > 1 {
			win = &circuit.Circuit{Qubits: cur.Qubits, Cregs: cur.Cregs, Defs: cur.Defs, Ops: cur.Ops[cuts[w]:cuts[w+1]]}
		}
		wr, err := compileWindow(ctx, r, job, win, coupling, st, w, windows)
		if err != nil {
			return nil, err
		}
		rootSum += math.Sqrt(wr.res.ErrorBound)
		if w == 0 {
			c.res = wr.res
			c.out = wr.out
		} else {
			c.res.PermutedOutputs = wr.res.PermutedOutputs
			c.res.Blocks += wr.res.Blocks
			c.res.Synthesised += wr.res.Synthesised
			c.res.Replaced += wr.res.Replaced
			c.res.BlockDistances += wr.res.BlockDistances
			c.res.Unreached += wr.res.Unreached
			if c.out.Defs == nil {
				c.out.Defs = wr.out.Defs
			}
		}
		c.passes = max(c.passes, wr.passes)
		if windows > 1 {
			outOps = append(outOps, wr.out.Ops...)
		}
	}
	c.res.ErrorBound = rootSum * rootSum
	if windows > 1 {
		c.out.Ops = outOps
		c.res.QASM = circuit.FormatQASM(c.out)
		c.res.TwoQubitGatesAfter, c.res.CNOTsAfter = c.out.TwoQubitGates(), c.out.CNOTs()
	}
	return c, nil
}

// compileWindowOps is the most operations compileCircuit resynthesises
// as one circuit: a longer one is cut into windows of this many ops, each
// compiled through the level's passes on its own, in order, so that the
// blocks, tasks and results held at once stay bounded whatever the
// circuit's length. No block crosses a window's edge.
const compileWindowOps = 4096

// windowCuts returns the bounds of ops's windows of about size ops: 0,
// then each window's end, the last len(ops). A cut never falls inside a
// barrier statement (a run of Barrier ops, each after the first with Arg
// 1), which stays whole in one window.
func windowCuts(ops []circuit.Op, size int) []int {
	cuts := []int{0}
	for at := size; at < len(ops); at += size {
		for at < len(ops) && ops[at].Gate == circuit.Barrier && ops[at].Arg == 1 {
			at++
		}
		if at < len(ops) {
			cuts = append(cuts, at)
		}
	}
	return append(cuts, len(ops))
}

// windowResult is the outcome of compileWindow.
type windowResult struct {
	res    resynth.Result
	out    *circuit.Circuit
	passes int
}

// compileWindow resynthesises win, window w of windows of a circuit,
// through the passes of st: once at levels 1 and 2, at levels 3 and 4
// until the two-qubit count stops falling at each width and direction
// (see levelPasses). Window w's seeds are job.seed's shifted by w·2³², so
// that window 0 (the whole of a short circuit) has job.seed's; each
// window's and pass's share of the error threshold is 1/(windows·passes)²
// of it, so that the whole bound, (Σ√)² over windows and passes, stays
// within it. A stage after the first keeps win when no pass lowers it.
func compileWindow(ctx context.Context, r taskRunner, job compileJob, win *circuit.Circuit, coupling [][2]int, st stage, w, windows int) (*windowResult, error) {
	wr := &windowResult{}
	if st.first > 0 {
		wr.out = win
		wr.res = resynth.Result{QASM: circuit.FormatQASM(win), TwoQubitGatesAfter: win.TwoQubitGates(), CNOTsAfter: win.CNOTs()}
	}
	var rootSum float64
	passes := st.total
	share := job.errorThreshold / float64(passes*passes*windows*windows) // (Σ√)² ≤ the threshold
	cur := win
	done := map[resynthPass]bool{} // widths and directions at their fixed point
	for i, spec := range st.passes {
		pass := st.first + i
		if done[spec] {
			continue
		}
		bq := spec.width
		plan, err := resynth.NewPlan(ctx, cur, resynth.Request{Seed: job.seed + uint64(w)<<32 + uint64(pass)*0x10000,
			BlockQubits: bq, Gates: job.gates, GateMatrix: job.matrix, ErrorThreshold: share, Coupling: coupling, Backward: spec.backward,
			// On a graph the mappings absorb permutations of the first
			// and last blocks' qubits.
			PermuteInputs: job.graph != nil && w == 0 && !job.keepInputs, PermuteOutputs: job.graph != nil && w == windows-1})
		if err != nil {
			return nil, err
		}
		var p progress = noProgress{}
		if job.progress != nil {
			what := fmt.Sprintf("pass %d of %d, %d-qubit blocks:", pass+1, passes, bq)
			if spec.backward {
				what = fmt.Sprintf("pass %d of %d, %d-qubit blocks from the end:", pass+1, passes, bq)
			}
			if windows > 1 {
				what = fmt.Sprintf("window %d of %d, %s", w+1, windows, what)
			}
			p = job.progress(what, len(plan.Tasks()))
		}
		res, err := runPlan(ctx, r, plan, p)
		p.Done()
		if err != nil {
			return nil, err
		}
		out, err := circuit.ParseQASM(res.QASM)
		if err != nil {
			return nil, fmt.Errorf("reading the compiled circuit: %w", err)
		}
		if pass > 0 && res.TwoQubitGatesAfter >= wr.res.TwoQubitGatesAfter && res.CNOTsAfter >= wr.res.CNOTsAfter {
			done[spec] = true // no better: drop the pass, and the others of its width and direction
			continue
		}
		rootSum += math.Sqrt(res.ErrorBound)
		if pass == 0 {
			wr.res = *res
		} else {
			wr.res.TwoQubitGatesAfter, wr.res.CNOTsAfter, wr.res.QASM = res.TwoQubitGatesAfter, res.CNOTsAfter, res.QASM
			wr.res.Replaced += res.Replaced
			wr.res.BlockDistances += res.BlockDistances
			wr.res.Unreached += res.Unreached
			wr.res.PermutedInputs = resynth.Compose(wr.res.PermutedInputs, res.PermutedInputs)
			wr.res.PermutedOutputs = resynth.Compose(wr.res.PermutedOutputs, res.PermutedOutputs)
		}
		wr.res.ErrorBound = rootSum * rootSum
		wr.out, cur = out, out
		wr.passes++
	}
	return wr, nil
}

// cmdCompile compiles a circuit for a machine (see compileCircuit).
func cmdCompile(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet(e, "compile", "compile [--ip ADDR | --local] IN.qasm -o OUT.qasm [--seed S] [--level 1-4] [--block-qubits 2-4] [--gates SET [--gate-matrix FILE]] [--coupling GRAPH] [--error-threshold E] [--format text|json]")
	var nf numericFlags
	nf.clientFlags.add(fs)
	nf.add(fs)
	outPath := fs.String("o", "", "write the compiled circuit to this file (default: standard output)")
	level := fs.Int("level", defaultLevel, "optimisation level: 1 two-qubit blocks, 2 three-qubit blocks, 3 two- then three-qubit passes to a fixed point (partitioned from the start and from the end in turn), 4 level 3 then four-qubit passes, and on a coupling graph several routings, the one of fewest CNOTs kept; at 3 and 4 commuting ZZ-type terms are also tried reordered")
	blockQubits := fs.Int("block-qubits", 0, "widest block to resynthesise, 2 to 4 (default: the level's); at levels 3 and 4 the narrower passes run first")
	gates := fs.String("gates", resynth.DefaultGates, "native gate set: "+strings.Join(resynth.GatePresets(), " ")+", or NAME,rz,sx with --gate-matrix")
	gateMatrix := fs.String("gate-matrix", "", "JSON file of the two-qubit gate NAME of --gates: {\"qubits\": 2, \"matrix\": [[[re, im], …], …]}")
	coupling := fs.String("coupling", "", "coupling graph: a-b,c-d…, a file of edges, linear:N, ring:N, grid:RxC, all:N or heavy-hex:RxC (default: all-to-all)")
	errorThreshold := fs.Float64("error-threshold", 0, "bound on the whole circuit's error (distance); 0: exact synthesis, each block within 1e-10")
	pos, err := parseInterleaved(e, fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("compile: want one input file IN.qasm, got %d arguments", len(pos))
	}
	if nf.format != "text" && nf.format != "json" {
		return usagef("compile: --format %q: want text or json", nf.format)
	}
	if *level < minLevel || *level > maxLevel {
		return usagef("compile: --level %d: want %d to %d", *level, minLevel, maxLevel)
	}
	if *blockQubits != 0 && (*blockQubits < 2 || *blockQubits > resynth.MaxBlockQubits) {
		return usagef("compile: --block-qubits %d: want 2 to %d", *blockQubits, resynth.MaxBlockQubits)
	}
	if math.IsNaN(*errorThreshold) || *errorThreshold < 0 || *errorThreshold >= 1 {
		return usagef("compile: --error-threshold %v: want 0 to 1", *errorThreshold)
	}
	var matrix *circuit.Matrix
	if *gateMatrix != "" {
		b, err := os.ReadFile(*gateMatrix)
		if err != nil {
			return usageError{err}
		}
		var uf unitaryFile
		if err := json.Unmarshal(b, &uf); err != nil {
			return &inputError{*gateMatrix, err}
		}
		if uf.Matrix.Dim != 4 || uf.Qubits != 2 {
			return &inputError{*gateMatrix, fmt.Errorf("want a two-qubit gate: qubits 2 and a 4×4 matrix")}
		}
		matrix = &uf.Matrix
	}
	if _, err := resynth.ParseGateSet(ctx, *gates, matrix); err != nil {
		return usagef("compile: --gates: %v", err)
	}
	inPath := pos[0]
	src, err := os.ReadFile(inPath)
	if err != nil {
		return usageError{err}
	}
	in, err := circuit.ParseQASM(string(src))
	if err != nil {
		return &inputError{inPath, err}
	}
	job := compileJob{in: in, seed: nf.seed, level: *level, blockQubits: *blockQubits, gates: *gates,
		matrix: matrix, errorThreshold: *errorThreshold}
	if *coupling != "" {
		if job.graph, err = mapping.ParseCoupling(*coupling); err != nil {
			return usagef("compile: --coupling: %v", err)
		}
		if job.graph.Nodes < in.Qubits {
			return usagef("compile: --coupling %s has %d qubits, the circuit %d", *coupling, job.graph.Nodes, in.Qubits)
		}
	}
	job.progress = func(what string, total int) progress { return newProgress(e, total, "compile "+inPath+" "+what) }
	var c *compiled
	err = nf.withRunner(ctx, e, func(ctx context.Context, r taskRunner) error {
		var err error
		c, err = compileCircuit(ctx, r, job)
		return err
	})
	if err != nil {
		var se *circuit.SyntaxError
		if errors.As(err, &se) {
			return &inputError{inPath, err}
		}
		return fmt.Errorf("compile: %w", err)
	}
	res := &c.res
	info := e.stdout
	if *outPath == "" {
		if _, err := io.WriteString(e.stdout, res.QASM); err != nil {
			return err
		}
		info = e.stderr
	} else if err := os.WriteFile(*outPath, []byte(res.QASM), 0o644); err != nil {
		return err
	}
	if nf.format == "json" {
		if *outPath == "" {
			c.report["qasm"] = res.QASM
		}
		return writeJSON(info, c.report)
	}
	what, before, after := "two-qubit gates", res.TwoQubitGatesBefore, res.TwoQubitGatesAfter
	if res.Gates == resynth.DefaultGates {
		what, before, after = "CNOTs", res.CNOTsBefore, res.CNOTsAfter
	}
	_, err = fmt.Fprintf(info, "compile: %s %d → %d in %s (%d of %d blocks replaced, %d passes), error bound %.3g, %s, %.3f s\n",
		what, before, after, res.Gates, res.Replaced, res.Blocks, c.passes, res.ErrorBound, c.check, c.seconds)
	return err
}

// nonUnitaryOps returns c's measurements, resets, barriers and
// conditioned ops with their conditions, qubits and bits (a conditioned
// gate by its condition and qubits alone: retargeting may rewrite it).
func nonUnitaryOps(c *circuit.Circuit) []circuit.Op {
	var out []circuit.Op
	for _, op := range c.Ops {
		switch {
		case !op.Gate.Unitary():
			out = append(out, op)
		case op.Cond.Set():
			marker := circuit.Op{Cond: op.Cond}
			if n := len(out); n > 0 && out[n-1] == marker {
				continue // one run of conditioned gates under one condition
			}
			out = append(out, marker)
		}
	}
	return out
}

func unitaryDistance(a, b *circuit.Circuit) (float64, error) {
	u, err := a.Unitary()
	if err != nil {
		return 0, err
	}
	v, err := b.Unitary()
	if err != nil {
		return 0, err
	}
	if u.Dim != v.Dim {
		return 0, errors.New("compile: the compiled circuit has a different number of qubits")
	}
	return circuit.Distance(u, v), nil
}

// worstFidelity returns the least |⟨aψ|bψ⟩|² over random states ψ.
func worstFidelity(a, b *circuit.Circuit, seed uint64) (float64, error) {
	if a.Qubits != b.Qubits {
		return 0, errors.New("compile: the compiled circuit has a different number of qubits")
	}
	rng := rand.New(rand.NewPCG(seed, 0xf1de))
	worst := 1.0
	for range compileStates {
		psi := make([]complex128, 1<<a.Qubits)
		var norm float64
		for i := range psi {
			psi[i] = complex(rng.NormFloat64(), rng.NormFloat64())
			norm += real(psi[i])*real(psi[i]) + imag(psi[i])*imag(psi[i])
		}
		s := complex(1/math.Sqrt(norm), 0)
		for i := range psi {
			psi[i] *= s
		}
		phi := append([]complex128(nil), psi...)
		if err := a.Simulate(psi); err != nil {
			return 0, err
		}
		if err := b.Simulate(phi); err != nil {
			return 0, err
		}
		var dot complex128
		for i := range psi {
			dot += cmplx.Conj(psi[i]) * phi[i]
		}
		f := real(dot)*real(dot) + imag(dot)*imag(dot)
		worst = min(worst, f)
	}
	return worst, nil
}
