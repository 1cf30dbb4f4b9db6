package synth

import (
	"encoding/json"
	"errors"
	"math/rand/v2"
	"testing"

	"github.com/qlaunch/qlaunch/kernels/circuit"
	"github.com/qlaunch/qlaunch/kernels/instantiate"
)

// TestPatienceEndsTheSearch: with Patience 2 the search ends after two
// steps in a row that bring no node 1 % closer than the closest before;
// a closer node resets the count; without Patience the same steps go on.
func TestPatienceEndsTheSearch(t *testing.T) {
	pairs := linePairs()
	// The closest distance after each step's adds: 0.5 (the root), then
	// 0.3 (closer), 0.299 (< 1 % closer), 0.2985, 0.298.
	steps := []float64{0.5, 0.3, 0.299, 0.2985, 0.298}
	for _, tc := range []struct {
		patience int
		want     int // steps expanded before next returns nil
	}{{0, len(steps)}, {2, 3}, {1, 2}} {
		s := &search{pairs: pairs, budget: 12, width: 1, factor: 20, threshold: 1e-10, patience: tc.patience}
		expanded := 0
		for i, d := range steps {
			s.add(s.newNode(chain(i), instantiate.Result{Distance: d}))
			if s.next() == nil {
				break
			}
			expanded++
		}
		if expanded != tc.want {
			t.Errorf("patience %d: %d steps expanded, want %d", tc.patience, expanded, tc.want)
		}
	}
}

// knownWithRedundantPair returns a 3-qubit circuit of three CNOTs, two
// of which cancel (nothing between them), as a Known, and its unitary.
func knownWithRedundantPair() (*Known, circuit.Matrix, error) {
	rng := rand.New(rand.NewPCG(7, 7))
	k := &Known{Blocks: []instantiate.Block{{0, 1}, {0, 1}, {1, 2}}}
	tmpl := instantiate.Template{Qubits: 3, Blocks: k.Blocks}
	for i := range tmpl.NumParams() {
		v := rng.Float64() * 6
		if i >= 9 && i < 15 {
			v = 0 // the first CNOT's two U3s: identities
		}
		k.Params = append(k.Params, v)
	}
	u, err := tmpl.Circuit(k.Params).Unitary()
	return k, u, err
}

// TestKnownCircuitLosesItsRedundantCNOTs: synthesis from a known circuit
// removes the two CNOTs that cancel and keeps the one the target needs,
// and its result is the target.
func TestKnownCircuitLosesItsRedundantCNOTs(t *testing.T) {
	rt := newRuntime(t, 2)
	k, u, err := knownWithRedundantPair()
	if err != nil {
		t.Fatal(err)
	}
	res := synthesize(t, rt, Request{Target: u, Seed: 1, Known: k, Patience: WidePatience})
	if !res.Success || res.CNOTs != 1 {
		t.Fatalf("%d CNOTs, success %v (distance %.3g); want 1, true", res.CNOTs, res.Success, res.Distance)
	}
	out, err := circuit.ParseQASM(res.QASM)
	if err != nil {
		t.Fatal(err)
	}
	v, err := out.Unitary()
	if err != nil {
		t.Fatal(err)
	}
	if d := circuit.Distance(u, v); d > 1e-10 {
		t.Errorf("distance %.3g from the target", d)
	}
}

func TestKnownBadRequests(t *testing.T) {
	k, u, err := knownWithRedundantPair()
	if err != nil {
		t.Fatal(err)
	}
	short := *k
	short.Params = short.Params[1:]
	wide := *k
	wide.Blocks = []instantiate.Block{{0, 3}, {0, 1}, {1, 2}}
	for name, r := range map[string]Request{
		"params":   {Target: u, Known: &short},
		"block":    {Target: u, Known: &wide},
		"patience": {Target: u, Patience: -1},
	} {
		var re *RequestError
		if err := r.Validate(); !errors.As(err, &re) {
			t.Errorf("%s: error %v, want a *RequestError", name, err)
		}
	}
}

// FuzzDecodeRequest: any payload decodes to a valid request or a
// *RequestError, and a valid one encodes and decodes again.
func FuzzDecodeRequest(f *testing.F) {
	k, u, err := knownWithRedundantPair()
	if err != nil {
		f.Fatal(err)
	}
	seed, err := json.Marshal(Request{Target: u, Known: k, Patience: 3})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seed)
	f.Add([]byte(`{"target": [[[1,0]]], "patience": 2, "known": {"blocks": [], "params": [0,0,0]}}`))
	f.Add([]byte(`{"target": [[[1,0]]], "known": {"blocks": [[0,0]], "params": []}}`))
	f.Fuzz(func(t *testing.T, payload []byte) {
		r, err := DecodeRequest(payload)
		if err != nil {
			var re *RequestError
			if !errors.As(err, &re) {
				t.Fatalf("error %v, want a *RequestError", err)
			}
			return
		}
		again, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := DecodeRequest(again); err != nil {
			t.Fatalf("a valid request re-encoded: %v", err)
		}
	})
}
