package resynth

import (
	"slices"

	"github.com/qlaunch/qlaunch/kernels/circuit"
)

// Block is a run of a circuit's operations on a few qubits that can be
// replaced as a whole.
type Block struct {
	Qubits []int        // the qubits the block touches, ascending
	Ops    []circuit.Op // in circuit order, on the circuit's qubits
	// Fence marks a block of one op that is kept in place: a measure,
	// reset, barrier or conditioned op, which no block crosses.
	Fence bool
}

// fence reports whether op must stay a block of its own.
func fence(op circuit.Op) bool { return !op.Gate.Unitary() || op.Cond.Set() }

// Local returns the block as a circuit on len(Qubits) qubits, qubit
// Qubits[i] renamed i, with the definitions defs of its defined gates.
func (b Block) Local(defs []circuit.Def) *circuit.Circuit {
	c := &circuit.Circuit{Qubits: len(b.Qubits), Defs: defs}
	for _, op := range b.Ops {
		for i, q := range op.QubitList() {
			op.Qubits[i] = slices.Index(b.Qubits, q)
		}
		c.Append(op)
	}
	return c
}

// CNOTs returns the block's CNOT count.
func (b Block) CNOTs() int {
	n := 0
	for _, op := range b.Ops {
		n += op.Gate.CNOTs()
	}
	return n
}

// Partition splits c into blocks of at most maxQubits qubits (a gate wider
// than that gets a block of its own). Scanning the gates in order, each
// joins the newest block among those last touching its qubits when the
// union of qubits stays within maxQubits, and starts a new block
// otherwise. Dependencies between blocks then only run from older to
// newer, so the blocks in order, each applied whole, give c's unitary.
// A measure, reset, barrier or conditioned op is a fence: a block of its
// own that nothing joins, so every op stays on its side of it, and the
// fences keep their order among themselves (they are blocks made in
// order, and no later op joins an earlier block across one).
func Partition(c *circuit.Circuit, maxQubits int) []Block {
	var blocks []Block
	last := make([]int, c.Qubits) // newest block touching each qubit, or -1
	for i := range last {
		last[i] = -1
	}
	for _, op := range c.Ops {
		qs := op.QubitList()
		b := -1
		for _, q := range qs {
			b = max(b, last[q])
		}
		if fence(op) {
			blocks = append(blocks, Block{Qubits: slices.Sorted(slices.Values(qs)), Ops: []circuit.Op{op}, Fence: true})
			for _, q := range qs {
				last[q] = len(blocks) - 1
			}
			continue
		}
		if b >= 0 && !blocks[b].Fence {
			union := slices.Clone(blocks[b].Qubits)
			for _, q := range qs {
				if !slices.Contains(union, q) {
					union = append(union, q)
				}
			}
			if len(union) <= maxQubits {
				slices.Sort(union)
				blocks[b].Qubits = union
				blocks[b].Ops = append(blocks[b].Ops, op)
				for _, q := range qs {
					last[q] = b
				}
				continue
			}
		}
		nb := Block{Qubits: slices.Sorted(slices.Values(qs)), Ops: []circuit.Op{op}}
		blocks = append(blocks, nb)
		for _, q := range qs {
			last[q] = len(blocks) - 1
		}
	}
	return blocks
}

// PartitionBackward is Partition scanning from the circuit's end: it
// partitions the ops in reverse order, then puts the blocks, and the ops
// of each, back in circuit order. Its blocks' edges fall elsewhere than
// Partition's, so a pass of each finds what the other's blocks cut.
func PartitionBackward(c *circuit.Circuit, maxQubits int) []Block {
	reversed := &circuit.Circuit{Qubits: c.Qubits, Cregs: c.Cregs, Defs: c.Defs, Ops: slices.Clone(c.Ops)}
	slices.Reverse(reversed.Ops)
	blocks := Partition(reversed, maxQubits)
	slices.Reverse(blocks)
	for _, b := range blocks {
		slices.Reverse(b.Ops)
	}
	return blocks
}

// Assemble returns the circuit on qubits qubits made of the blocks' operations in order.
func Assemble(qubits int, blocks []Block) *circuit.Circuit {
	c := circuit.New(qubits)
	for _, b := range blocks {
		c.Append(b.Ops...)
	}
	return c
}

// globalOps maps a circuit on a block's local qubits back to the circuit's
// qubits.
func globalOps(local *circuit.Circuit, qubits []int) []circuit.Op {
	ops := make([]circuit.Op, len(local.Ops))
	for i, op := range local.Ops {
		for j, q := range op.QubitList() {
			op.Qubits[j] = qubits[q]
		}
		ops[i] = op
	}
	return ops
}
