package resynth

import (
	"slices"

	"github.com/qlaunch/qlaunch/kernels/circuit"
)

// PermutationSwaps returns swaps that move the state of qubit q to qubit
// perm[q], for every q (perm a permutation of 0 … len(perm)−1).
func PermutationSwaps(perm []int) []circuit.Op {
	at := slices.Clone(perm) // at[q]: where the state now on qubit q must go
	var ops []circuit.Op
	for q := range at {
		for at[q] != q {
			r := at[q]
			ops = append(ops, circuit.Op{Gate: circuit.Swap, Qubits: [3]int{q, r}})
			at[q], at[r] = at[r], at[q]
		}
	}
	return ops
}

// Inverse returns the inverse of the permutation perm.
func Inverse(perm []int) []int {
	inv := make([]int, len(perm))
	for q, p := range perm {
		inv[p] = q
	}
	return inv
}

// Compose returns the permutation that maps q to second[first[q]]; a nil
// argument is the identity (both nil: nil).
func Compose(first, second []int) []int {
	switch {
	case first == nil:
		return slices.Clone(second)
	case second == nil:
		return slices.Clone(first)
	}
	out := make([]int, len(first))
	for q, p := range first {
		out[q] = second[p]
	}
	return out
}

// PermuteQubits returns c with qubit q renamed perm[q] (perm a permutation
// of c's qubits). Its unitary is P·U·P⁻¹ for P the unitary of
// PermutationSwaps(perm).
func PermuteQubits(c *circuit.Circuit, perm []int) *circuit.Circuit {
	out := &circuit.Circuit{Qubits: c.Qubits, Cregs: c.Cregs, Defs: c.Defs, Ops: make([]circuit.Op, len(c.Ops))}
	for i, op := range c.Ops {
		for j, q := range op.QubitList() {
			op.Qubits[j] = perm[q]
		}
		out.Ops[i] = op
	}
	return out
}

// permutations returns the permutations of 0 … k−1 other than the
// identity, in lexicographic order.
func permutations(k int) [][]int {
	var out [][]int
	var rec func(prefix []int, used []bool)
	rec = func(prefix []int, used []bool) {
		if len(prefix) == k {
			for i, p := range prefix {
				if i != p {
					out = append(out, slices.Clone(prefix))
					break
				}
			}
			return
		}
		for x := range k {
			if !used[x] {
				used[x] = true
				rec(append(prefix, x), used)
				used[x] = false
			}
		}
	}
	rec(nil, make([]bool, k))
	return out
}

// endBlocks reports, of each block, whether it is the first block on every
// one of its qubits, and whether it is the last on every one of them: a
// permutation of its inputs (of its outputs) then commutes with nothing
// else to the circuit's start (end).
func endBlocks(qubits int, blocks []Block) (first, last []bool) {
	firstOn, lastOn := make([]int, qubits), make([]int, qubits)
	for q := range firstOn {
		firstOn[q], lastOn[q] = -1, -1
	}
	for i, b := range blocks {
		for _, q := range b.Qubits {
			if firstOn[q] < 0 {
				firstOn[q] = i
			}
			lastOn[q] = i
		}
	}
	first, last = make([]bool, len(blocks)), make([]bool, len(blocks))
	for i, b := range blocks {
		first[i], last[i] = !b.Fence, !b.Fence
		for _, q := range b.Qubits {
			first[i] = first[i] && firstOn[q] == i
			last[i] = last[i] && lastOn[q] == i
		}
	}
	return first, last
}

// joinOneQubitEnds moves the ops of a block of single-qubit gates that is
// the first on its qubit into the next block on that qubit, when that one
// is on two qubits or more (and neither is a fence), and those of one that
// is the last into the block before it, so that the wider block becomes
// the first (last) on the qubit: a circuit's opening layer of single-qubit
// gates (a QFT's Hadamards) no longer keeps the blocks after it from
// permuting their inputs. The ops keep their order on every qubit. It
// returns the blocks left.
func joinOneQubitEnds(qubits int, blocks []Block) []Block {
	on := make([][]int, qubits) // the blocks on each qubit, in order
	for i, b := range blocks {
		for _, q := range b.Qubits {
			on[q] = append(on[q], i)
		}
	}
	gone := make([]bool, len(blocks))
	joinable := func(i int) bool { return !blocks[i].Fence && len(blocks[i].Qubits) >= 2 }
	lone := func(i int) bool { return !blocks[i].Fence && len(blocks[i].Qubits) == 1 }
	for _, list := range on {
		if len(list) < 2 {
			continue
		}
		if a, b := list[0], list[1]; lone(a) && joinable(b) {
			blocks[b].Ops = append(slices.Clone(blocks[a].Ops), blocks[b].Ops...)
			gone[a] = true
		}
		if a, b := list[len(list)-2], list[len(list)-1]; joinable(a) && lone(b) && !gone[b] {
			blocks[a].Ops = append(blocks[a].Ops, blocks[b].Ops...)
			gone[b] = true
		}
	}
	out := blocks[:0]
	for i, b := range blocks {
		if !gone[i] {
			out = append(out, b)
		}
	}
	return out
}
