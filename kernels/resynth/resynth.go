package resynth

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"time"

	"github.com/qlaunch/qlaunch/kernels"
	"github.com/qlaunch/qlaunch/kernels/circuit"
	"github.com/qlaunch/qlaunch/kernels/instantiate"
	"github.com/qlaunch/qlaunch/kernels/synth"
)

// KernelResynth is the block-resynthesis kernel's name.
const KernelResynth = "resynth"

// DefaultBlockQubits is the widest block by default.
const DefaultBlockQubits = 3

// Request is the payload of the resynth kernel.
type Request struct {
	QASM        string  `json:"qasm"`
	Seed        uint64  `json:"seed"`
	BlockQubits int     `json:"block_qubits,omitempty"` // 2 to MaxBlockQubits; DefaultBlockQubits when 0
	Threshold   float64 `json:"threshold,omitempty"`    // per block; instantiate.DefaultThreshold when 0
	// ErrorThreshold, when set, bounds the whole circuit's error: each
	// block's threshold becomes ErrorThreshold/k² for k blocks
	// synthesised, so that ErrorBound stays below it, and a retargeting
	// that cannot reach it fails.
	ErrorThreshold float64 `json:"error_threshold,omitempty"`
	// Gates is the gate set (see ParseGateSet); DefaultGates when empty.
	Gates string `json:"gates,omitempty"`
	// GateMatrix is the two-qubit gate of a gate set that names one of
	// its own.
	GateMatrix *circuit.Matrix `json:"gate_matrix,omitempty"`
	// Coupling, when set, lists the qubit pairs two-qubit gates may join
	// (the edges of a routed circuit's coupling graph): each block is
	// synthesised with the pairs among its qubits, so the output keeps to
	// them. Empty means all-to-all.
	Coupling [][2]int `json:"coupling,omitempty"`
	// Backward partitions the circuit from its end (PartitionBackward).
	Backward bool `json:"backward,omitempty"`
	// PermuteInputs lets every block that is the first on all its qubits
	// implement its unitary up to a permutation of its input qubits, and
	// PermuteOutputs every block that is the last on all its qubits up to
	// a permutation of its outputs (see Result.PermutedInputs): for a
	// caller that relabels the qubits (a mapping onto a coupling graph
	// absorbs the permutations into its initial and final layouts).
	PermuteInputs  bool `json:"permute_inputs,omitempty"`
	PermuteOutputs bool `json:"permute_outputs,omitempty"`
}

// MaxBlockQubits is the widest block.
const MaxBlockQubits = 4

// Result is the outcome of a resynthesis.
type Result struct {
	QASM        string `json:"qasm"`
	CNOTsBefore int    `json:"cnots_before"`
	CNOTsAfter  int    `json:"cnots_after"`
	// TwoQubitGatesBefore counts the input's two-qubit gates (a swap as
	// three, a ccx as six); TwoQubitGatesAfter the output's, all of them
	// the gate set's two-qubit gate.
	TwoQubitGatesBefore int `json:"two_qubit_gates_before"`
	TwoQubitGatesAfter  int `json:"two_qubit_gates_after"`
	Blocks              int `json:"blocks"`      // blocks in the partition
	Synthesised         int `json:"synthesised"` // blocks sent to synthesis
	Replaced            int `json:"replaced"`    // blocks replaced
	// ErrorBound bounds the distance of the output's unitary part from
	// the input's: (Σ √dᵢ)² over the replaced blocks' distances dᵢ
	// (1 − |Tr(U†V)|/N; its square root is a metric, so the bound holds).
	ErrorBound float64 `json:"error_bound"`
	// BlockDistances is Σ dᵢ, the sum of the replaced blocks' distances.
	BlockDistances float64 `json:"block_distances"`
	// Unreached counts the blocks of gates outside the gate set whose
	// synthesis did not reach the threshold: they are replaced by the
	// closest circuit found, counted in ErrorBound.
	Unreached int     `json:"unreached"`
	Gates     string  `json:"gates"`
	Seconds   float64 `json:"seconds"`
	// PermutedInputs and PermutedOutputs, when set (Request.PermuteInputs,
	// PermuteOutputs), say where the input circuit's qubits went: the
	// input's qubit q is the output's qubit PermutedInputs[q] at the start
	// and PermutedOutputs[q] at the end. The output's unitary is that of
	// PermutationSwaps(Inverse(PermutedInputs)), then the input, then
	// PermutationSwaps(PermutedOutputs). Nil means the identity.
	PermutedInputs  []int `json:"permuted_inputs,omitempty"`
	PermutedOutputs []int `json:"permuted_outputs,omitempty"`
}

// RequestError reports a payload that is not a valid Request.
type RequestError struct{ Err error }

func (e *RequestError) Error() string { return "resynth: bad request: " + e.Err.Error() }
func (e *RequestError) Unwrap() error { return e.Err }

// BadInput marks the error as the caller's fault.
func (e *RequestError) BadInput() bool { return true }

// Kernels returns the resynth kernel and the kernels it uses (synth and
// instantiate).
func Kernels() []kernels.Kernel {
	return append([]kernels.Kernel{
		{Name: KernelResynth, Func: resynthKernel, Retryable: true,
			Doc: "resynthesise an OpenQASM circuit block by block (JSON request payload, JSON result)"},
	}, synth.Kernels()...)
}

func resynthKernel(ctx context.Context, rt kernels.Runtime, args []string, payload []byte) ([]byte, error) {
	if len(args) != 0 {
		return nil, &kernels.UsageError{Kernel: KernelResynth, Msg: "takes no arguments"}
	}
	var req Request
	if err := json.Unmarshal(payload, &req); err != nil {
		return nil, &RequestError{err}
	}
	c, err := circuit.ParseQASM(req.QASM)
	if err != nil {
		return nil, &RequestError{err}
	}
	res, err := Resynthesize(ctx, rt, c, req)
	if err != nil {
		return nil, err
	}
	return json.Marshal(res)
}

// Resynthesize partitions c into blocks and resynthesises them for the
// gate set req.Gates as one Map of synth tasks (see NewPlan and
// Plan.Finish). The QASM field of req is ignored.
func Resynthesize(ctx context.Context, rt kernels.Runtime, c *circuit.Circuit, req Request) (*Result, error) {
	p, err := NewPlan(ctx, c, req)
	if err != nil {
		return nil, err
	}
	var values [][]byte
	if tasks := p.Tasks(); len(tasks) > 0 {
		f, err := rt.Map(ctx, tasks)
		if err != nil {
			return nil, err
		}
		values, err = rt.Wait(ctx, f)
		if err != nil {
			return nil, fmt.Errorf("resynth: %w", err)
		}
	}
	return p.Finish(values)
}

// Plan is a resynthesis split in two, so that its synth tasks can be run
// by any runtime or client, each placed on its own: NewPlan partitions the
// circuit into blocks and makes one synth task per block to resynthesise,
// Tasks returns them, and Finish puts their results back. The result
// depends only on the circuit, the request and the tasks' results, in
// task order, never on where or when they ran.
type Plan struct {
	start     time.Time
	c         *circuit.Circuit
	gs        *GateSet
	spec      string
	req       Request
	blocks    []Block
	jobs      []planJob
	tasks     []kernels.Task
	threshold float64
	res       Result
}

// planJob is one block to synthesise: as it is, or, when perm is set,
// up to the permutation perm of its local qubits, of its outputs when
// output is set, else of its inputs. A block's jobs are consecutive, the
// one as it is first.
type planJob struct {
	block    int
	retarget bool
	budget   int
	perm     []int
	output   bool
}

// NewPlan partitions c into blocks and makes a synth task of every block
// that holds a gate outside the gate set req.Gates (retargeting: any
// number of the set's two-qubit gates, the closest circuit found when
// none reaches the threshold), and of every block of two or more of the
// set's two-qubit gates (with a budget of one fewer: kept only when
// better). A conditioned gate outside the set is synthesised alone and
// every gate of its replacement gets its condition. Measurements, resets,
// barriers and conditions stay in place (see Partition). The QASM field
// of req is ignored.
func NewPlan(ctx context.Context, c *circuit.Circuit, req Request) (*Plan, error) {
	start := time.Now()
	if err := c.Validate(); err != nil {
		return nil, &RequestError{err}
	}
	bq := req.BlockQubits
	if bq == 0 {
		bq = DefaultBlockQubits
	}
	if bq < 2 || bq > MaxBlockQubits {
		return nil, &RequestError{fmt.Errorf("block_qubits %d (2 to %d)", bq, MaxBlockQubits)}
	}
	threshold := req.Threshold
	if threshold == 0 {
		threshold = instantiate.DefaultThreshold
	}
	if err := (instantiate.Options{Threshold: threshold}).Validate(); err != nil {
		return nil, &RequestError{err}
	}
	if math.IsNaN(req.ErrorThreshold) || req.ErrorThreshold < 0 || req.ErrorThreshold >= 1 {
		return nil, &RequestError{fmt.Errorf("error_threshold %v (0 to 1)", req.ErrorThreshold)}
	}
	spec := cmp.Or(req.Gates, DefaultGates)
	gs, err := ParseGateSet(ctx, spec, req.GateMatrix)
	if err != nil {
		return nil, &RequestError{err}
	}
	var gate *circuit.Def
	if !gs.isCX() {
		d := gs.Def()
		gate = &d
	}
	before := c
	if gs.two.Gate == circuit.Defined {
		// The set's gate becomes definition 0, the input's follow.
		shifted := &circuit.Circuit{Qubits: c.Qubits, Cregs: c.Cregs, Defs: append([]circuit.Def{gs.Def()}, c.Defs...)}
		for _, op := range c.Ops {
			if op.Gate == circuit.Defined {
				op.Arg++
			}
			shifted.Ops = append(shifted.Ops, op)
		}
		c = shifted
	}
	blocks := Partition(c, bq)
	if req.Backward {
		blocks = PartitionBackward(c, bq)
	}
	if req.PermuteInputs || req.PermuteOutputs {
		blocks = joinOneQubitEnds(c.Qubits, blocks)
	}
	edges := map[[2]int]bool{}
	for _, e := range req.Coupling {
		if e[0] < 0 || e[1] < 0 || e[0] >= c.Qubits || e[1] >= c.Qubits || e[0] == e[1] {
			return nil, &RequestError{fmt.Errorf("coupling edge %v on %d qubits", e, c.Qubits)}
		}
		edges[[2]int{min(e[0], e[1]), max(e[0], e[1])}] = true
	}
	if len(edges) > 0 {
		for i, op := range c.Ops {
			if qs := op.QubitList(); op.Gate.Unitary() && len(qs) == 2 && !edges[[2]int{min(qs[0], qs[1]), max(qs[0], qs[1])}] {
				return nil, &RequestError{fmt.Errorf("operation %d (%s) on qubits %v, not a coupling edge: route the circuit first", i, op.Gate, qs)}
			}
			if len(op.QubitList()) > 2 {
				return nil, &RequestError{fmt.Errorf("operation %d (%s) on %d qubits: decompose and route the circuit first", i, op.Gate, len(op.QubitList()))}
			}
		}
	}
	type target struct {
		u     circuit.Matrix
		pairs []instantiate.Block // local coupling; nil for all pairs
	}
	var jobs []planJob
	var targets []target
	first, last := endBlocks(c.Qubits, blocks)
	synthesised := 0 // blocks with a job
	for i, b := range blocks {
		if b.Fence {
			op := b.Ops[0]
			if !op.Gate.Unitary() || op.Gate.Arity() == 1 || gs.nativeTwo(op, c.Defs) {
				continue // kept, or converted with the single-qubit gates
			}
		} else if len(b.Qubits) < 2 {
			continue
		}
		native, foreign := 0, false
		for _, op := range b.Ops {
			switch {
			case op.Gate.Arity() < 2:
			case gs.nativeTwo(op, c.Defs):
				native++
			default:
				foreign = true
			}
		}
		if !foreign && native < 2 {
			continue // one two-qubit gate cannot be fewer
		}
		local := b.Local(c.Defs)
		for j := range local.Ops {
			local.Ops[j].Cond = circuit.Cond{}
		}
		u, err := local.Unitary()
		if err != nil {
			return nil, err
		}
		budget := synth.DefaultMaxCNOTs(len(b.Qubits))
		if !foreign {
			budget = min(native-1, budget)
		}
		var pairs []instantiate.Block
		if len(req.Coupling) > 0 {
			for x := range b.Qubits {
				for y := x + 1; y < len(b.Qubits); y++ {
					if edges[[2]int{b.Qubits[x], b.Qubits[y]}] {
						pairs = append(pairs, instantiate.Block{x, y})
					}
				}
			}
		}
		jobs = append(jobs, planJob{block: i, retarget: foreign, budget: budget})
		targets = append(targets, target{u, pairs})
		synthesised++
		// The block up to a permutation of its inputs (outputs): the
		// swaps before (after) it in the target, so that the
		// replacement is the block with the swaps undone. A permuted
		// block is worth it only below the block's own two-qubit gates
		// (a swap's three, a ccx's six): that budget ends the searches
		// of the permutations that do not pay (a budget of 14 on three
		// qubits made adder:2 on a line compile 4.8× as long).
		permBudget := min(budget, local.TwoQubitGates()-1)
		for _, output := range []bool{false, true} {
			if output && !(req.PermuteOutputs && last[i]) || !output && !(req.PermuteInputs && first[i]) || permBudget < 1 {
				continue
			}
			for _, perm := range permutations(len(b.Qubits)) {
				permuted := &circuit.Circuit{Qubits: local.Qubits, Defs: local.Defs}
				if output {
					permuted.Append(local.Ops...)
					permuted.Append(PermutationSwaps(perm)...)
				} else {
					permuted.Append(PermutationSwaps(Inverse(perm))...)
					permuted.Append(local.Ops...)
				}
				pu, err := permuted.Unitary()
				if err != nil {
					return nil, err
				}
				jobs = append(jobs, planJob{block: i, retarget: foreign, budget: permBudget, perm: perm, output: output})
				targets = append(targets, target{pu, pairs})
			}
		}
	}
	if req.ErrorThreshold > 0 && synthesised > 0 {
		threshold = req.ErrorThreshold / float64(synthesised*synthesised)
	}
	tasks := make([]kernels.Task, len(jobs))
	for j, jb := range jobs {
		payload, err := json.Marshal(&synth.Request{
			Target:      targets[j].u,
			Seed:        req.Seed + uint64(jb.block) + uint64(j-firstJob(jobs, j))<<40,
			MaxCNOTs:    jb.budget,
			Coupling:    targets[j].pairs,
			Gate:        gate,
			Instantiate: instantiate.Options{Threshold: threshold},
		})
		if err != nil {
			return nil, err
		}
		tasks[j] = kernels.Task{Kernel: synth.KernelSynth, Payload: payload}
	}
	return &Plan{start: start, c: c, gs: gs, spec: spec, req: req, blocks: blocks, jobs: jobs, tasks: tasks, threshold: threshold,
		res: Result{CNOTsBefore: before.CNOTs(), TwoQubitGatesBefore: before.TwoQubitGates(), Blocks: len(blocks),
			Synthesised: synthesised, Gates: spec}}, nil
}

// firstJob returns the index of the first of the jobs of jobs[j]'s block.
func firstJob(jobs []planJob, j int) int {
	for j > 0 && jobs[j-1].block == jobs[j].block {
		j--
	}
	return j
}

// Tasks returns the plan's synth tasks, one per block to resynthesise, in
// circuit order; they are independent of each other.
func (p *Plan) Tasks() []kernels.Task { return p.tasks }

// Blocks returns the number of blocks of the partition.
func (p *Plan) Blocks() int { return len(p.blocks) }

// Finish puts the results of the plan's tasks (values, in task order)
// back into the circuit: a retargeted block always, any other only when
// its replacement has fewer two-qubit gates within the threshold. Runs of
// single-qubit gates are then merged per qubit and written in the set's
// basis. Finish may be called once.
func (p *Plan) Finish(values [][]byte) (*Result, error) {
	if len(values) != len(p.tasks) {
		return nil, fmt.Errorf("resynth: %d results for %d tasks", len(values), len(p.tasks))
	}
	res, gs, blocks, c := &p.res, p.gs, p.blocks, p.c
	const defIndex = 0 // the set's defined gate, when it has one
	var rootSum float64
	results := make([]synth.Result, len(values))
	for j, v := range values {
		if err := json.Unmarshal(v, &results[j]); err != nil {
			return nil, fmt.Errorf("resynth: block %d: %w", p.jobs[j].block, err)
		}
	}
	for start := 0; start < len(p.jobs); {
		end := start + 1
		for end < len(p.jobs) && p.jobs[end].block == p.jobs[start].block {
			end++
		}
		j := p.choose(results[start:end], start)
		start = end
		if j < 0 {
			continue
		}
		jb, sr := p.jobs[j], &results[j]
		b := &blocks[jb.block]
		if jb.retarget && !(sr.Success && sr.Distance < p.threshold) {
			res.Unreached++
		}
		local := sr.Template.CircuitWith(sr.Params, func(a, b int) circuit.Op { return gs.on(a, b, defIndex) })
		ops := globalOps(local, b.Qubits)
		if b.Fence {
			for k := range ops {
				ops[k].Cond = b.Ops[0].Cond
			}
		}
		b.Ops = ops
		res.Replaced++
		res.BlockDistances += sr.Distance
		rootSum += math.Sqrt(sr.Distance)
		if jb.perm != nil {
			moved := &res.PermutedInputs
			if jb.output {
				moved = &res.PermutedOutputs
			}
			if *moved == nil {
				*moved = Identity(c.Qubits)
			}
			for x, y := range jb.perm {
				(*moved)[b.Qubits[x]] = b.Qubits[y]
			}
		}
	}
	res.ErrorBound = rootSum * rootSum
	if p.req.ErrorThreshold > 0 && res.ErrorBound > p.req.ErrorThreshold {
		return nil, fmt.Errorf("resynth: the error bound %.3g exceeds the error threshold %.3g: %d blocks could not be written in the gate set %s within it",
			res.ErrorBound, p.req.ErrorThreshold, res.Unreached, p.spec)
	}
	out := Assemble(c.Qubits, blocks)
	out.Cregs = c.Cregs
	out.Defs = c.Defs
	out, err := retargetOneQubit(out, gs)
	if err != nil {
		return nil, err
	}
	res.QASM = circuit.FormatQASM(out)
	res.CNOTsAfter = out.CNOTs()
	res.TwoQubitGatesAfter = out.TwoQubitGates()
	res.Seconds = time.Since(p.start).Seconds()
	return res, nil
}

// choose returns the job, of a block's jobs from the job first on (their
// results rs, the block as it is first), whose result replaces the block,
// or −1 to keep it: of those within the threshold and the budget, the one
// of the fewest two-qubit gates, the earliest on a tie; a block outside
// the gate set is always replaced, by its first result when none is
// within the threshold (then the closest circuit found).
func (p *Plan) choose(rs []synth.Result, first int) int {
	best, bestCNOTs := -1, 0
	for k, sr := range rs {
		jb := p.jobs[first+k]
		if !sr.Success || sr.Distance >= p.threshold || sr.CNOTs > jb.budget {
			continue
		}
		if best < 0 || sr.CNOTs < bestCNOTs {
			best, bestCNOTs = first+k, sr.CNOTs
		}
	}
	if best < 0 && p.jobs[first].retarget {
		return first
	}
	return best
}

// Identity returns the identity permutation of n qubits.
func Identity(n int) []int {
	m := make([]int, n)
	for i := range m {
		m[i] = i
	}
	return m
}

// retargetOneQubit merges each run of unconditioned single-qubit gates on
// a qubit into one unitary and writes it in the gate set's basis (a
// conditioned one alone, keeping its condition), and gives the output the
// set's definition when it uses one. Every two-qubit gate must already be
// the set's.
func retargetOneQubit(c *circuit.Circuit, gs *GateSet) (*circuit.Circuit, error) {
	out := &circuit.Circuit{Qubits: c.Qubits, Cregs: c.Cregs}
	pending := make([]*[4]complex128, c.Qubits)
	flush := func(q int) {
		if pending[q] != nil {
			out.Ops = append(out.Ops, gs.oneQubit(q, *pending[q])...)
			pending[q] = nil
		}
	}
	usesDef := false
	for i, op := range c.Ops {
		if op.Gate == circuit.Barrier && op.Arg == 0 {
			// Flush the qubits of the whole barrier statement first, so
			// that its ops stay together.
			for _, next := range c.Ops[i:] {
				if next.Gate != circuit.Barrier || next.Arg == 0 && next != op {
					break
				}
				flush(next.Qubits[0])
			}
		}
		if op.Gate.Unitary() && op.Gate.Arity() == 1 {
			m := [4]complex128(op.Gate.Matrix(op.Params))
			if op.Cond.Set() {
				flush(op.Qubits[0])
				if gs.nativeOne(op) {
					out.Ops = append(out.Ops, op)
					continue
				}
				for _, g := range gs.oneQubit(op.Qubits[0], m) {
					g.Cond = op.Cond
					out.Ops = append(out.Ops, g)
				}
				continue
			}
			q := op.Qubits[0]
			if pending[q] == nil {
				pending[q] = &[4]complex128{1, 0, 0, 1}
			}
			p := *pending[q]
			pending[q] = &[4]complex128{
				m[0]*p[0] + m[1]*p[2], m[0]*p[1] + m[1]*p[3],
				m[2]*p[0] + m[3]*p[2], m[2]*p[1] + m[3]*p[3],
			}
			continue
		}
		for _, q := range op.QubitList() {
			flush(q)
		}
		if op.Gate.Unitary() {
			if !gs.nativeTwo(op, c.Defs) {
				return nil, fmt.Errorf("resynth: %s left outside the gate set %s", op.Gate, gs)
			}
			if op.Gate == circuit.Defined {
				op.Arg = 0
				usesDef = true
			}
		}
		out.Ops = append(out.Ops, op)
	}
	for q := range pending {
		flush(q)
	}
	if usesDef {
		out.Defs = []circuit.Def{gs.Def()}
	}
	return out, nil
}
