package cli

import (
	"context"
	"reflect"
	"regexp"
	"strconv"
	"sync"
	"testing"

	"github.com/qlaunch/qlaunch/kernels/circuitgen"
	"github.com/qlaunch/qlaunch/kernels/resynth"
)

func TestLevelPasses(t *testing.T) {
	f := func(w int) resynthPass { return resynthPass{width: w} }
	b := func(w int) resynthPass { return resynthPass{width: w, backward: true} }
	level3 := []resynthPass{f(2), f(3), b(3), f(3), b(3)}
	level4 := append(level3, f(4), b(4))
	for _, tc := range []struct {
		level, blockQubits int
		want               []resynthPass
	}{
		{1, 0, []resynthPass{f(2)}},
		{2, 0, []resynthPass{f(3)}},
		{2, 4, []resynthPass{f(4)}}, // levels 1 and 2: the one width
		{3, 0, level3},
		{3, 3, level3},
		{3, 2, []resynthPass{f(2), b(2), f(2), b(2)}},
		{3, 4, level4}, // the widest: narrower passes first
		{4, 0, level4},
		{4, 3, level3},
	} {
		if got := levelPasses(tc.level, tc.blockQubits); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("level %d, block qubits %d: %v, want %v", tc.level, tc.blockQubits, got, tc.want)
		}
	}
}

// TestCompileWidestBlocksLast compiles a 4-qubit Ising chain at level 3
// with 3- and with 4-qubit blocks: the 4-qubit compile runs its passes
// in order of width, the 2- and 3-qubit ones for both term orders and
// the 4-qubit ones once, after them; it has no more CNOTs than the
// 3-qubit compile, and both pass the compile's unitary check.
func TestCompileWidestBlocksLast(t *testing.T) {
	numericOnlyInOneLane(t)
	in := circuitgen.TFIM(4, 2) // 6 ZZ rotations, 12 CNOTs
	var mu sync.Mutex
	var widths []int
	label := regexp.MustCompile(`(\d)-qubit blocks`)
	counts := map[int]int{}
	for _, bq := range []int{3, 4} {
		job := compileJob{in: in, seed: 1, level: 3, blockQubits: bq, gates: resynth.DefaultGates}
		if bq == 4 {
			job.progress = func(what string, _ int) progress {
				w, _ := strconv.Atoi(label.FindStringSubmatch(what)[1])
				mu.Lock()
				widths = append(widths, w)
				mu.Unlock()
				return noProgress{}
			}
		}
		c, err := compileLocal(context.Background(), 2, job)
		if err != nil {
			t.Fatalf("%d-qubit blocks: %v", bq, err)
		}
		t.Logf("%d-qubit blocks: CNOTs %d → %d in %d passes, %s", bq, c.res.CNOTsBefore, c.res.CNOTsAfter, c.passes, c.check)
		counts[bq] = c.res.CNOTsAfter
	}
	if counts[4] > counts[3] {
		t.Errorf("%d CNOTs with 4-qubit blocks, %d with 3-qubit ones", counts[4], counts[3])
	}
	t.Logf("pass widths in order: %v", widths)
	wide := 0
	for i, w := range widths {
		if w == 4 {
			wide++
		} else if wide > 0 {
			t.Errorf("a %d-qubit pass after a 4-qubit one: %v", w, widths)
		}
		if i == 0 && w != 2 {
			t.Errorf("the first pass has %d-qubit blocks: %v", w, widths)
		}
	}
	if wide < 1 || wide > 2 {
		t.Errorf("%d 4-qubit passes, want 1 or 2 (once, from the start and from the end): %v", wide, widths)
	}
	if n := len(widths) - wide; n < 2 {
		t.Errorf("%d narrower passes: %v", n, widths)
	}
}

// TestCompileWideBeatsNarrowOnTFIM compiles four Trotter steps of a
// 4-qubit Ising chain (24 CNOTs) at level 3 with 3- and with 4-qubit
// blocks: 3-qubit blocks leave 14 CNOTs, 4-qubit ones 12 (the chain's
// free-fermion units, see resynth.FitUnits), both checked as every
// compile is, and the 4-qubit output is the same on one slot and on two.
func TestCompileWideBeatsNarrowOnTFIM(t *testing.T) {
	numericOnlyInOneLane(t)
	if testing.Short() {
		t.Skip("two level-3 compiles, one with 4-qubit passes: about 40 CPU seconds")
	}
	in := circuitgen.TFIM(4, 4)
	counts := map[int]int{}
	var outputs []string
	for _, run := range []struct{ bq, slots int }{{3, 2}, {4, 2}, {4, 1}} {
		c, err := compileLocal(context.Background(), run.slots, compileJob{in: in, seed: 1, level: 3, blockQubits: run.bq, gates: resynth.DefaultGates})
		if err != nil {
			t.Fatalf("%d-qubit blocks: %v", run.bq, err)
		}
		t.Logf("%d-qubit blocks, %d slots: CNOTs %d → %d, %s", run.bq, run.slots, c.res.CNOTsBefore, c.res.CNOTsAfter, c.check)
		counts[run.bq] = c.res.CNOTsAfter
		if run.bq == 4 {
			outputs = append(outputs, c.res.QASM)
		}
	}
	if counts[4] >= counts[3] || counts[4] > 12 {
		t.Errorf("%d CNOTs with 4-qubit blocks, %d with 3-qubit ones: want fewer, at most 12", counts[4], counts[3])
	}
	if outputs[0] != outputs[1] {
		t.Error("the 4-qubit outputs on two slots and on one differ")
	}
}
