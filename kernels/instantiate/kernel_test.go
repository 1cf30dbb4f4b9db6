package instantiate

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/qlaunch/qlaunch/kernels"
	"github.com/qlaunch/qlaunch/kernels/circuit"
	"github.com/qlaunch/qlaunch/kernels/kerneltest"
)

func newRuntime(t *testing.T, slots int) *kerneltest.Runtime {
	t.Helper()
	reg, err := kernels.NewRegistry(Kernels()...)
	if err != nil {
		t.Fatal(err)
	}
	return kerneltest.New(reg, slots)
}

func runKernel(t *testing.T, rt *kerneltest.Runtime, req Request) Result {
	t.Helper()
	payload, err := json.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	out, err := rt.Run(context.Background(), kernels.Task{Kernel: KernelInstantiate, Payload: payload})
	if err != nil {
		t.Fatal(err)
	}
	var res Result
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatal(err)
	}
	return res
}

func TestKernelRandomTwoQubitUnitaries(t *testing.T) {
	rt := newRuntime(t, 2)
	for seed := range uint64(5) {
		target := circuit.RandomUnitary(2, rand.New(rand.NewPCG(seed, 11)))
		req := Request{Target: target, Template: threeCNOTs, Seed: seed}
		res := runKernel(t, rt, req)
		if !res.Success(DefaultThreshold) {
			t.Errorf("seed %d: distance %g, want < %g", seed, res.Distance, DefaultThreshold)
		}
		v, err := threeCNOTs.Circuit(res.Params).Unitary()
		if err != nil {
			t.Fatal(err)
		}
		if d := circuit.Distance(target, v); d >= DefaultThreshold {
			t.Errorf("seed %d: circuit of the result at distance %g", seed, d)
		}
		// The sequential form picks the same start and parameters.
		local, err := Instantiate(context.Background(), &req)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(local, res) {
			t.Errorf("seed %d: kernel %+v, Instantiate %+v", seed, res, local)
		}
	}
}

func TestKernelTooFewCNOTsReturnsBestOfAllStarts(t *testing.T) {
	// A random 2-qubit unitary needs 3 CNOTs: with 1 every start fails and
	// the kernel returns the lowest distance among them, the same on one
	// slot as on two.
	target := circuit.RandomUnitary(2, rand.New(rand.NewPCG(3, 3)))
	req := Request{Target: target, Template: Template{Qubits: 2, Blocks: []Block{{0, 1}}}, Seed: 5, Options: Options{Starts: 4}}
	one := runKernel(t, newRuntime(t, 1), req)
	two := runKernel(t, newRuntime(t, 2), req)
	if one.Success(DefaultThreshold) {
		t.Fatalf("one CNOT reached %g", one.Distance)
	}
	if !reflect.DeepEqual(one, two) {
		t.Errorf("1 slot: %+v, 2 slots: %+v", one, two)
	}
	var best float64 = 1
	for i := range 4 {
		w, _ := NewWorkspace(target, req.Template)
		r, err := Run(context.Background(), w, req.startPoint(i), req.withDefaults())
		if err != nil {
			t.Fatal(err)
		}
		best = min(best, r.Distance)
	}
	if one.Distance != best {
		t.Errorf("kernel distance %g, best of the starts %g", one.Distance, best)
	}
}

func TestKernelInitialPointIsStartZero(t *testing.T) {
	// Starting at a solution, start 0 succeeds at once.
	x := StartPoint(9, 0, threeCNOTs.NumParams())
	target, err := threeCNOTs.Circuit(x).Unitary()
	if err != nil {
		t.Fatal(err)
	}
	res := runKernel(t, newRuntime(t, 2), Request{Target: target, Template: threeCNOTs, Seed: 1, Initial: x})
	if res.Start != 0 || !res.Success(DefaultThreshold) {
		t.Errorf("result %+v, want start 0 to succeed", res)
	}
}

func TestKernelBadPayloads(t *testing.T) {
	rt := newRuntime(t, 1)
	good, _ := json.Marshal(Request{Target: circuit.Identity(4), Template: threeCNOTs})
	tests := []struct {
		name    string
		task    kernels.Task
		wantErr error
	}{
		{"not json", kernels.Task{Kernel: KernelInstantiate, Payload: []byte("{")}, nil},
		{"target of the wrong size", kernels.Task{Kernel: KernelInstantiate,
			Payload: mustJSON(t, Request{Target: circuit.Identity(8), Template: threeCNOTs})}, ErrBadRequest},
		{"not unitary", kernels.Task{Kernel: KernelInstantiate,
			Payload: mustJSON(t, Request{Target: circuit.NewMatrix(4), Template: threeCNOTs})}, ErrBadRequest},
		{"bad block", kernels.Task{Kernel: KernelInstantiate,
			Payload: mustJSON(t, Request{Target: circuit.Identity(4), Template: Template{Qubits: 2, Blocks: []Block{{0, 2}}}})}, ErrBadTemplate},
		{"bad threshold", kernels.Task{Kernel: KernelInstantiate,
			Payload: mustJSON(t, Request{Target: circuit.Identity(4), Template: threeCNOTs, Options: Options{Threshold: 2}})}, ErrBadRequest},
		{"start without index", kernels.Task{Kernel: KernelStart, Payload: good}, nil},
		{"start with a bad index", kernels.Task{Kernel: KernelStart, Args: []string{"x"}, Payload: good}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := rt.Run(context.Background(), tc.task)
			var bad interface{ BadInput() bool }
			if !errors.As(err, &bad) || !bad.BadInput() {
				t.Fatalf("error %v does not mark bad input", err)
			}
			if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Errorf("error %v, want %v", err, tc.wantErr)
			}
		})
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestKernelCancelled(t *testing.T) {
	rt := newRuntime(t, 1)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	target := circuit.RandomUnitary(2, rand.New(rand.NewPCG(1, 1)))
	_, err := rt.Run(ctx, kernels.Task{Kernel: KernelInstantiate, Payload: mustJSON(t, Request{Target: target, Template: threeCNOTs})})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("error %v, want context.Canceled", err)
	}
}

func TestDecodeShared(t *testing.T) {
	var c kernels.Cache
	payloads := make([][]byte, 6)
	for i := range payloads {
		p, err := json.Marshal(Request{Target: circuit.Identity(2), Template: Template{Qubits: 1}, Seed: uint64(i)})
		if err != nil {
			t.Fatal(err)
		}
		payloads[i] = p
	}
	first, err := decodeShared(&c, payloads[0])
	if err != nil || first.Seed != 0 {
		t.Fatalf("decoded %+v, %v", first, err)
	}
	if again, _ := decodeShared(&c, bytes.Clone(payloads[0])); again != first {
		t.Error("the same bytes were decoded again")
	}
	// Four more payloads push the first out of the four entries.
	for i, p := range payloads[1:5] {
		if r, err := decodeShared(&c, p); err != nil || r.Seed != uint64(i+1) {
			t.Fatalf("payload %d: %+v, %v", i+1, r, err)
		}
	}
	if again, _ := decodeShared(&c, payloads[0]); again == first || again.Seed != 0 {
		t.Errorf("after four others: %p (first %p), seed %d", again, first, again.Seed)
	}
	var re *RequestError
	if _, err := decodeShared(&c, []byte("{")); !errors.As(err, &re) {
		t.Errorf("bad payload: %v, want a *RequestError", err)
	}
}
