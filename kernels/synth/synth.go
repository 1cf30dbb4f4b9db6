package synth

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"

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
	// MaxCNOTs is the CNOT budget; 0 means DefaultMaxCNOTs for the
	// target's qubits. Synthesis stops when it is spent and returns the
	// best circuit found.
	MaxCNOTs int `json:"max_cnots,omitempty"`
	// Beam is the number of circuits kept from one step to the next
	// (DefaultBeam when 0); each is extended by every coupling pair.
	Beam int `json:"beam,omitempty"`
	// Instantiate tunes each candidate's instantiation (threshold, starts).
	Instantiate instantiate.Options `json:"instantiate,omitzero"`
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
}

// Circuit returns the synthesised circuit.
func (r *Result) Circuit() *circuit.Circuit { return r.Template.Circuit(r.Params) }

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

// DefaultBeam is the number of circuits kept per step by default.
const DefaultBeam = 2

// MaxQubits is the most qubits synth accepts.
const MaxQubits = 4

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
	if err := (instantiate.Template{Qubits: max(n, 1), Blocks: r.Coupling}).Validate(); err != nil {
		return &RequestError{fmt.Errorf("coupling: %w", err)}
	}
	if r.MaxCNOTs < 0 || r.MaxCNOTs > 256 {
		return &RequestError{fmt.Errorf("max_cnots %d (0 to 256)", r.MaxCNOTs)}
	}
	if r.Beam < 0 || r.Beam > 64 {
		return &RequestError{fmt.Errorf("beam %d (0 to 64)", r.Beam)}
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

// Synthesize grows a template one CNOT block at a time: at each step it
// instantiates, as one Map of instantiate tasks, the best circuit so far
// extended by a block on each coupling pair, each starting from the
// parent's parameters (start 0) and random points, and keeps the best
// candidate. It stops at the first step with a candidate below the
// threshold (the lowest-index such candidate) or when the CNOT budget is
// spent. The result depends only on req.
func Synthesize(ctx context.Context, rt kernels.Runtime, req *Request) (*Result, error) {
	if err := req.Validate(); err != nil {
		return nil, err
	}
	opts := req.Instantiate
	if opts.Threshold == 0 {
		opts.Threshold = instantiate.DefaultThreshold
	}
	n := max(req.Target.Qubits(), 1)
	budget := req.MaxCNOTs
	if budget == 0 {
		budget = DefaultMaxCNOTs(n)
	}
	pairs := req.Coupling
	if len(pairs) == 0 {
		for a := range n {
			for b := a + 1; b < n; b++ {
				pairs = append(pairs, instantiate.Block{a, b})
			}
		}
	}
	beam := req.Beam
	if beam == 0 {
		beam = DefaultBeam
	}
	res := &Result{}
	type node struct {
		tmpl   instantiate.Template
		params []float64
	}
	frontier := []node{{tmpl: instantiate.Template{Qubits: n}}}
	for step := 0; ; step++ {
		var cands []node
		var tasks []kernels.Task
		for _, parent := range frontier {
			ext := pairs
			if step == 0 {
				ext = []instantiate.Block{{-1, -1}} // the bare U3 layer
			}
			for _, p := range ext {
				cand := parent.tmpl
				if step > 0 {
					cand = parent.tmpl.With(p)
				}
				payload, err := json.Marshal(&instantiate.Request{
					Target:   req.Target,
					Template: cand,
					Seed:     mixSeed(req.Seed, step, len(tasks)),
					Initial:  parent.params,
					Options:  opts,
				})
				if err != nil {
					return nil, err
				}
				cands = append(cands, node{tmpl: cand})
				tasks = append(tasks, kernels.Task{Kernel: instantiate.KernelInstantiate, Payload: payload})
			}
		}
		order, results, err := rankCandidates(ctx, rt, tasks, opts.Threshold)
		if err != nil {
			return nil, fmt.Errorf("synth: step %d: %w", step, err)
		}
		res.Instantiations += len(tasks)
		top := results[order[0]]
		res.Template, res.Params, res.Distance = cands[order[0]].tmpl, top.Params, top.Distance
		if top.Success(opts.Threshold) || step >= budget || len(pairs) == 0 {
			break
		}
		frontier = frontier[:0:0]
		for _, i := range order[:min(beam, len(order))] {
			frontier = append(frontier, node{tmpl: cands[i].tmpl, params: results[i].Params})
		}
	}
	res.Success = res.Distance < opts.Threshold
	res.CNOTs = res.Template.CNOTs()
	res.QASM = circuit.FormatQASM(res.Circuit())
	return res, nil
}

// rankCandidates maps tasks (instantiate tasks) and returns the indexes
// of those in, best first, with their results. When one is below
// threshold, order[0] is the lowest-index such task and the rest are
// cancelled as soon as every task before it is in; otherwise every task
// is waited for and order is by distance, ties to the lower index. The
// ranking never depends on timing.
func rankCandidates(ctx context.Context, rt kernels.Runtime, tasks []kernels.Task, threshold float64) ([]int, []instantiate.Result, error) {
	f, err := rt.Map(ctx, tasks)
	if err != nil {
		return nil, nil, err
	}
	results := make([]instantiate.Result, len(tasks))
	have := make([]bool, len(tasks))
	in := 0
	for {
		first := -1
		for i := range results {
			if !have[i] {
				break
			}
			if results[i].Success(threshold) {
				first = i
				break
			}
		}
		if first >= 0 {
			if in < len(results) {
				_ = rt.Cancel(f)
			}
			return []int{first}, results, nil
		}
		if in == len(results) {
			order := make([]int, len(results))
			for i := range order {
				order[i] = i
			}
			slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(results[a].Distance, results[b].Distance) })
			return order, results, nil
		}
		batch, err := rt.Next(ctx, f)
		if err != nil {
			return nil, nil, err
		}
		for _, r := range batch {
			if r.Err != nil {
				_ = rt.Cancel(f)
				return nil, nil, fmt.Errorf("candidate %d: %w", r.Index, r.Err)
			}
			if err := json.Unmarshal(r.Value, &results[r.Index]); err != nil {
				_ = rt.Cancel(f)
				return nil, nil, fmt.Errorf("candidate %d: %w", r.Index, err)
			}
			have[r.Index] = true
			in++
		}
	}
}

// mixSeed derives the seed of candidate i at step from the request's seed
// (splitmix64 finaliser).
func mixSeed(seed uint64, step, i int) uint64 {
	z := seed + uint64(step)*0x9e3779b97f4a7c15 + uint64(i)*0xbf58476d1ce4e5b9 + 1
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return z ^ z>>31
}
