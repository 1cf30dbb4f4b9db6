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

func TestCostGradDoesNotAllocate(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	tmpl := Template{Qubits: 3, Blocks: []Block{{0, 1}, {1, 2}, {0, 2}}}
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
