package instantiate

import (
	"context"
	"math/rand/v2"
	"testing"

	"github.com/qlaunch/qlaunch/kernels/circuit"
)

// matchgateBrick returns a 4-qubit circuit of units on the pairs of a
// line in brick order (01, 23, 12, …), each rx on both qubits, cx, rz,
// cx, rx on both, at random angles: a free-fermion circuit, which a
// brick of six such units (12 CNOTs) can write whatever its length.
func matchgateBrick(units int, seed uint64) *circuit.Circuit {
	rng := rand.New(rand.NewPCG(seed, 1))
	c := circuit.New(4)
	pairs := [][2]int{{0, 1}, {2, 3}, {1, 2}}
	angle := func() float64 { return rng.Float64()*6 - 3 }
	rx := func(q int) {
		op, err := circuit.NewOp(circuit.RX, []int{q}, angle())
		if err != nil {
			panic(err)
		}
		c.Append(op)
	}
	for u := range units {
		a, b := pairs[u%3][0], pairs[u%3][1]
		rx(a)
		rx(b)
		c.Append(circuit.CNOTOp(a, b))
		op, err := circuit.NewOp(circuit.RZ, []int{b}, angle())
		if err != nil {
			panic(err)
		}
		c.Append(op, circuit.CNOTOp(a, b))
		rx(a)
		rx(b)
	}
	return c
}

// TestPolishFinishesStalledStarts: fitting a 6-unit brick (12 CNOTs) to
// a 9-unit free-fermion circuit (18 CNOTs), L-BFGS alone stops most
// starts above the threshold, many of them on the basin of an exact
// solution; with Options.Polish more starts reach it (6 of 8 against 3
// when written), and no polished start ends farther than the same start
// without.
func TestPolishFinishesStalledStarts(t *testing.T) {
	target, err := matchgateBrick(9, 1).Unitary()
	if err != nil {
		t.Fatal(err)
	}
	var blocks []Block
	for _, p := range []Block{{0, 1}, {2, 3}, {1, 2}, {0, 1}, {2, 3}, {1, 2}} {
		blocks = append(blocks, p, p)
	}
	tmpl := Template{Qubits: 4, Blocks: blocks}
	w, err := NewWorkspace(target, tmpl)
	if err != nil {
		t.Fatal(err)
	}
	plainWins, polishedWins := 0, 0
	for start := range 8 {
		x0 := StartPoint(1, start, tmpl.NumParams())
		plain, err := Run(context.Background(), w, x0, Options{})
		if err != nil {
			t.Fatal(err)
		}
		polished, err := Run(context.Background(), w, x0, Options{Polish: true})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("start %d: %.3g, polished %.3g", start, plain.Distance, polished.Distance)
		if polished.Distance > plain.Distance {
			t.Errorf("start %d: polished %.3g, farther than %.3g", start, polished.Distance, plain.Distance)
		}
		if plain.Distance < DefaultThreshold {
			plainWins++
		}
		if polished.Distance < DefaultThreshold {
			polishedWins++
		}
	}
	if polishedWins <= plainWins {
		t.Errorf("%d starts reach the threshold polished, %d without", polishedWins, plainWins)
	}
}
