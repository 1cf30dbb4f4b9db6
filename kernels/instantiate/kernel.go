package instantiate

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"sync"

	"github.com/qlaunch/qlaunch/kernels"
	"github.com/qlaunch/qlaunch/kernels/circuit"
)

// Kernel names.
const (
	KernelInstantiate = "instantiate"
	KernelStart       = "instantiate.start"
)

// Request is the payload of the instantiate kernels.
type Request struct {
	Target   circuit.Matrix `json:"target"`
	Template Template       `json:"template"`
	Seed     uint64         `json:"seed"`
	// Initial, when set, is where start 0 begins; angles beyond its
	// length are random. Synthesis passes the parent circuit's solution.
	Initial []float64 `json:"initial,omitempty"`
	Options
}

// Validate checks the request.
func (r *Request) Validate() error {
	if err := r.Template.Validate(); err != nil {
		return err
	}
	if err := r.Options.Validate(); err != nil {
		return err
	}
	if r.Target.Dim != 1<<r.Template.Qubits {
		return fmt.Errorf("instantiate: target of dimension %d for %d qubits: %w", r.Target.Dim, r.Template.Qubits, ErrBadRequest)
	}
	if err := r.Target.Validate(1e-8); err != nil {
		return fmt.Errorf("instantiate: target: %w: %w", ErrBadRequest, err)
	}
	if len(r.Initial) > r.Template.NumParams() {
		return fmt.Errorf("instantiate: %d initial parameters for a template of %d: %w", len(r.Initial), r.Template.NumParams(), ErrBadRequest)
	}
	for _, v := range r.Initial {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Errorf("instantiate: initial parameter %v: %w", v, ErrBadRequest)
		}
	}
	return nil
}

// startPoint returns the starting point of start i.
func (r *Request) startPoint(i int) []float64 {
	x := StartPoint(r.Seed, i, r.Template.NumParams())
	if i == 0 {
		copy(x, r.Initial)
	}
	return x
}

// RequestError reports a payload that is not a valid Request.
type RequestError struct{ Err error }

func (e *RequestError) Error() string { return "instantiate: bad payload: " + e.Err.Error() }
func (e *RequestError) Unwrap() error { return e.Err }

// BadInput marks the error as the caller's fault.
func (e *RequestError) BadInput() bool { return true }

// DecodeRequest decodes and validates a Request payload.
func DecodeRequest(payload []byte) (*Request, error) {
	var r Request
	if err := json.Unmarshal(payload, &r); err != nil {
		return nil, &RequestError{err}
	}
	if err := r.Validate(); err != nil {
		return nil, &RequestError{err}
	}
	r.Options = r.Options.withDefaults()
	return &r, nil
}

// Kernels returns the instantiate kernels.
func Kernels() []kernels.Kernel {
	return []kernels.Kernel{
		{Name: KernelInstantiate, Func: instantiateKernel, Retryable: true, Usage: "",
			Doc: "fit a template circuit to a unitary from several starts (JSON request payload)"},
		{Name: KernelStart, Func: startKernel, Retryable: true, Usage: "INDEX",
			Doc: "fit a template circuit to a unitary from one start (JSON request payload)"},
	}
}

func startKernel(ctx context.Context, rt kernels.Runtime, args []string, payload []byte) ([]byte, error) {
	if len(args) != 1 {
		return nil, &kernels.UsageError{Kernel: KernelStart, Usage: "INDEX", Msg: "want one argument"}
	}
	i, err := strconv.Atoi(args[0])
	if err != nil || i < 0 {
		return nil, &kernels.UsageError{Kernel: KernelStart, Usage: "INDEX", Msg: fmt.Sprintf("bad index %q", args[0])}
	}
	req, err := decodeShared(rt.Cache(), payload)
	if err != nil {
		return nil, err
	}
	w, err := NewWorkspace(req.Target, req.Template)
	if err != nil {
		return nil, err
	}
	res, err := Run(ctx, w, req.startPoint(i), req.Options)
	if err != nil {
		return nil, err
	}
	res.Start = i
	return json.Marshal(res)
}

func instantiateKernel(ctx context.Context, rt kernels.Runtime, args []string, payload []byte) ([]byte, error) {
	if len(args) != 0 {
		return nil, &kernels.UsageError{Kernel: KernelInstantiate, Msg: "takes no arguments"}
	}
	req, err := DecodeRequest(payload)
	if err != nil {
		return nil, err
	}
	res, err := Distributed(ctx, rt, req)
	if err != nil {
		return nil, err
	}
	return json.Marshal(res)
}

// Distributed runs the starts of req as instantiate.start child tasks of
// rt and returns the first success in start order, or the best result.
func Distributed(ctx context.Context, rt kernels.Runtime, req *Request) (Result, error) {
	payload, err := json.Marshal(req)
	if err != nil {
		return Result{}, err
	}
	tasks := make([]kernels.Task, req.Starts)
	for i := range tasks {
		tasks[i] = kernels.Task{Kernel: KernelStart, Args: []string{strconv.Itoa(i)}, Payload: payload}
	}
	f, err := rt.Map(ctx, tasks)
	if err != nil {
		return Result{}, err
	}
	sel := newSelector(req.Starts, req.Threshold)
	for !sel.done() {
		batch, err := rt.Next(ctx, f)
		if err != nil {
			return Result{}, err
		}
		for _, r := range batch {
			if r.Err != nil {
				_ = rt.Cancel(f)
				return Result{}, fmt.Errorf("instantiate: start %d: %w", r.Index, r.Err)
			}
			var res Result
			if err := json.Unmarshal(r.Value, &res); err != nil {
				_ = rt.Cancel(f)
				return Result{}, fmt.Errorf("instantiate: start %d: %w", r.Index, err)
			}
			sel.add(r.Index, res)
		}
	}
	if !sel.all() {
		_ = rt.Cancel(f)
	}
	return sel.best(), nil
}

// selector picks the result of a set of starts deterministically: the
// lowest-index success, or else the lowest distance (ties to the lower
// index). It is done once that choice cannot change.
type selector struct {
	threshold float64
	results   []*Result
	in        int
}

func newSelector(n int, threshold float64) *selector {
	return &selector{threshold: threshold, results: make([]*Result, n)}
}

func (s *selector) add(i int, r Result) {
	if s.results[i] == nil {
		s.in++
	}
	s.results[i] = &r
}

func (s *selector) all() bool { return s.in == len(s.results) }

// done reports whether every start before the first success is in (or
// every start, when none succeeded).
func (s *selector) done() bool {
	for _, r := range s.results {
		if r == nil {
			return false
		}
		if r.Success(s.threshold) {
			return true
		}
	}
	return true
}

func (s *selector) best() Result {
	var best *Result
	for _, r := range s.results {
		if r == nil {
			break
		}
		if r.Success(s.threshold) {
			return *r
		}
		if best == nil || r.Distance < best.Distance {
			best = r
		}
	}
	if best == nil {
		return Result{Distance: 1}
	}
	return *best
}

// Instantiate runs the starts of req one after another in this goroutine,
// with the same choice of result as the instantiate kernel.
func Instantiate(ctx context.Context, req *Request) (Result, error) {
	if err := req.Validate(); err != nil {
		return Result{}, err
	}
	req.Options = req.Options.withDefaults()
	w, err := NewWorkspace(req.Target, req.Template)
	if err != nil {
		return Result{}, err
	}
	sel := newSelector(req.Starts, req.Threshold)
	for i := 0; !sel.done(); i++ {
		res, err := Run(ctx, w, req.startPoint(i), req.Options)
		if err != nil {
			return Result{}, err
		}
		res.Start = i
		sel.add(i, res)
	}
	return sel.best(), nil
}

// recentKey is the worker-rank cache key of the recently decoded start
// payloads.
const recentKey = "instantiate.start/recent"

// recent holds the last few decoded start payloads of a worker rank: the
// starts of one candidate share one payload, and decoding it (a JSON
// unitary, checked) costs a few percent of a start.
type recent struct {
	mu      sync.Mutex
	entries [4]struct {
		payload []byte
		req     *Request
	}
	next int
}

// decodeShared decodes payload, or returns the Request decoded from the
// same bytes recently on this rank. The Request is shared: read it only.
func decodeShared(c *kernels.Cache, payload []byte) (*Request, error) {
	r := c.GetOrPut(recentKey, func() any { return &recent{} }).(*recent)
	r.mu.Lock()
	for _, e := range r.entries {
		if e.req != nil && bytes.Equal(e.payload, payload) {
			r.mu.Unlock()
			return e.req, nil
		}
	}
	r.mu.Unlock()
	req, err := DecodeRequest(payload)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	e := &r.entries[r.next]
	e.payload, e.req = bytes.Clone(payload), req
	r.next = (r.next + 1) % len(r.entries)
	r.mu.Unlock()
	return req, nil
}
