package instantiate

import (
	"context"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/qlaunch/qlaunch/kernels/circuit"
)

var threeCNOTs = Template{Qubits: 2, Blocks: []Block{{0, 1}, {0, 1}, {0, 1}}}

func TestCostMatchesCircuitUnitary(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	tmpl := Template{Qubits: 3, Blocks: []Block{{0, 1}, {2, 1}, {1, 0}, {0, 2}}}
	target := circuit.RandomUnitary(3, rng)
	w, err := NewWorkspace(target, tmpl)
	if err != nil {
		t.Fatal(err)
	}
	x := StartPoint(1, 0, tmpl.NumParams())
	v, err := tmpl.Circuit(x).Unitary()
	if err != nil {
		t.Fatal(err)
	}
	want := circuit.Distance(target, v)
	if got := w.Distance(x); math.Abs(got-want) > 1e-14 {
		t.Errorf("Workspace.Distance = %.17g, circuit.Distance = %.17g", got, want)
	}
	// At the template's own unitary the cost vanishes.
	w2, err := NewWorkspace(v, tmpl)
	if err != nil {
		t.Fatal(err)
	}
	if got := w2.Cost(x); math.Abs(got) > 1e-14 {
		t.Errorf("Cost at the target's own parameters = %g, want 0", got)
	}
}

func TestGradientMatchesFiniteDifferences(t *testing.T) {
	tests := []struct {
		name string
		tmpl Template
	}{
		{"one qubit", Template{Qubits: 1}},
		{"two qubits three cnots", threeCNOTs},
		{"three qubits", Template{Qubits: 3, Blocks: []Block{{0, 1}, {1, 2}, {2, 0}, {1, 0}}}},
		{"four qubits", Template{Qubits: 4, Blocks: []Block{{0, 3}, {2, 1}}}},
		{"three qubits, a random two-qubit gate", Template{Qubits: 3, Blocks: []Block{{0, 1}, {2, 1}, {0, 2}},
			Gate: ptr(circuit.RandomUnitary(2, rand.New(rand.NewPCG(3, 3))))}},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(uint64(i), 99))
			w, err := NewWorkspace(circuit.RandomUnitary(tc.tmpl.Qubits, rng), tc.tmpl)
			if err != nil {
				t.Fatal(err)
			}
			x := StartPoint(uint64(i), 3, tc.tmpl.NumParams())
			grad := make([]float64, len(x))
			c := w.CostGrad(x, grad)
			if c2 := w.Cost(x); c2 != c {
				t.Errorf("Cost %v differs from CostGrad %v", c2, c)
			}
			const h = 1e-6
			xp := append([]float64(nil), x...)
			for j := range x {
				xp[j] = x[j] + h
				up := w.Cost(xp)
				xp[j] = x[j] - h
				down := w.Cost(xp)
				xp[j] = x[j]
				fd := (up - down) / (2 * h)
				if math.Abs(fd-grad[j]) > 1e-8 {
					t.Errorf("parameter %d: analytic %.12g, finite difference %.12g", j, grad[j], fd)
				}
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

func TestCostGradDoesNotAllocate(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	tmpl := Template{Qubits: 3, Blocks: []Block{{0, 1}, {1, 2}, {0, 2}}, Gate: ptr(circuit.RandomUnitary(2, rng))}
	w, err := NewWorkspace(circuit.RandomUnitary(3, rng), tmpl)
	if err != nil {
		t.Fatal(err)
	}
	x := StartPoint(1, 1, tmpl.NumParams())
	grad := make([]float64, len(x))
	allocs := testing.AllocsPerRun(20, func() {
		x[0] += 0.01 // defeat the cache of the last point
		w.CostGrad(x, grad)
		x[1] += 0.01
		w.Cost(x)
	})
	if allocs != 0 {
		t.Errorf("CostGrad and Cost allocate %v times per call, want 0", allocs)
	}
}

func TestRunReachesThresholdOnRandomTwoQubitUnitaries(t *testing.T) {
	for seed := range uint64(6) {
		rng := rand.New(rand.NewPCG(seed, 2024))
		target := circuit.RandomUnitary(2, rng)
		w, err := NewWorkspace(target, threeCNOTs)
		if err != nil {
			t.Fatal(err)
		}
		best := math.Inf(1)
		for start := range DefaultStarts {
			r, err := Run(context.Background(), w, StartPoint(seed, start, threeCNOTs.NumParams()), Options{})
			if err != nil {
				t.Fatal(err)
			}
			best = min(best, r.Distance)
			t.Logf("seed %d start %d: distance %.3g after %d iterations, %d evaluations", seed, start, r.Distance, r.Iterations, r.Evaluations)
			if r.Success(DefaultThreshold) {
				break
			}
		}
		if best >= DefaultThreshold {
			t.Errorf("seed %d: best distance %g, want < %g", seed, best, DefaultThreshold)
		}
	}
}

// TestOtherGatesReachTheirCNOTCounts fits a CNOT and a random two-qubit
// unitary with templates of cz, rzz(π/2) and √iSWAP: one block of a
// perfect entangler reaches a CNOT, √iSWAP needs two, and three of any of
// them reach a random unitary (two perfect entanglers do not; two √iSWAPs
// reach a set of positive measure, so that case is not checked).
func TestOtherGatesReachTheirCNOTCounts(t *testing.T) {
	mat := func(ops ...circuit.Op) *circuit.Matrix {
		m, err := (&circuit.Circuit{Qubits: 2, Ops: ops}).Unitary()
		if err != nil {
			t.Fatal(err)
		}
		return &m
	}
	sqrtISwap := circuit.Identity(4)
	r := complex(1/math.Sqrt2, 0)
	sqrtISwap.Set(1, 1, r)
	sqrtISwap.Set(2, 2, r)
	sqrtISwap.Set(1, 2, 1i*r)
	sqrtISwap.Set(2, 1, 1i*r)
	gates := []struct {
		name       string
		gate       *circuit.Matrix
		cnotBlocks int
	}{
		{"cz", mat(circuit.Op{Gate: circuit.CZ, Qubits: [3]int{0, 1}}), 1},
		{"rzz", mat(circuit.Op{Gate: circuit.RZZ, Qubits: [3]int{0, 1}, Params: [3]float64{math.Pi / 2}}), 1},
		{"sqrtiswap", &sqrtISwap, 2},
	}
	cnot := *mat(circuit.CNOTOp(0, 1))
	random := circuit.RandomUnitary(2, rand.New(rand.NewPCG(4, 4)))
	for _, g := range gates {
		for _, tc := range []struct {
			target circuit.Matrix
			blocks int
			fewer  bool // check that one block fewer does not reach it
		}{{cnot, g.cnotBlocks, g.cnotBlocks > 1}, {random, 3, g.name != "sqrtiswap"}} {
			tmpl := Template{Qubits: 2, Gate: g.gate}
			for range tc.blocks {
				tmpl = tmpl.With(Block{0, 1})
			}
			req := &Request{Target: tc.target, Template: tmpl, Seed: 5}
			res, err := Instantiate(context.Background(), req)
			if err != nil {
				t.Fatal(err)
			}
			if !res.Success(DefaultThreshold) {
				t.Errorf("%s, %d blocks: distance %g", g.name, tc.blocks, res.Distance)
			}
			if tc.fewer {
				tmpl.Blocks = tmpl.Blocks[:tc.blocks-1]
				res, _ := Instantiate(context.Background(), &Request{Target: tc.target, Template: tmpl, Seed: 5})
				if res.Success(1e-3) {
					t.Errorf("%s, %d blocks: distance %g, want no success with one block fewer", g.name, tc.blocks-1, res.Distance)
				}
			}
		}
	}
}
