package mapping

import (
	"cmp"
	"errors"
	"slices"

	"github.com/qlaunch/qlaunch/kernels/circuit"
)

// beamParams are the knobs of routeBeam: how many routings it keeps at
// each step, and the weight of a unit of distance between the qubits of
// the front's units (and, times extended, of the next lookahead ones)
// against a CNOT of the estimate.
type beamParams struct {
	width     int
	distance  float64
	extended  float64
	lookahead int
}

// beamRoutes are the beam searches RouteFrom tries.
var beamRoutes = [...]beamParams{
	{width: 48, distance: 1.5, extended: 0.5, lookahead: 12},
	{width: 48, distance: 3, extended: 0.3, lookahead: 8},
}

// beamMaxWork bounds the circuits routeBeam routes: its time grows as the
// square of the units (the steps times the state copied at each) times
// the qubits (the moves of a step). beamMaxMoves bounds the moves it
// makes (each a copy of a routing in progress, some microseconds): past
// it, it gives up. Both are counts, so that whether it routes depends
// only on the circuit and the graph.
const (
	beamMaxWork  = 300_000
	beamMaxMoves = 40_000
)

var (
	errTooLarge = errors.New("mapping: too large for a beam search")
	errNoRoute  = errors.New("mapping: the beam search finished no routing")
)

// beamStep is one move of a routing in routeBeam and what it wrote: the
// units it ran (index ≥ 0) and the swaps it inserted (−1 − a·N − b for a
// swap on the physical edge a-b of a graph of N qubits), in order. The
// steps of a routing are linked back to its first, so that the routings
// of a beam share their common beginnings.
type beamStep struct {
	prev  *beamStep
	items []int
}

// beamMove is a move of routeBeam: run the unit unit (≥ 0), which can
// run, then swap its pair, the swap joining its block; or, with unit −1,
// a swap on the edge swap; or, with unit −1 and swap {−1, −1}, run every
// two-qubit unit that can run, and those it frees.
type beamMove struct {
	unit int
	swap [2]int
}

// beamState is a routing in progress in routeBeam: the layout, the units
// left (their predecessors not yet run, the front), the 2-qubit block
// open on each physical qubit (as estimateTwoQubit joins them: the
// partner qubit, or -1, and the CNOTs summed so far), the estimate of
// the ops so far and its score.
type beamState struct {
	phys, log []int
	indeg     []int
	front     []int
	partner   []int
	raw       []int
	cost      int     // estimateTwoQubit of the routing so far
	base      int     // the CNOTs the units run so far cost on their own
	swaps     int     // swaps so far
	idle      int     // swaps since a unit last ran
	score     float64 // the estimate beyond the units' own, plus the distances left (see routeBeam)
	trail     *beamStep
}

// clone returns a copy of s that shares nothing it changes.
func (s *beamState) clone() *beamState {
	t := *s
	t.phys, t.log, t.indeg = slices.Clone(s.phys), slices.Clone(s.log), slices.Clone(s.indeg)
	t.front, t.partner, t.raw = slices.Clone(s.front), slices.Clone(s.partner), slices.Clone(s.raw)
	return &t
}

// add joins a two-qubit gate of cnots CNOTs on physical qubits a and b to
// the blocks, as estimateTwoQubit does, and adds its cost.
func (s *beamState) add(a, b, cnots int) {
	if s.partner[a] == b {
		s.cost += min(s.raw[a]+cnots, 3) - min(s.raw[a], 3)
		s.raw[a] += cnots
		s.raw[b] = s.raw[a]
		return
	}
	s.close(a)
	s.close(b)
	s.partner[a], s.partner[b] = b, a
	s.raw[a], s.raw[b] = cnots, cnots
	s.cost += min(cnots, 3)
}

// close closes the block open on physical qubit p.
func (s *beamState) close(p int) {
	if q := s.partner[p]; q >= 0 {
		s.partner[q] = -1
	}
	s.partner[p] = -1
}

// beamRouter routes one circuit's units with routeBeam.
type beamRouter struct {
	c      *circuit.Circuit
	g      *Graph
	us     []unit
	succs  [][]int
	cnots  []int // each unit's CNOTs on its own (at most 3)
	p      beamParams
	finish *beamState // the best routing finished so far
}

// routeBeam routes c (checked by RouteFrom) from initial by a beam search
// in which a swap costs what it adds to estimateTwoQubit: nothing or one
// CNOT right after a two-qubit gate on its pair (the two join one block),
// three alone. From each routing kept it makes each of its moves (see
// moves: when a front unit can run, running them all, or running one and
// swapping its pair at once; else a swap at a front unit's qubit), each
// followed by the units on one qubit that are free, and it keeps the
// width routings of the least score: the estimate so far, less what the
// units run cost on their own, plus distance times the distance still
// between the qubits of the front's units (and, times extended, of the
// next lookahead ones). A routing that runs no unit for 2·N swaps brings
// the first front unit's qubits together. It returns the finished
// routing of the least estimate, then of fewer swaps; an error when c has
// a gate on more than two qubits, too many units (beamMaxWork) or needs
// too many moves (beamMaxMoves).
func routeBeam(c *circuit.Circuit, g *Graph, initial []int, p beamParams) (*circuit.Circuit, []int, error) {
	us, err := units(c)
	if err != nil {
		return nil, nil, err
	}
	if len(us)*len(us)*g.Nodes > beamMaxWork {
		return nil, nil, errTooLarge
	}
	succs, indeg := unitDeps(us, g.Nodes)
	r := &beamRouter{c: c, g: g, us: us, succs: succs, p: p, cnots: make([]int, len(us))}
	for i, u := range us {
		for _, j := range u.ops {
			if len(c.Ops[j].QubitList()) == 2 {
				r.cnots[i] += c.Ops[j].Gate.CNOTs()
			}
		}
		r.cnots[i] = min(r.cnots[i], 3)
	}
	s := &beamState{indeg: indeg, partner: make([]int, g.Nodes), raw: make([]int, g.Nodes)}
	s.phys, s.log = layout(initial, g.Nodes)
	for i := range indeg {
		if indeg[i] == 0 {
			s.front = append(s.front, i)
		}
	}
	for i := range s.partner {
		s.partner[i] = -1
	}
	s = r.advance(s, beamMove{unit: -1, swap: [2]int{-1, -1}})
	beam := []*beamState{s}
	if len(s.front) == 0 {
		r.finish, beam = s, nil
	}
	limit := (len(us) + 1) * (3*g.Nodes + 1)
	moves := 0
	for step := 0; len(beam) > 0 && step < limit; step++ {
		var next []*beamState
		seen := map[string]int{}
		keep := func(t *beamState) {
			if len(t.front) == 0 {
				if r.finish == nil || t.cost < r.finish.cost || t.cost == r.finish.cost && t.swaps < r.finish.swaps {
					r.finish = t
				}
				return
			}
			if r.finish != nil && t.cost >= r.finish.cost {
				return // it can only cost more
			}
			k := r.key(t)
			if i, ok := seen[k]; ok {
				if t.score < next[i].score {
					next[i] = t
				}
				return
			}
			seen[k] = len(next)
			next = append(next, t)
		}
		for _, s := range beam {
			for _, m := range r.moves(s) {
				if moves++; moves > beamMaxMoves {
					return nil, nil, errTooLarge
				}
				keep(r.advance(s.clone(), m))
			}
		}
		slices.SortStableFunc(next, func(a, b *beamState) int { return cmp.Compare(a.score, b.score) })
		beam = next[:min(len(next), p.width)]
	}
	if r.finish == nil {
		return nil, nil, errNoRoute
	}
	return r.emit(initial), r.finish.phys, nil
}

// moves returns s's moves: when a two-qubit unit of the front can run,
// running them all, and running each of them followed by a swap on its
// pair; else a swap on each edge at a physical qubit of a front unit, or,
// when no unit has run for 2·N swaps, the swap that brings the first
// front unit's qubits closer.
func (r *beamRouter) moves(s *beamState) []beamMove {
	none := [2]int{-1, -1}
	var ms []beamMove
	for _, u := range s.front {
		if r.runnable(s, u) {
			ms = append(ms, beamMove{unit: u, swap: none})
		}
	}
	if len(ms) > 0 {
		return append(ms, beamMove{unit: -1, swap: none})
	}
	if s.idle > 2*r.g.Nodes {
		qs := r.us[s.front[0]].qubits
		return []beamMove{{unit: -1, swap: closer(r.g, s.phys[qs[0]], s.phys[qs[1]])}}
	}
	onFront := make([]bool, r.g.Nodes)
	for _, u := range s.front {
		for _, q := range r.us[u].qubits {
			onFront[s.phys[q]] = true
		}
	}
	for _, e := range r.g.Edges {
		if onFront[e[0]] || onFront[e[1]] {
			ms = append(ms, beamMove{unit: -1, swap: e})
		}
	}
	return ms
}

// runnable reports whether u, a unit of s's front, is on two qubits that
// are adjacent.
func (r *beamRouter) runnable(s *beamState, u int) bool {
	qs := r.us[u].qubits
	return len(qs) == 2 && r.g.Adjacent(s.phys[qs[0]], s.phys[qs[1]])
}

// advance makes the move m on s, then runs every unit of the front on
// fewer than two qubits and those it frees, and scores s.
func (r *beamRouter) advance(s *beamState, m beamMove) *beamState {
	st := &beamStep{prev: s.trail}
	ran := false
	run := func(u int) {
		for _, i := range r.us[u].ops {
			op := r.c.Ops[i]
			oq := op.QubitList()
			switch {
			case routeFence(op):
				for _, q := range oq {
					s.close(s.phys[q])
				}
			case len(oq) == 2:
				s.add(s.phys[oq[0]], s.phys[oq[1]], op.Gate.CNOTs())
			}
		}
		s.base += r.cnots[u]
		st.items = append(st.items, u)
		ran = true
		s.indeg[u] = -1 // run
		k, _ := slices.BinarySearch(s.front, u)
		s.front = slices.Delete(s.front, k, k+1)
		for _, n := range r.succs[u] {
			if s.indeg[n]--; s.indeg[n] == 0 {
				pos, _ := slices.BinarySearch(s.front, n)
				s.front = slices.Insert(s.front, pos, n)
			}
		}
	}
	swap := func(e [2]int) {
		s.add(e[0], e[1], circuit.Swap.CNOTs())
		la, lb := s.log[e[0]], s.log[e[1]]
		s.log[e[0]], s.log[e[1]] = lb, la
		s.phys[la], s.phys[lb] = e[1], e[0]
		s.swaps++
		st.items = append(st.items, -1-e[0]*r.g.Nodes-e[1])
	}
	all := false
	switch {
	case m.unit >= 0:
		qs := r.us[m.unit].qubits
		a, b := s.phys[qs[0]], s.phys[qs[1]]
		run(m.unit)
		swap([2]int{min(a, b), max(a, b)})
	case m.swap[0] >= 0:
		swap(m.swap)
	default:
		all = true
	}
	for k := 0; k < len(s.front); {
		u := s.front[k]
		if len(r.us[u].qubits) == 2 && !(all && r.runnable(s, u)) {
			k++
			continue
		}
		run(u)
		k = 0
	}
	if ran {
		s.idle = 0
	} else {
		s.idle++
	}
	s.trail = st
	dist := func(u int) float64 {
		qs := r.us[u].qubits
		if len(qs) < 2 {
			return 0
		}
		return float64(r.g.Dist(s.phys[qs[0]], s.phys[qs[1]]) - 1)
	}
	far := 0.0
	for _, u := range s.front {
		far += dist(u)
	}
	for _, u := range lookaheadSet(r.us, s.front, r.succs, r.p.lookahead) {
		far += r.p.extended * dist(u)
	}
	s.score = float64(s.cost-s.base) + r.p.distance*far
	return s
}

// key returns what decides a routing's future: its layout and the
// predecessors left to each unit (-1: run).
func (r *beamRouter) key(s *beamState) string {
	b := make([]byte, 0, 2*len(s.log)+len(s.indeg)+1)
	for _, l := range s.log {
		b = append(b, byte(l), byte(l>>8))
	}
	for _, d := range s.indeg {
		b = append(b, byte(min(d+1, 255)))
	}
	return string(b)
}

// emit writes the finished routing: each step's swap, then its units'
// ops on the physical qubits of the layout then.
func (r *beamRouter) emit(initial []int) *circuit.Circuit {
	var steps []*beamStep
	for st := r.finish.trail; st != nil; st = st.prev {
		steps = append(steps, st)
	}
	slices.Reverse(steps)
	out := &circuit.Circuit{Qubits: r.g.Nodes, Cregs: r.c.Cregs, Defs: r.c.Defs}
	phys, log := layout(initial, r.g.Nodes)
	n := r.g.Nodes
	for _, st := range steps {
		for _, it := range st.items {
			if it < 0 {
				a, b := (-1-it)/n, (-1-it)%n
				out.Ops = append(out.Ops, circuit.Op{Gate: circuit.Swap, Qubits: [3]int{a, b}})
				la, lb := log[a], log[b]
				log[a], log[b] = lb, la
				phys[la], phys[lb] = b, a
				continue
			}
			for _, i := range r.us[it].ops {
				op := r.c.Ops[i]
				for j, q := range op.QubitList() {
					op.Qubits[j] = phys[q]
				}
				out.Ops = append(out.Ops, op)
			}
		}
	}
	return out
}
