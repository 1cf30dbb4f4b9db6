package resynth

import (
	"context"
	"slices"
	"testing"

	"github.com/qlaunch/qlaunch/kernels/circuit"
	"github.com/qlaunch/qlaunch/kernels/circuitgen"
	"github.com/qlaunch/qlaunch/kernels/instantiate"
)

func TestLinePath(t *testing.T) {
	line := func(pairs ...[2]int) *circuit.Circuit {
		c := circuit.New(4)
		for _, p := range pairs {
			c.Append(circuit.CNOTOp(p[0], p[1]), op(circuit.H, p[1]))
		}
		return c
	}
	for _, tc := range []struct {
		c    *circuit.Circuit
		want []int
	}{
		{line([2]int{0, 1}, [2]int{1, 2}, [2]int{2, 3}, [2]int{1, 0}), []int{0, 1, 2, 3}},
		{line([2]int{2, 0}, [2]int{0, 3}, [2]int{1, 3}), []int{1, 3, 0, 2}},
		{line([2]int{0, 1}, [2]int{0, 2}, [2]int{0, 3}), nil},               // a star
		{line([2]int{0, 1}, [2]int{1, 2}, [2]int{2, 3}, [2]int{3, 0}), nil}, // a ring
		{line([2]int{0, 1}, [2]int{2, 3}), nil},                             // two pairs
		{circuitgen.Hubbard(2, 1), nil},                                     // hopping and on-site pairs: a ring
		{circuitgen.TFIM(4, 1), []int{0, 1, 2, 3}},
	} {
		if got := linePath(tc.c); !slices.Equal(got, tc.want) {
			t.Errorf("%v: path %v, want %v", tc.c.Ops, got, tc.want)
		}
	}
}

// TestFitUnitsTFIM: four Trotter steps of a 4-qubit Ising chain (24 CNOTs;
// 3-qubit blocks leave 14) are one block on a line, fitted to six units,
// 12 CNOTs, within the threshold of its unitary; a Heisenberg chain on
// the same line, not free fermions, keeps its gates.
func TestFitUnitsTFIM(t *testing.T) {
	if raceEnabled {
		t.Skip("numeric, no concurrency: the lane without the race detector (see raceEnabled)")
	}
	in := circuitgen.TFIM(4, 4)
	out, fitted, bound, err := FitUnits(context.Background(), in, instantiate.DefaultThreshold, 1)
	if err != nil {
		t.Fatal(err)
	}
	u, err := in.Unitary()
	if err != nil {
		t.Fatal(err)
	}
	v, err := out.Unitary()
	if err != nil {
		t.Fatal(err)
	}
	d := circuit.Distance(u, v)
	t.Logf("%d blocks fitted, CNOTs %d → %d, distance %.3g, bound %.3g", fitted, in.CNOTs(), out.CNOTs(), d, bound)
	if fitted != 1 || out.CNOTs() != 12 {
		t.Errorf("%d blocks fitted, %d CNOTs: want 1 block, 12 CNOTs", fitted, out.CNOTs())
	}
	if d >= instantiate.DefaultThreshold || d > bound*(1+1e-6)+1e-15 {
		t.Errorf("distance %.3g, bound %.3g", d, bound)
	}
	if testing.Short() {
		return
	}
	h := circuitgen.Heisenberg(4, 1)
	out, fitted, _, err = FitUnits(context.Background(), h, instantiate.DefaultThreshold, 1)
	if err != nil {
		t.Fatal(err)
	}
	if fitted != 0 || out != h {
		t.Errorf("Heisenberg chain: %d blocks fitted", fitted)
	}
}
