package mapping

import (
	"fmt"
	"slices"

	"github.com/qlaunch/qlaunch/kernels/circuit"
)

// unit is what routeFront places as one: an op, or a run of ops on two
// qubits a and b whose product is diagonal — cx(a,b), then ops diagonal
// in the computational basis on a and b only, then cx(a,b) again (the
// textbook ZZ rotation) — which commutes with every other diagonal unit.
type unit struct {
	ops    []int // indices into the circuit's ops, in circuit order
	qubits []int // the unit's logical qubits (one or two)
	diag   bool  // the unit's product is diagonal
	fence  bool  // a measure, reset, barrier or conditioned op
}

// diagonalGate reports whether g's matrix is diagonal in the
// computational basis, whatever its angles.
func diagonalGate(g circuit.Gate) bool {
	switch g {
	case circuit.ID, circuit.Z, circuit.S, circuit.Sdg, circuit.T, circuit.Tdg, circuit.RZ, circuit.U1,
		circuit.CZ, circuit.RZZ, circuit.CU1:
		return true
	}
	return false
}

// units splits c's ops into units (see unit), in the order of their first
// op. A cx pair closes into a unit only when no fence and no op on a or b
// that is not diagonal on a and b alone comes between.
func units(c *circuit.Circuit) ([]unit, error) {
	taken := make([]bool, len(c.Ops))
	var us []unit
	for i, op := range c.Ops {
		if taken[i] {
			continue
		}
		qs := op.QubitList()
		if len(qs) > 2 {
			return nil, fmt.Errorf("mapping: %s on %d qubits: decompose it first", op.Gate, len(qs))
		}
		u := unit{ops: []int{i}, qubits: slices.Clone(qs), fence: routeFence(op)}
		u.diag = !u.fence && diagonalGate(op.Gate)
		if op.Gate == circuit.CX && !u.fence {
			if inner, closing, ok := diagonalRun(c, i); ok {
				u.ops = append(append(u.ops, inner...), closing)
				u.diag = true
				for _, j := range u.ops {
					taken[j] = true
				}
			}
		}
		us = append(us, u)
	}
	return us, nil
}

// diagonalRun looks after c.Ops[i], a cx(a,b), for the ops on a or b up
// to the next cx(a,b): it reports them when all of them are unconditioned
// diagonal gates on a and b alone and no fence comes before that cx.
func diagonalRun(c *circuit.Circuit, i int) (inner []int, closing int, ok bool) {
	a, b := c.Ops[i].Qubits[0], c.Ops[i].Qubits[1]
	for j := i + 1; j < len(c.Ops); j++ {
		op := c.Ops[j]
		if routeFence(op) {
			return nil, 0, false
		}
		qs := op.QubitList()
		touches, inside := false, true
		for _, q := range qs {
			if q == a || q == b {
				touches = true
			} else {
				inside = false
			}
		}
		switch {
		case !touches:
			continue
		case op.Gate == circuit.CX && op.Qubits[0] == a && op.Qubits[1] == b:
			return inner, j, true
		case inside && diagonalGate(op.Gate):
			inner = append(inner, j)
		default:
			return nil, 0, false
		}
	}
	return nil, 0, false
}

// unitDeps returns the dependency graph of us on qubits qubits: the
// successors of each unit and the number of its predecessors. A unit
// follows the last non-diagonal unit on each of its qubits, and a
// non-diagonal one also every diagonal unit since then on them (diagonal
// units commute among themselves); a fence follows every unit before it
// and precedes every unit after it, so measurements, barriers and
// conditions keep their order.
func unitDeps(us []unit, qubits int) (succs [][]int, indeg []int) {
	succs = make([][]int, len(us))
	indeg = make([]int, len(us))
	lastNonDiag := make([]int, qubits)
	for q := range lastNonDiag {
		lastNonDiag[q] = -1
	}
	diagSince := make([][]int, qubits) // diagonal units since lastNonDiag
	lastFence := -1
	var sinceFence []int // units after the last fence
	for i, u := range us {
		var preds []int
		switch {
		case u.fence:
			preds = append(preds, sinceFence...)
			if lastFence >= 0 {
				preds = append(preds, lastFence)
			}
			lastFence, sinceFence = i, nil
			for q := range lastNonDiag {
				lastNonDiag[q], diagSince[q] = i, nil
			}
		default:
			for _, q := range u.qubits {
				if lastNonDiag[q] >= 0 {
					preds = append(preds, lastNonDiag[q])
				}
				if !u.diag {
					preds = append(preds, diagSince[q]...)
				}
			}
			if len(u.qubits) == 0 && lastFence >= 0 {
				preds = append(preds, lastFence)
			}
			for _, q := range u.qubits {
				if u.diag {
					diagSince[q] = append(diagSince[q], i)
				} else {
					lastNonDiag[q], diagSince[q] = i, nil
				}
			}
			sinceFence = append(sinceFence, i)
		}
		slices.Sort(preds)
		preds = slices.Compact(preds)
		for _, p := range preds {
			succs[p] = append(succs[p], i)
		}
		indeg[i] = len(preds)
	}
	return succs, indeg
}

// estimateTwoQubit estimates c's two-qubit count after a resynthesis of
// 2-qubit blocks: it joins each run of two-qubit gates on one pair (no
// other two-qubit gate or fence on either qubit between them) into a
// block, which costs the sum of its gates' CNOTs (a swap 3) up to 3, the
// most any two-qubit unitary needs. A swap next to a gate on its pair
// thus costs at most one more CNOT (a ZZ rotation and a swap: 3, not 5).
func estimateTwoQubit(c *circuit.Circuit) int {
	open := make([]int, c.Qubits) // the block open on each qubit, or -1
	for q := range open {
		open[q] = -1
	}
	var raw []int      // each block's summed CNOTs
	var pairs [][2]int // each block's qubits
	closeOn := func(q int) {
		if b := open[q]; b >= 0 {
			for _, p := range pairs[b] {
				open[p] = -1
			}
		}
	}
	for _, op := range c.Ops {
		qs := op.QubitList()
		if routeFence(op) {
			for _, q := range qs {
				closeOn(q)
			}
			continue
		}
		if len(qs) != 2 {
			continue
		}
		a, b := qs[0], qs[1]
		if open[a] >= 0 && open[a] == open[b] {
			raw[open[a]] += op.Gate.CNOTs()
			continue
		}
		closeOn(a)
		closeOn(b)
		raw = append(raw, op.Gate.CNOTs())
		pairs = append(pairs, [2]int{a, b})
		open[a], open[b] = len(raw)-1, len(raw)-1
	}
	total := 0
	for _, r := range raw {
		total += min(r, 3)
	}
	return total
}
