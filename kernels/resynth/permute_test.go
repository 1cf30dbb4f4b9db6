package resynth

import (
	"context"
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"

	"github.com/qlaunch/qlaunch/kernels"
	"github.com/qlaunch/qlaunch/kernels/circuit"
	"github.com/qlaunch/qlaunch/kernels/kerneltest"
)

// runResynth runs the resynth kernel on rt with in and req.
func runResynth(t *testing.T, rt *kerneltest.Runtime, in *circuit.Circuit, req Request) (*Result, error) {
	t.Helper()
	req.QASM = circuit.FormatQASM(in)
	payload, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	out, err := rt.Run(context.Background(), kernels.Task{Kernel: KernelResynth, Payload: payload})
	if err != nil {
		return nil, err
	}
	var res Result
	return &res, json.Unmarshal(out, &res)
}

// swapCX appends a swap of a and b written as three CNOTs.
func swapCX(c *circuit.Circuit, a, b int) {
	c.Append(circuit.CNOTOp(a, b), circuit.CNOTOp(b, a), circuit.CNOTOp(a, b))
}

// permutedEnds returns a circuit whose first and last blocks of two
// qubits are swaps joined to a CNOT (four CNOTs each, one up to the
// swap), with random single-qubit gates, and a middle that joins them.
func permutedEnds(rng *rand.Rand) *circuit.Circuit {
	c := circuit.New(4)
	u3 := func(q int) {
		c.Append(circuit.U3Op(q, rng.Float64()*6, rng.Float64()*6, rng.Float64()*6))
	}
	for q := range 4 {
		u3(q)
	}
	swapCX(c, 0, 1)
	c.Append(circuit.CNOTOp(0, 1))
	swapCX(c, 2, 3)
	c.Append(circuit.CNOTOp(3, 2))
	u3(1)
	u3(2)
	c.Append(circuit.CNOTOp(1, 2))
	u3(1)
	u3(2)
	c.Append(circuit.CNOTOp(0, 1))
	swapCX(c, 0, 1)
	c.Append(circuit.CNOTOp(2, 3))
	swapCX(c, 2, 3)
	for q := range 4 {
		u3(q)
	}
	return c
}

// checkPermuted fails unless out's unitary is that of the input's
// qubits moved by PermutationSwaps(Inverse(res.PermutedInputs)), then in,
// then PermutationSwaps(res.PermutedOutputs), within 1e-10.
func checkPermuted(t *testing.T, in, out *circuit.Circuit, res *Result) {
	t.Helper()
	ref := &circuit.Circuit{Qubits: in.Qubits, Defs: in.Defs}
	for _, p := range [][]int{res.PermutedInputs, res.PermutedOutputs} {
		if p == nil {
			continue
		}
		if len(p) != in.Qubits || !slices.Equal(slices.Sorted(slices.Values(p)), Identity(in.Qubits)) {
			t.Fatalf("permutation %v of %d qubits", p, in.Qubits)
		}
	}
	if res.PermutedInputs != nil {
		ref.Append(PermutationSwaps(Inverse(res.PermutedInputs))...)
	}
	ref.Append(in.Ops...)
	if res.PermutedOutputs != nil {
		ref.Append(PermutationSwaps(res.PermutedOutputs)...)
	}
	u, err := ref.Unitary()
	if err != nil {
		t.Fatal(err)
	}
	v, err := out.Unitary()
	if err != nil {
		t.Fatal(err)
	}
	if d := circuit.Distance(u, v); d >= 1e-10 {
		t.Fatalf("output at distance %g from the input with the permutations %v, %v", d, res.PermutedInputs, res.PermutedOutputs)
	}
}

// TestPermutedEndBlocks resynthesises a circuit whose first and last
// blocks are a CNOT next to a swap, after (before) single-qubit gates:
// up to a permutation of their inputs and outputs they take one CNOT
// each, not two; the output equals the
// input with the reported permutations, and without the permutations
// allowed none is reported.
func TestPermutedEndBlocks(t *testing.T) {
	rt := newRuntime(t, 2)
	in := permutedEnds(rand.New(rand.NewPCG(7, 7)))
	plain, err := runResynth(t, rt, in, Request{Seed: 1, BlockQubits: 2})
	if err != nil {
		t.Fatal(err)
	}
	res, err := runResynth(t, rt, in, Request{Seed: 1, BlockQubits: 2, PermuteInputs: true, PermuteOutputs: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("CNOTs %d → %d (%d without permutations), inputs %v, outputs %v", res.CNOTsBefore, res.CNOTsAfter, plain.CNOTsAfter, res.PermutedInputs, res.PermutedOutputs)
	if plain.PermutedInputs != nil || plain.PermutedOutputs != nil {
		t.Errorf("permutations %v, %v reported without being allowed", plain.PermutedInputs, plain.PermutedOutputs)
	}
	if want := plain.CNOTsAfter - 4; res.CNOTsAfter > want {
		t.Errorf("CNOTs %d with permutations, want at most %d (four end blocks of 2 → 1)", res.CNOTsAfter, want)
	}
	if !reflect.DeepEqual(res.PermutedInputs, []int{1, 0, 3, 2}) || !reflect.DeepEqual(res.PermutedOutputs, []int{1, 0, 3, 2}) {
		t.Errorf("permutations %v, %v: want both [1 0 3 2]", res.PermutedInputs, res.PermutedOutputs)
	}
	for _, r := range []*Result{plain, res} {
		out, err := circuit.ParseQASM(r.QASM)
		if err != nil {
			t.Fatal(err)
		}
		checkPermuted(t, in, out, r)
	}
}

// TestPermutedRandom resynthesises random circuits with permutations
// allowed, in blocks of 2 and 3 qubits, forward and backward: each output
// equals its input with the reported permutations.
func TestPermutedRandom(t *testing.T) {
	rt := newRuntime(t, 2)
	for seed := range uint64(4) {
		rng := rand.New(rand.NewPCG(seed, 3))
		in := randomCircuit(rng, 4, 14)
		req := Request{Seed: seed, BlockQubits: 2 + int(seed%2), Backward: seed >= 2, PermuteInputs: true, PermuteOutputs: seed != 1}
		if raceEnabled && req.BlockQubits == 3 {
			continue // six syntheses per end block of 3 qubits: the lane without the detector (see raceEnabled)
		}
		res, err := runResynth(t, rt, in, req)
		if err != nil {
			t.Fatal(err)
		}
		out, err := circuit.ParseQASM(res.QASM)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("seed %d: CNOTs %d → %d, inputs %v, outputs %v", seed, res.CNOTsBefore, res.CNOTsAfter, res.PermutedInputs, res.PermutedOutputs)
		if !req.PermuteOutputs && res.PermutedOutputs != nil {
			t.Errorf("seed %d: outputs permuted %v without being allowed", seed, res.PermutedOutputs)
		}
		checkPermuted(t, in, out, res)
	}
}

// TestPermutedJSON round-trips the permutations of a Request and a
// Result through JSON, and leaves them out when unset.
func TestPermutedJSON(t *testing.T) {
	req := Request{QASM: "qreg q[3];", PermuteInputs: true, PermuteOutputs: true}
	res := Result{QASM: "qreg q[3];", PermutedInputs: []int{2, 0, 1}, PermutedOutputs: []int{0, 2, 1}}
	for _, v := range []any{&req, &res} {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		back := reflect.New(reflect.TypeOf(v).Elem()).Interface()
		if err := json.Unmarshal(b, back); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(back, v) {
			t.Errorf("%s read back as %+v", b, back)
		}
	}
	b, _ := json.Marshal(&res)
	var fields map[string]any
	if err := json.Unmarshal(b, &fields); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(fields["permuted_inputs"], []any{2.0, 0.0, 1.0}) || !reflect.DeepEqual(fields["permuted_outputs"], []any{0.0, 2.0, 1.0}) {
		t.Errorf("fields %v", fields)
	}
	b, _ = json.Marshal(&Result{})
	fields = nil
	if err := json.Unmarshal(b, &fields); err != nil {
		t.Fatal(err)
	}
	if _, ok := fields["permuted_inputs"]; ok {
		t.Errorf("%s: unset permutations written", b)
	}
}

// TestPermutationHelpers checks PermutationSwaps, Inverse, Compose and
// PermuteQubits against each other on every permutation of 4 qubits.
func TestPermutationHelpers(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 5))
	c := randomCircuit(rng, 4, 10)
	perms := append(permutations(4), Identity(4))
	if len(perms) != 24 {
		t.Fatalf("%d permutations of 4", len(perms))
	}
	for _, p := range perms {
		// P·U·P⁻¹ two ways.
		moved := &circuit.Circuit{Qubits: 4}
		moved.Append(PermutationSwaps(Inverse(p))...)
		moved.Append(c.Ops...)
		moved.Append(PermutationSwaps(p)...)
		a, _ := moved.Unitary()
		b, _ := PermuteQubits(c, p).Unitary()
		if d := circuit.Distance(a, b); d > 1e-12 {
			t.Fatalf("perm %v: PermuteQubits at distance %g", p, d)
		}
		if !slices.Equal(Compose(p, Inverse(p)), Identity(4)) {
			t.Fatalf("perm %v: p then its inverse is not the identity", p)
		}
		q := perms[rng.IntN(len(perms))]
		two := &circuit.Circuit{Qubits: 4}
		two.Append(PermutationSwaps(p)...)
		two.Append(PermutationSwaps(q)...)
		one := &circuit.Circuit{Qubits: 4, Ops: PermutationSwaps(Compose(p, q))}
		x, _ := two.Unitary()
		y, _ := one.Unitary()
		if d := circuit.Distance(x, y); d > 1e-12 {
			t.Fatalf("Compose(%v, %v) at distance %g", p, q, d)
		}
	}
}
