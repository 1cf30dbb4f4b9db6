package cli

import (
	"context"
	"math/rand/v2"
	"testing"

	"github.com/qlaunch/qlaunch/kernels/circuit"
	"github.com/qlaunch/qlaunch/kernels/circuitgen"
	"github.com/qlaunch/qlaunch/kernels/mapping"
	"github.com/qlaunch/qlaunch/kernels/resynth"
)

// equalUpTo fails unless b's unitary is that of
// PermutationSwaps(Inverse(in)), then a, then PermutationSwaps(out)
// (nil: the identity), within 1e-10.
func equalUpTo(t *testing.T, a, b *circuit.Circuit, in, out []int) {
	t.Helper()
	ref := &circuit.Circuit{Qubits: a.Qubits, Defs: a.Defs}
	if in != nil {
		ref.Append(resynth.PermutationSwaps(resynth.Inverse(in))...)
	}
	ref.Append(a.Ops...)
	if out != nil {
		ref.Append(resynth.PermutationSwaps(out)...)
	}
	u, err := ref.Unitary()
	if err != nil {
		t.Fatal(err)
	}
	v, err := b.Unitary()
	if err != nil {
		t.Fatal(err)
	}
	if d := circuit.Distance(u, v); d >= 1e-10 {
		t.Fatalf("at distance %g with the permutations %v, %v", d, in, out)
	}
}

// TestUnroute takes the swaps of random circuits as relabellings: the
// circuit left, followed by the permutation returned, is the circuit.
func TestUnroute(t *testing.T) {
	for seed := range uint64(20) {
		rng := rand.New(rand.NewPCG(seed, 9))
		c := circuit.New(4)
		for range 30 {
			p := rng.Perm(4)
			switch rng.IntN(3) {
			case 0:
				c.Append(circuit.U3Op(p[0], rng.Float64()*6, rng.Float64()*6, rng.Float64()*6))
			case 1:
				c.Append(circuit.CNOTOp(p[0], p[1]))
			default:
				c.Append(circuit.Op{Gate: circuit.Swap, Qubits: [3]int{p[0], p[1]}})
			}
		}
		out, moved := unroute(c)
		for _, op := range out.Ops {
			if op.Gate == circuit.Swap {
				t.Fatalf("seed %d: a swap left", seed)
			}
		}
		equalUpTo(t, out, c, nil, moved)
	}
}

// TestCompileCut compiles routed circuits on a line cut in two, the
// second part routed again from the layout the first part's last blocks
// leave: the output keeps to the line's edges and equals the routed
// circuit with the permutations reported.
func TestCompileCut(t *testing.T) {
	numericOnlyInOneLane(t)
	g, err := mapping.ParseCoupling("linear:4")
	if err != nil {
		t.Fatal(err)
	}
	// A circuit on the line with a swap joined to a CNOT on 2, 3, so
	// that a cut after it can leave the second part a swapped layout to
	// be routed from (random:4:24:3 and qaoa:4:2 leave [0 1 3 2] and
	// [1 0 3 2] at some of these cuts).
	rng := rand.New(rand.NewPCG(4, 4))
	swapped := circuit.New(4)
	u3 := func(q int) {
		swapped.Append(circuit.U3Op(q, rng.Float64()*6, rng.Float64()*6, rng.Float64()*6))
	}
	for q := range 4 {
		u3(q)
	}
	swap23 := circuit.Op{Gate: circuit.Swap, Qubits: [3]int{2, 3}}
	swapped.Append(circuit.CNOTOp(0, 1), circuit.CNOTOp(1, 2), swap23, circuit.CNOTOp(2, 3))
	u3(1)
	swapped.Append(swap23, circuit.CNOTOp(1, 2), circuit.CNOTOp(2, 3))
	u3(2)
	swapped.Append(circuit.CNOTOp(0, 1), circuit.CNOTOp(1, 2))
	for _, name := range []string{"swapped", "random:4:24:3", "qaoa:4:2"} {
		in, routed := swapped, swapped
		if name != "swapped" {
			if in, err = circuitgen.Named(name); err != nil {
				t.Fatal(err)
			}
			if routed, _, err = mapping.Route(mapping.Decompose(in), g); err != nil {
				t.Fatal(err)
			}
		}
		for _, f := range []float64{0.3, 0.5} {
			job := compileJob{in: in, seed: 1, level: 1, gates: resynth.DefaultGates, graph: g}
			var c, uncut *compiled
			err := runLocal(context.Background(), 2, func(ctx context.Context, r taskRunner) error {
				var err error
				if c, err = compileCut(ctx, r, job, routed, f); err != nil {
					return err
				}
				uncut, err = compileWindows(ctx, r, job, routed, g.Edges)
				return err
			})
			if err != nil || c == nil {
				t.Fatalf("%s cut at %v: %v, %v", name, f, c, err)
			}
			for _, op := range c.out.Ops {
				if qs := op.QubitList(); len(qs) == 2 && !g.Adjacent(qs[0], qs[1]) {
					t.Fatalf("%s cut at %v: %s on %v", name, f, op.Gate, qs)
				}
			}
			t.Logf("%s cut at %v: CNOTs %d (uncut %d), permutations %v, %v", name, f, c.res.CNOTsAfter, uncut.res.CNOTsAfter, c.res.PermutedInputs, c.res.PermutedOutputs)
			if c.res.CNOTsAfter != c.out.CNOTs() {
				t.Errorf("%s: result says %d CNOTs, circuit has %d", name, c.res.CNOTsAfter, c.out.CNOTs())
			}
			equalUpTo(t, routed, c.out, c.res.PermutedInputs, c.res.PermutedOutputs)
		}
	}
}
