package resynth

import (
	"context"
	"math/rand/v2"
	"testing"

	"github.com/qlaunch/qlaunch/kernels/circuit"
	"github.com/qlaunch/qlaunch/kernels/instantiate"
)

// TestKnownCircuitIsTheBlock: a 4-qubit block of the set's two-qubit
// gate and assorted single-qubit gates, written as a template
// (knownCircuit), is the same unitary up to phase, for the CNOT and for
// a defined gate; a block with a gate outside the set has none.
func TestKnownCircuitIsTheBlock(t *testing.T) {
	for _, spec := range []string{DefaultGates, "sqrtiswap,rz,sx"} {
		gs, err := ParseGateSet(context.Background(), spec, nil)
		if err != nil {
			t.Fatal(err)
		}
		rng := rand.New(rand.NewPCG(3, 3))
		local := circuit.New(4)
		if gs.two.Gate == circuit.Defined {
			local.Defs = []circuit.Def{gs.Def()}
		}
		for range 12 {
			a, b := rng.IntN(4), rng.IntN(3)
			if b >= a {
				b++
			}
			local.Append(circuit.U3Op(a, rng.Float64()*6, rng.Float64()*6, rng.Float64()*6), op(circuit.H, b), gs.on(a, b, 0))
			local.Append(circuit.U3Op(b, rng.Float64()*6, rng.Float64()*6, rng.Float64()*6))
		}
		k := knownCircuit(local, gs)
		if k == nil || len(k.Blocks) != 12 {
			t.Fatalf("%s: known circuit %v, want 12 blocks", spec, k)
		}
		tmpl := instantiate.Template{Qubits: 4, Blocks: k.Blocks}
		c := tmpl.CircuitWith(k.Params, func(a, b int) circuit.Op { return gs.on(a, b, 0) })
		c.Defs = local.Defs
		u, err := local.Unitary()
		if err != nil {
			t.Fatal(err)
		}
		v, err := c.Unitary()
		if err != nil {
			t.Fatal(err)
		}
		if d := circuit.Distance(u, v); d > 1e-12 {
			t.Errorf("%s: distance %.3g between the block and its template", spec, d)
		}
		local.Append(op(circuit.CCX, 0, 1, 2))
		if k := knownCircuit(local, gs); k != nil {
			t.Errorf("%s: a block with a ccx has a known circuit", spec)
		}
	}
}
