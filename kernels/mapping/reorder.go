package mapping

import (
	"slices"

	"github.com/qlaunch/qlaunch/kernels/circuit"
)

// DiagonalOrder returns c with its commuting diagonal units rearranged so
// that a forward partition into blocks of width qubits (see
// resynth.Partition) joins more of them into blocks already open, and
// whether that order differs from c's. c's units (a gate, or a
// cx·diagonal·cx ZZ rotation; see units) are laid out one after the other
// and each maximal run of consecutive diagonal units, which all commute,
// is taken greedily: next the first unit left that joins the block open
// on its qubits, or the first left when none does. The result is exactly
// equivalent to c. Every measurement, reset, barrier and conditioned op
// is a unit of its own that no run includes, so it keeps its place, and
// every other op keeps its order relative to the ops on its qubits. A
// circuit with a gate on more than two qubits, or with no run of two
// diagonal units or more, gives c and false.
func DiagonalOrder(c *circuit.Circuit, width int) (*circuit.Circuit, bool) {
	us, err := units(c)
	if err != nil {
		return c, false
	}
	var runs [][2]int // [start, end) of each run of two diagonal units or more
	for i := 0; i < len(us); {
		j := i
		for j < len(us) && us[j].diag {
			j++
		}
		if j-i >= 2 {
			runs = append(runs, [2]int{i, j})
		}
		i = max(j, i+1)
	}
	if len(runs) == 0 {
		return c, false
	}
	out := &circuit.Circuit{Qubits: c.Qubits, Cregs: c.Cregs, Defs: c.Defs, Ops: make([]circuit.Op, 0, len(c.Ops))}
	moved := false
	for _, u := range greedyOrder(c, us, runs, width) {
		for _, i := range us[u].ops {
			moved = moved || i != len(out.Ops)
			out.Ops = append(out.Ops, c.Ops[i])
		}
	}
	if !moved {
		return c, false
	}
	return out, true
}

// blockTracker follows resynth.Partition's forward scan: the newest block
// touching each qubit and each block's qubits.
type blockTracker struct {
	width  int
	last   []int   // newest block touching each qubit, or -1
	qubits [][]int // each block's qubits
	fence  []bool  // each block is a fence
}

// joins reports whether a gate on qs would join a block already open.
func (t *blockTracker) joins(qs []int) bool {
	b := -1
	for _, q := range qs {
		b = max(b, t.last[q])
	}
	if b < 0 || t.fence[b] {
		return false
	}
	n := len(t.qubits[b])
	for _, q := range qs {
		if !slices.Contains(t.qubits[b], q) {
			n++
		}
	}
	return n <= t.width
}

// add scans op as Partition does.
func (t *blockTracker) add(op circuit.Op) {
	qs := op.QubitList()
	if !routeFence(op) && t.joins(qs) {
		b := -1
		for _, q := range qs {
			b = max(b, t.last[q])
		}
		for _, q := range qs {
			if !slices.Contains(t.qubits[b], q) {
				t.qubits[b] = append(t.qubits[b], q)
			}
			t.last[q] = b
		}
		return
	}
	t.qubits = append(t.qubits, slices.Clone(qs))
	t.fence = append(t.fence, routeFence(op))
	for _, q := range qs {
		t.last[q] = len(t.qubits) - 1
	}
}

// greedyOrder returns the units' order in which each run's next unit is
// the first of those left that joins a block open in a forward partition
// into blocks of width qubits (see resynth.Partition), or the first left
// when none does.
func greedyOrder(c *circuit.Circuit, us []unit, runs [][2]int, width int) []int {
	t := &blockTracker{width: width, last: make([]int, c.Qubits)}
	for q := range t.last {
		t.last[q] = -1
	}
	addUnit := func(u int) {
		for _, i := range us[u].ops {
			t.add(c.Ops[i])
		}
	}
	var order []int
	next := 0
	for _, run := range runs {
		for ; next < run[0]; next++ {
			order = append(order, next)
			addUnit(next)
		}
		left := make([]int, 0, run[1]-run[0])
		for u := run[0]; u < run[1]; u++ {
			left = append(left, u)
		}
		for len(left) > 0 {
			k := max(0, slices.IndexFunc(left, func(u int) bool { return t.joins(us[u].qubits) }))
			order = append(order, left[k])
			addUnit(left[k])
			left = slices.Delete(left, k, k+1)
		}
		next = run[1]
	}
	for ; next < len(us); next++ {
		order = append(order, next)
	}
	return order
}
