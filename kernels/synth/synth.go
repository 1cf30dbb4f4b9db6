package synth

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"

	"github.com/qlaunch/qlaunch/kernels"
	"github.com/qlaunch/qlaunch/kernels/circuit"
	"github.com/qlaunch/qlaunch/kernels/instantiate"
)

// KernelSynth is the synthesis kernel's name.
const KernelSynth = "synth"

// Request is the payload of the synth kernel.
type Request struct {
	Target circuit.Matrix `json:"target"`
	// Coupling lists the qubit pairs a CNOT may join; empty means every
	// pair (all-to-all). A CNOT on (a, b) is placed with control a.
	Coupling []instantiate.Block `json:"coupling,omitempty"`
	Seed     uint64              `json:"seed"`
	// Gate, when set, is the two-qubit gate of the circuits instead of
	// CNOT: a constant gate defined by its body (see circuit.Def). The
	// counts named CNOTs then count it.
	Gate *circuit.Def `json:"gate,omitempty"`
	// MaxCNOTs is the CNOT budget; 0 means DefaultMaxCNOTs for the
	// target's qubits. Synthesis stops when it is spent and returns the
	// best circuit found.
	MaxCNOTs int `json:"max_cnots,omitempty"`
	// Beam is the number of open circuits expanded per step, the best by
	// Factor·distance + CNOTs (DefaultBeam when 0), besides the probe (the
	// closest circuit of the deepest layer); each is extended by every
	// coupling pair.
	Beam int `json:"beam,omitempty"`
	// Factor weighs the distance against the CNOT count in the ranking
	// (DefaultFactor when 0).
	Factor float64 `json:"factor,omitempty"`
	// ExtraSteps bounds the steps run after the first success in search
	// of one with fewer CNOTs (DefaultExtraSteps when absent).
	ExtraSteps *int `json:"extra_steps,omitempty"`
	// Patience, when positive, ends the search before its first success
	// after that many steps in a row that brought no circuit at least
	// 1 % closer to the target than the closest before them (see
	// search.next): a wide block that cannot be written with fewer CNOTs
	// then stops long before its budget. 0: no bound.
	Patience int `json:"patience,omitempty"`
	// Known, when set, is a circuit known to implement the target, as
	// the blocks of a template (on the target's qubits, of the request's
	// two-qubit gate) and its parameters. Synthesis first removes its
	// two-qubit gates one at a time while it still reaches the threshold
	// (see removeGates), then searches as usual with a budget of one
	// fewer than what is left, and returns the better.
	Known *Known `json:"known,omitempty"`
	// Instantiate tunes each candidate's instantiation (threshold, starts).
	Instantiate instantiate.Options `json:"instantiate,omitzero"`
}

// Known is a circuit of a template's form: its blocks and parameters.
type Known struct {
	Blocks []instantiate.Block `json:"blocks"`
	Params []float64           `json:"params"`
}

// Result is the outcome of a synthesis.
type Result struct {
	QASM     string               `json:"qasm"`
	CNOTs    int                  `json:"cnots"`
	Distance float64              `json:"distance"`
	Success  bool                 `json:"success"` // Distance below the threshold
	Template instantiate.Template `json:"template"`
	Params   []float64            `json:"params"`
	// Instantiations is the number of candidate circuits instantiated.
	Instantiations int `json:"instantiations"`
	// StepTasks is the number of instantiate.start tasks of each step,
	// all mapped at once.
	StepTasks []int `json:"step_tasks"`
}

// Circuit returns the synthesised circuit (the two-qubit gate of a
// request's Gate as a defined gate, Defs[0], when there was one).
func (r *Result) Circuit() *circuit.Circuit { return r.circuit(nil) }

func (r *Result) circuit(def *circuit.Def) *circuit.Circuit {
	c := r.Template.Circuit(r.Params)
	if def != nil {
		c.Defs = []circuit.Def{*def}
	}
	return c
}

// DefaultMaxCNOTs returns the default CNOT budget for qubits qubits: 3 for
// two (always enough), 14 for three, 6·4^(n−2) beyond.
func DefaultMaxCNOTs(qubits int) int {
	switch qubits {
	case 0, 1:
		return 0
	case 2:
		return 3
	case 3:
		return 14
	}
	return 6 << (2 * (qubits - 2))
}

// Defaults of the search.
const (
	DefaultBeam       = 5
	DefaultFactor     = 20
	DefaultExtraSteps = 2
)

// DefaultStarts returns the starting points per candidate by default: 8
// on two qubits or fewer, where instantiations are cheap and the last
// step must not miss, 4 beyond, where the search's breadth matters more.
func DefaultStarts(qubits int) int {
	if qubits <= 2 {
		return 8
	}
	return 4
}

// MaxQubits is the most qubits synth accepts.
const MaxQubits = 4

// WidePatience is the patience (Request.Patience) for blocks of
// MaxQubits qubits. Their searches are the long ones: a step of a
// 4-qubit search instantiates up to 36 candidates from 4 starts each,
// and a block whose CNOTs cannot be lowered used to run until the probe
// had spent its whole budget (minutes of a compile for nothing).
const WidePatience = 3

// RequestError reports a payload that is not a valid Request.
type RequestError struct{ Err error }

func (e *RequestError) Error() string { return "synth: bad request: " + e.Err.Error() }
func (e *RequestError) Unwrap() error { return e.Err }

// BadInput marks the error as the caller's fault.
func (e *RequestError) BadInput() bool { return true }

// Validate checks the request.
func (r *Request) Validate() error {
	if err := r.Target.Validate(1e-8); err != nil {
		return &RequestError{err}
	}
	n := r.Target.Qubits()
	if n > MaxQubits {
		return &RequestError{fmt.Errorf("%d qubits, at most %d", n, MaxQubits)}
	}
	if r.Gate != nil {
		if len(r.Gate.Body) > circuit.MaxDefBody {
			return &RequestError{fmt.Errorf("gate %s: body of %d operations", r.Gate.Name, len(r.Gate.Body))}
		}
		if err := (&circuit.Circuit{Qubits: 2, Defs: []circuit.Def{*r.Gate}}).Validate(); err != nil {
			return &RequestError{fmt.Errorf("gate: %w", err)}
		}
	}
	if err := (instantiate.Template{Qubits: max(n, 1), Blocks: r.Coupling}).Validate(); err != nil {
		return &RequestError{fmt.Errorf("coupling: %w", err)}
	}
	if r.MaxCNOTs < 0 || r.MaxCNOTs > 256 {
		return &RequestError{fmt.Errorf("max_cnots %d (0 to 256)", r.MaxCNOTs)}
	}
	if r.Beam < 0 || r.Beam > 64 {
		return &RequestError{fmt.Errorf("beam %d (0 to 64)", r.Beam)}
	}
	if math.IsNaN(r.Factor) || r.Factor < 0 || r.Factor > 1e6 {
		return &RequestError{fmt.Errorf("factor %v (0 to 1e6)", r.Factor)}
	}
	if r.ExtraSteps != nil && (*r.ExtraSteps < 0 || *r.ExtraSteps > 64) {
		return &RequestError{fmt.Errorf("extra_steps %d (0 to 64)", *r.ExtraSteps)}
	}
	if r.Patience < 0 || r.Patience > 256 {
		return &RequestError{fmt.Errorf("patience %d (0 to 256)", r.Patience)}
	}
	if k := r.Known; k != nil {
		if len(k.Blocks) > 256 {
			return &RequestError{fmt.Errorf("known: %d blocks (at most 256)", len(k.Blocks))}
		}
		t := instantiate.Template{Qubits: max(n, 1), Blocks: k.Blocks}
		if err := t.Validate(); err != nil {
			return &RequestError{fmt.Errorf("known: %w", err)}
		}
		if len(k.Params) != t.NumParams() {
			return &RequestError{fmt.Errorf("known: %d parameters for a template of %d", len(k.Params), t.NumParams())}
		}
		for _, v := range k.Params {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return &RequestError{fmt.Errorf("known: parameter %v", v)}
			}
		}
	}
	if err := r.Instantiate.Validate(); err != nil {
		return &RequestError{err}
	}
	return nil
}

// DecodeRequest decodes and validates a Request payload.
func DecodeRequest(payload []byte) (*Request, error) {
	var r Request
	if err := json.Unmarshal(payload, &r); err != nil {
		return nil, &RequestError{err}
	}
	if err := r.Validate(); err != nil {
		return nil, err
	}
	return &r, nil
}

// Kernels returns the synth kernel and the instantiate kernels it uses.
func Kernels() []kernels.Kernel {
	return append([]kernels.Kernel{
		{Name: KernelSynth, Func: synthKernel, Retryable: true,
			Doc: "synthesise a CNOT+U3 circuit for a unitary (JSON request payload, JSON result)"},
	}, instantiate.Kernels()...)
}

func synthKernel(ctx context.Context, rt kernels.Runtime, args []string, payload []byte) ([]byte, error) {
	if len(args) != 0 {
		return nil, &kernels.UsageError{Kernel: KernelSynth, Msg: "takes no arguments"}
	}
	req, err := DecodeRequest(payload)
	if err != nil {
		return nil, err
	}
	res, err := Synthesize(ctx, rt, req)
	if err != nil {
		return nil, err
	}
	return json.Marshal(res)
}

// Synthesize searches for the template with fewest CNOTs that reaches
// the threshold (see search): at each step it instantiates the children
// of the nodes chosen (each extended by a block on every coupling pair)
// as one flat Map of instantiate.start tasks, candidates × starts, each
// candidate starting from its parent's parameters (start 0) and from
// random points. Every task of a step is waited for and each candidate
// keeps its best start by (distance, start index), so the result depends
// only on req, never on the number of slots or on which task ends first.
func Synthesize(ctx context.Context, rt kernels.Runtime, req *Request) (*Result, error) {
	if err := req.Validate(); err != nil {
		return nil, err
	}
	opts := req.Instantiate
	if opts.Threshold == 0 {
		opts.Threshold = instantiate.DefaultThreshold
	}
	n := max(req.Target.Qubits(), 1)
	var gate *circuit.Matrix
	if req.Gate != nil {
		m, err := req.Gate.Matrix()
		if err != nil {
			return nil, &RequestError{err}
		}
		gate = &m
	}
	if opts.Starts == 0 {
		opts.Starts = DefaultStarts(n)
	}
	s := &search{
		budget:    req.MaxCNOTs,
		width:     cmp.Or(req.Beam, DefaultBeam),
		extra:     DefaultExtraSteps,
		factor:    cmp.Or(req.Factor, DefaultFactor),
		threshold: opts.Threshold,
		pairs:     req.Coupling,
	}
	if req.ExtraSteps != nil {
		s.extra = *req.ExtraSteps
	}
	if s.budget == 0 {
		s.budget = DefaultMaxCNOTs(n)
	}
	if len(s.pairs) == 0 {
		for a := range n {
			for b := a + 1; b < n; b++ {
				s.pairs = append(s.pairs, instantiate.Block{a, b})
			}
		}
	}
	s.patience = req.Patience
	res := &Result{}
	var known *node
	if req.Known != nil {
		var err error
		known, err = removeGates(ctx, rt, req, opts, instantiate.Template{Qubits: n, Gate: gate, Blocks: req.Known.Blocks}, res)
		if err != nil {
			return nil, err
		}
		if known.dist < opts.Threshold {
			s.budget = min(s.budget, known.tmpl.CNOTs()-1)
		} else {
			known = nil // not a solution: the search alone decides
		}
	}
	rootTmpl := instantiate.Template{Qubits: n, Gate: gate}
	root, err := instantiateStep(ctx, rt, req, opts, 0, []candidate{{tmpl: rootTmpl}})
	if err != nil {
		return nil, err
	}
	res.StepTasks = append(res.StepTasks, opts.Starts)
	s.add(s.newNode(rootTmpl, root[0]))
	for step := 1; ; step++ {
		parents := s.next()
		if len(parents) == 0 {
			break
		}
		var cands []candidate
		for _, p := range parents {
			for _, b := range s.pairs {
				cands = append(cands, candidate{tmpl: p.tmpl.With(b), initial: p.params})
			}
		}
		results, err := instantiateStep(ctx, rt, req, opts, step, cands)
		if err != nil {
			return nil, err
		}
		res.StepTasks = append(res.StepTasks, len(cands)*opts.Starts)
		for i, c := range cands {
			s.add(s.newNode(c.tmpl, results[i]))
		}
	}
	best := s.result()
	if known != nil && s.success == nil {
		best = known // the search found nothing shorter
	}
	res.Template, res.Params, res.Distance = best.tmpl, best.params, best.dist
	res.Instantiations += s.nextID
	res.Success = res.Distance < opts.Threshold
	res.CNOTs = res.Template.CNOTs()
	res.QASM = circuit.FormatQASM(res.circuit(req.Gate))
	return res, nil
}

// removalStarts is the number of starting points of each candidate of
// removeGates: its parent's parameters less the removed gate's, and one
// random point. A template of a dozen CNOTs on 4 qubits is all but never
// reached from random points, so more buy little.
const removalStarts = 2

// removalStep numbers removeGates's steps for their seeds (mixSeed),
// apart from the search's.
const removalStep = 1 << 20

// removeGates starts from the known circuit tmpl, req.Known.Params (its
// instantiation checked first, from those parameters), and removes its
// two-qubit gates one at a time: each step instantiates every circuit
// with one gate fewer (the gate's two U3s go with it), from the parent's
// other parameters and a random point, as one Map, and goes on from the
// closest below the threshold (ties to the earlier gate), until none is
// below it. This is the scanning removal of BQSKit's gate-deletion pass,
// on a whole step at once. It returns the circuit left, with the steps'
// tasks and instantiations counted in res.
func removeGates(ctx context.Context, rt kernels.Runtime, req *Request, opts instantiate.Options, tmpl instantiate.Template, res *Result) (*node, error) {
	n := tmpl.Qubits
	check := opts
	check.Starts = 1
	first, err := instantiateStep(ctx, rt, req, check, removalStep, []candidate{{tmpl: tmpl, initial: req.Known.Params}})
	if err != nil {
		return nil, err
	}
	res.StepTasks = append(res.StepTasks, 1)
	res.Instantiations++
	cur := &node{tmpl: tmpl, params: first[0].Params, dist: first[0].Distance}
	if cur.dist >= opts.Threshold {
		return cur, nil
	}
	step := opts
	step.Starts = removalStarts
	for round := 1; len(cur.tmpl.Blocks) > 0; round++ {
		cands := make([]candidate, len(cur.tmpl.Blocks))
		for i := range cur.tmpl.Blocks {
			t := cur.tmpl
			t.Blocks = slices.Delete(slices.Clone(t.Blocks), i, i+1)
			at := 3 * (n + 2*i) // the gate's two U3s
			cands[i] = candidate{tmpl: t, initial: slices.Delete(slices.Clone(cur.params), at, at+6)}
		}
		results, err := instantiateStep(ctx, rt, req, step, removalStep+round, cands)
		if err != nil {
			return nil, err
		}
		res.StepTasks = append(res.StepTasks, len(cands)*step.Starts)
		res.Instantiations += len(cands)
		best := -1
		for i, r := range results {
			if r.Distance < opts.Threshold && (best < 0 || r.Distance < results[best].Distance) {
				best = i
			}
		}
		if best < 0 {
			break
		}
		cur = &node{tmpl: cands[best].tmpl, params: results[best].Params, dist: results[best].Distance}
	}
	return cur, nil
}

// candidate is a template to instantiate and its parent's parameters.
type candidate struct {
	tmpl    instantiate.Template
	initial []float64
}

// instantiateStep instantiates every candidate from opts.Starts starting
// points as one Map of instantiate.start tasks (candidate-major) and
// returns each candidate's best start by (distance, start index). The
// seed of candidate i derives from (req.Seed, step, i).
func instantiateStep(ctx context.Context, rt kernels.Runtime, req *Request, opts instantiate.Options, step int, cands []candidate) ([]instantiate.Result, error) {
	tasks := make([]kernels.Task, 0, len(cands)*opts.Starts)
	for i, c := range cands {
		payload, err := json.Marshal(&instantiate.Request{
			Target:   req.Target,
			Template: c.tmpl,
			Seed:     mixSeed(req.Seed, step, i),
			Initial:  c.initial,
			Options:  opts,
		})
		if err != nil {
			return nil, err
		}
		for j := range opts.Starts {
			tasks = append(tasks, kernels.Task{Kernel: instantiate.KernelStart, Args: []string{strconv.Itoa(j)}, Payload: payload})
		}
	}
	f, err := rt.Map(ctx, tasks)
	if err != nil {
		return nil, fmt.Errorf("synth: step %d: %w", step, err)
	}
	vals, err := rt.Wait(ctx, f)
	if err != nil {
		return nil, fmt.Errorf("synth: step %d: %w", step, err)
	}
	best := make([]instantiate.Result, len(cands))

	for i, v := range vals {
		var r instantiate.Result
		if err := json.Unmarshal(v, &r); err != nil {
			return nil, fmt.Errorf("synth: step %d: task %d: %w", step, i, err)
		}
		c, j := i/opts.Starts, i%opts.Starts
		if j == 0 || r.Distance < best[c].Distance {
			best[c] = r
		}
	}
	return best, nil
}

// mixSeed derives the seed of candidate i at step from the request's seed
// (splitmix64 finaliser).
func mixSeed(seed uint64, step, i int) uint64 {
	z := seed + uint64(step)*0x9e3779b97f4a7c15 + uint64(i)*0xbf58476d1ce4e5b9 + 1
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return z ^ z>>31
}
