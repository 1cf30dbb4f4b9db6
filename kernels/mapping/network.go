package mapping

import (
	"errors"
	"slices"

	"github.com/qlaunch/qlaunch/kernels/circuit"
)

var (
	errNotPath     = errors.New("mapping: a swap network needs a graph that is a path")
	errNotLayered  = errors.New("mapping: a swap network needs every two-qubit unit diagonal (commuting layers)")
	errNoConverged = errors.New("mapping: the swap network did not bring every pair together")
)

// pathOrder returns g's qubits in the order of the path g is (linear:N,
// or any graph that is one), or false.
func pathOrder(g *Graph) ([]int, bool) {
	if len(g.Edges) != g.Nodes-1 {
		return nil, false
	}
	adj := make([][]int, g.Nodes)
	for _, e := range g.Edges {
		adj[e[0]] = append(adj[e[0]], e[1])
		adj[e[1]] = append(adj[e[1]], e[0])
	}
	start := -1
	for p, ns := range adj {
		if len(ns) > 2 {
			return nil, false
		}
		if len(ns) == 1 && start < 0 {
			start = p
		}
	}
	if start < 0 {
		return nil, false
	}
	order := []int{start}
	for prev, p := -1, start; len(order) < g.Nodes; {
		next := -1
		for _, n := range adj[p] {
			if n != prev {
				next = n
			}
		}
		if next < 0 {
			return nil, false
		}
		order = append(order, next)
		prev, p = p, next
	}
	return order, true
}

// network is a variant of routeSwapNetwork: the parity of the bonds of
// its first layer, and whether it first runs every term whose qubits are
// adjacent (eager) or leaves them to the layer that swaps them.
type network struct {
	parity int
	eager  bool
}

// swapNetworks are the variants of routeSwapNetwork RouteFrom tries.
var swapNetworks = [...]network{{0, false}, {1, false}, {0, true}, {1, true}}

// routeSwapNetwork routes c (checked by RouteFrom) from initial on g, a
// path, when every two-qubit unit of c is diagonal (see units): each run
// of consecutive diagonal units is a layer of commuting terms (a Trotter
// step's ZZ interactions, a QAOA cost layer), which it runs as an
// odd-even transposition network starting on the bonds of parity: first
// every term whose qubits are adjacent, then, layer after layer of the
// network (bonds 0-1, 2-3, … then 1-2, 3-4, …), on each bond of the
// layer the term on its pair if one is left, then a swap, which joins
// that term's block (resynthesis writes the two in three CNOTs, as the
// term alone may need); a bond whose qubits have no term left is not
// swapped. Any order of the terms of a layer is exactly equivalent to the
// input's. Other units run where they are. It returns an error for a
// graph that is not a path or a circuit with a two-qubit unit that is
// not diagonal.
func routeSwapNetwork(c *circuit.Circuit, g *Graph, initial []int, n network) (*circuit.Circuit, []int, error) {
	path, ok := pathOrder(g)
	if !ok {
		return nil, nil, errNotPath
	}
	us, err := units(c)
	if err != nil {
		return nil, nil, err
	}
	for _, u := range us {
		if len(u.qubits) == 2 && !u.diag {
			return nil, nil, errNotLayered
		}
	}
	out := &circuit.Circuit{Qubits: g.Nodes, Cregs: c.Cregs, Defs: c.Defs}
	phys, log := layout(initial, g.Nodes)
	emit := func(u int) {
		for _, i := range us[u].ops {
			op := c.Ops[i]
			for j, q := range op.QubitList() {
				op.Qubits[j] = phys[q]
			}
			out.Ops = append(out.Ops, op)
		}
	}
	swap := func(a, b int) {
		out.Ops = append(out.Ops, circuit.Op{Gate: circuit.Swap, Qubits: [3]int{a, b}})
		la, lb := log[a], log[b]
		log[a], log[b] = lb, la
		phys[la], phys[lb] = b, a
	}
	for i := 0; i < len(us); {
		if !us[i].diag {
			emit(i)
			i++
			continue
		}
		j := i
		var terms []int
		for ; j < len(us) && us[j].diag; j++ {
			if len(us[j].qubits) == 2 {
				terms = append(terms, j)
			} else {
				emit(j) // diagonal on one qubit: commutes with the layer
			}
		}
		// pending counts the terms left on each logical qubit.
		pending := make([]int, g.Nodes)
		for _, u := range terms {
			for _, q := range us[u].qubits {
				pending[q]++
			}
		}
		runOn := func(a, b int) bool { // the first term left on the pair of physical a, b
			for k, u := range terms {
				if qs := us[u].qubits; phys[qs[0]] == a && phys[qs[1]] == b || phys[qs[0]] == b && phys[qs[1]] == a {
					emit(u)
					pending[qs[0]]--
					pending[qs[1]]--
					terms = slices.Delete(terms, k, k+1)
					return true
				}
			}
			return false
		}
		for k := 0; n.eager && k < len(terms); {
			qs := us[terms[k]].qubits
			if g.Adjacent(phys[qs[0]], phys[qs[1]]) {
				runOn(phys[qs[0]], phys[qs[1]])
				k = 0
				continue
			}
			k++
		}
		for layer := 0; len(terms) > 0; layer++ {
			if layer > 4*g.Nodes {
				return nil, nil, errNoConverged
			}
			for b := (layer + n.parity) % 2; b+1 < len(path); b += 2 {
				x, y := path[b], path[b+1]
				for runOn(x, y) {
				}
				if pending[log[x]] == 0 && pending[log[y]] == 0 || len(terms) == 0 {
					continue
				}
				swap(x, y)
			}
		}
		i = j
	}
	return out, phys, nil
}
