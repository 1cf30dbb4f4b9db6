package resynth

import (
	"context"
	"encoding/json"
	"fmt"
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
	BlockQubits int     `json:"block_qubits,omitempty"` // 2 or 3; DefaultBlockQubits when 0
	Threshold   float64 `json:"threshold,omitempty"`    // per block; instantiate.DefaultThreshold when 0
}

// Result is the outcome of a resynthesis.
type Result struct {
	QASM        string  `json:"qasm"`
	CNOTsBefore int     `json:"cnots_before"`
	CNOTsAfter  int     `json:"cnots_after"`
	Blocks      int     `json:"blocks"`      // blocks in the partition
	Synthesised int     `json:"synthesised"` // blocks sent to synthesis
	Replaced    int     `json:"replaced"`    // blocks replaced by fewer CNOTs
	Seconds     float64 `json:"seconds"`
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

// Resynthesize partitions c into blocks, synthesises every block with at
// least two CNOTs as one Map of synth tasks (each with a budget of one
// CNOT fewer than the block), keeps a new block only when it has fewer
// CNOTs and is within the threshold, and reassembles the circuit. The
// QASM field of req is ignored.
func Resynthesize(ctx context.Context, rt kernels.Runtime, c *circuit.Circuit, req Request) (*Result, error) {
	start := time.Now()
	if err := c.Validate(); err != nil {
		return nil, &RequestError{err}
	}
	bq := req.BlockQubits
	if bq == 0 {
		bq = DefaultBlockQubits
	}
	if bq < 2 || bq > 3 {
		return nil, &RequestError{fmt.Errorf("block_qubits %d (2 or 3)", bq)}
	}
	threshold := req.Threshold
	if threshold == 0 {
		threshold = instantiate.DefaultThreshold
	}
	if err := (instantiate.Options{Threshold: threshold}).Validate(); err != nil {
		return nil, &RequestError{err}
	}
	blocks := Partition(c, bq)
	var tasks []kernels.Task
	var which []int
	for i, b := range blocks {
		if len(b.Qubits) < 2 || b.CNOTs() < 2 {
			continue // one CNOT and single-qubit gates cannot lose a CNOT
		}
		u, err := b.Local().Unitary()
		if err != nil {
			return nil, err
		}
		payload, err := json.Marshal(&synth.Request{
			Target:      u,
			Seed:        req.Seed + uint64(i),
			MaxCNOTs:    min(b.CNOTs()-1, synth.DefaultMaxCNOTs(len(b.Qubits))),
			Instantiate: instantiate.Options{Threshold: threshold},
		})
		if err != nil {
			return nil, err
		}
		tasks = append(tasks, kernels.Task{Kernel: synth.KernelSynth, Payload: payload})
		which = append(which, i)
	}
	res := &Result{CNOTsBefore: c.CNOTs(), Blocks: len(blocks), Synthesised: len(tasks)}
	if len(tasks) > 0 {
		f, err := rt.Map(ctx, tasks)
		if err != nil {
			return nil, err
		}
		values, err := rt.Wait(ctx, f)
		if err != nil {
			return nil, fmt.Errorf("resynth: %w", err)
		}
		for j, v := range values {
			var sr synth.Result
			if err := json.Unmarshal(v, &sr); err != nil {
				return nil, fmt.Errorf("resynth: block %d: %w", which[j], err)
			}
			b := &blocks[which[j]]
			if !sr.Success || sr.Distance >= threshold || sr.CNOTs >= b.CNOTs() {
				continue
			}
			b.Ops = globalOps(sr.Circuit(), b.Qubits)
			res.Replaced++
		}
	}
	out := Assemble(c.Qubits, blocks)
	res.QASM = circuit.FormatQASM(out)
	res.CNOTsAfter = out.CNOTs()
	res.Seconds = time.Since(start).Seconds()
	return res, nil
}
