// Package mapping places circuits on a machine's coupling graph and routes
// them: after Route every two-qubit gate acts on an edge of the graph.
//
// A Graph is read by ParseCoupling from an edge list ("0-1,1-2"), a file
// of edges (one "a-b" or "a b" per line or comma-separated; # comments),
// or a preset: linear:N, ring:N, grid:RxC, all:N, heavy-hex:RxC (IBM's
// lattice of R rows of C qubits joined by bridge qubits). Place chooses the
// initial mapping by forward and backward routing passes (SABRE's
// placement); PlaceCandidates returns the next best starts of those
// passes too, one of each kind of routing (the copies of a routing under
// a symmetry of the circuit left out), for a caller that compiles
// several. RouteFrom starts from an initial mapping (Route from the
// identity) and routes as SABRE does, unit by unit: a unit is an op, or a
// run cx(a,b)·(diagonal gates on a, b)·cx(a,b) — a ZZ rotation — and
// diagonal units commute, so a layer of them (QAOA's, an Ising model's)
// runs in whatever order the graph favours. It runs every unit of the
// front layer (the units whose predecessors have run) whose qubits are
// adjacent, in circuit order, and when none is, inserts the swap, on a
// front unit's qubit, of the least cost: the mean distance of the
// front's units plus a weight times that of the next ones (a lookahead
// window), scaled by a decay that spreads swaps over the qubits, less a
// bonus for a swap on the pair of the last two-qubit gate of both its
// qubits (resynthesis merges the two: a ZZ rotation and a swap are 3
// CNOTs, not 5); a variant also follows a unit by a swap on its own pair
// (its mirror) when that brings the next units closer. After 2·N swaps
// without a gate it brings the first front unit's qubits together, so
// routing ends. Measurements, resets, barriers and conditioned gates keep
// their order among all the ops. RouteFrom tries several weights (and
// jittered trials of them), a gate-by-gate router in circuit order, a
// beam search (routeBeam) whose moves are a swap, running the units that
// can run, or running one and swapping its pair at once (the swap joins
// its block), each scored by what it adds to the estimate, and, on a
// path (linear:N) for circuits whose two-qubit units are all diagonal
// (each run of them a layer of commuting terms: QAOA, an Ising model), an
// odd-even transposition swap network (routeSwapNetwork) that runs each
// term on its bond just before swapping it, the swap joined to the
// term's block; it keeps the routing of the least estimated two-qubit
// count after a resynthesis of 2-qubit blocks (each run of gates on one
// pair costs at most 3), then of fewer ops. It reports the final
// mapping, logical → physical; the caller need not route back to the
// initial one.
//
// DiagonalOrder rearranges each run of commuting diagonal units so that a
// forward partition into blocks of a width joins more of them into the
// blocks it has open (a Trotter step's ZZ terms, taken in circuit order,
// leave blocks half used), an exactly equivalent circuit.
package mapping

import (
	"cmp"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/qlaunch/qlaunch/kernels/circuit"
)

// Graph is an undirected coupling graph on Nodes physical qubits.
type Graph struct {
	Nodes int
	Edges [][2]int // a < b, sorted, no duplicates
	dist  [][]int
}

// MaxNodes bounds a graph's qubits.
const MaxNodes = circuit.MaxQubits

// CouplingError reports a coupling that cannot be read.
type CouplingError struct{ Spec, Msg string }

func (e *CouplingError) Error() string {
	return fmt.Sprintf("mapping: coupling %q: %s (want a-b,c-d…, a file of edges, linear:N, ring:N, grid:RxC, all:N or heavy-hex:RxC)", e.Spec, e.Msg)
}

// BadInput marks the error as the caller's fault.
func (e *CouplingError) BadInput() bool { return true }

// ParseCoupling reads a coupling graph (see the package documentation).
// A spec that names an existing file is read as a file of edges.
func ParseCoupling(spec string) (*Graph, error) {
	kind, arg, hasColon := strings.Cut(spec, ":")
	if hasColon {
		switch kind {
		case "linear", "ring", "all":
			n, err := strconv.Atoi(arg)
			if err != nil || n < 2 || n > MaxNodes {
				return nil, &CouplingError{spec, fmt.Sprintf("N must be 2 to %d", MaxNodes)}
			}
			var edges [][2]int
			switch kind {
			case "linear", "ring":
				for i := 0; i+1 < n; i++ {
					edges = append(edges, [2]int{i, i + 1})
				}
				if kind == "ring" && n > 2 {
					edges = append(edges, [2]int{0, n - 1})
				}
			case "all":
				if n > 64 {
					return nil, &CouplingError{spec, "all:N takes N up to 64"}
				}
				for a := range n {
					for b := a + 1; b < n; b++ {
						edges = append(edges, [2]int{a, b})
					}
				}
			}
			return newGraph(spec, n, edges)
		case "heavy-hex":
			rs, cs, ok := strings.Cut(arg, "x")
			r, err1 := strconv.Atoi(rs)
			c, err2 := strconv.Atoi(cs)
			if !ok || err1 != nil || err2 != nil || r < 1 || c < 2 || r*c*2 > MaxNodes {
				return nil, &CouplingError{spec, "want heavy-hex:RxC with C ≥ 2 and 2·R·C at most " + strconv.Itoa(MaxNodes)}
			}
			return heavyHex(spec, r, c)
		case "grid":
			rs, cs, ok := strings.Cut(arg, "x")
			r, err1 := strconv.Atoi(rs)
			c, err2 := strconv.Atoi(cs)
			if !ok || err1 != nil || err2 != nil || r < 1 || c < 1 || r*c < 2 || r*c > MaxNodes {
				return nil, &CouplingError{spec, "want grid:RxC with R·C from 2 to " + strconv.Itoa(MaxNodes)}
			}
			var edges [][2]int
			for i := range r {
				for j := range c {
					if j+1 < c {
						edges = append(edges, [2]int{i*c + j, i*c + j + 1})
					}
					if i+1 < r {
						edges = append(edges, [2]int{i*c + j, (i+1)*c + j})
					}
				}
			}
			return newGraph(spec, r*c, edges)
		}
	}
	text := spec
	if b, err := os.ReadFile(spec); err == nil {
		text = string(b)
	} else if !strings.Contains(spec, "-") {
		return nil, &CouplingError{spec, "not a preset, an edge list or a readable file"}
	}
	var edges [][2]int
	n := 0
	for _, line := range strings.Split(text, "\n") {
		line, _, _ = strings.Cut(line, "#")
		for _, f := range strings.FieldsFunc(line, func(r rune) bool { return r == ',' || r == ';' }) {
			f = strings.TrimSpace(f)
			if f == "" {
				continue
			}
			as, bs, ok := strings.Cut(f, "-")
			if !ok {
				as, bs, ok = strings.Cut(f, " ")
			}
			a, err1 := strconv.Atoi(strings.TrimSpace(as))
			b, err2 := strconv.Atoi(strings.TrimSpace(bs))
			if !ok || err1 != nil || err2 != nil || a < 0 || b < 0 || a == b || a >= MaxNodes || b >= MaxNodes {
				return nil, &CouplingError{spec, fmt.Sprintf("bad edge %q", f)}
			}
			edges = append(edges, [2]int{min(a, b), max(a, b)})
			n = max(n, a+1, b+1)
		}
	}
	if len(edges) == 0 {
		return nil, &CouplingError{spec, "no edges"}
	}
	return newGraph(spec, n, edges)
}

// heavyHex returns IBM's heavy-hex lattice: r rows of c qubits in a
// chain (row i on qubits i·c … i·c+c−1), and between rows i and i+1 a
// bridge qubit at every fourth column, from column 0 below even rows and
// from column 2 below odd ones (numbered after the rows, row by row), so
// that every qubit has at most three neighbours.
func heavyHex(spec string, r, c int) (*Graph, error) {
	var edges [][2]int
	for i := range r {
		for j := 0; j+1 < c; j++ {
			edges = append(edges, [2]int{i*c + j, i*c + j + 1})
		}
	}
	n := r * c
	for i := 0; i+1 < r; i++ {
		for j := 2 * (i % 2); j < c; j += 4 {
			edges = append(edges, [2]int{i*c + j, n}, [2]int{(i+1)*c + j, n})
			n++
		}
	}
	return newGraph(spec, n, edges)
}

func newGraph(spec string, n int, edges [][2]int) (*Graph, error) {
	slices.SortFunc(edges, func(x, y [2]int) int {
		if x[0] != y[0] {
			return x[0] - y[0]
		}
		return x[1] - y[1]
	})
	edges = slices.Compact(edges)
	g := &Graph{Nodes: n, Edges: edges}
	adj := make([][]int, n)
	for _, e := range edges {
		adj[e[0]] = append(adj[e[0]], e[1])
		adj[e[1]] = append(adj[e[1]], e[0])
	}
	g.dist = make([][]int, n)
	for s := range n {
		d := make([]int, n)
		for i := range d {
			d[i] = -1
		}
		d[s] = 0
		queue := []int{s}
		for len(queue) > 0 {
			v := queue[0]
			queue = queue[1:]
			for _, w := range adj[v] {
				if d[w] < 0 {
					d[w] = d[v] + 1
					queue = append(queue, w)
				}
			}
		}
		for _, x := range d {
			if x < 0 {
				return nil, &CouplingError{spec, "the graph is not connected"}
			}
		}
		g.dist[s] = d
	}
	return g, nil
}

// Dist returns the number of edges between physical qubits a and b.
func (g *Graph) Dist(a, b int) int { return g.dist[a][b] }

// Adjacent reports whether a and b share an edge.
func (g *Graph) Adjacent(a, b int) bool { return g.dist[a][b] == 1 }

// lookahead is the number of later two-qubit gates that weigh on a swap.
const lookahead = 20

// Route returns c on g's physical qubits with swaps inserted so that every
// gate on two qubits acts on an edge, and the final mapping (logical
// qubit i ends on physical qubit final[i], for every i below g.Nodes: the
// qubits beyond c's are idle ancillas); the initial mapping is the
// identity. Gates on three qubits must have been decomposed; c must fit
// on g.
func Route(c *circuit.Circuit, g *Graph) (*circuit.Circuit, []int, error) {
	return RouteFrom(c, g, Identity(g.Nodes))
}

// Identity returns the identity mapping of n qubits.
func Identity(n int) []int {
	m := make([]int, n)
	for i := range m {
		m[i] = i
	}
	return m
}

// RouteFrom is Route from the initial mapping initial (logical qubit i
// on physical qubit initial[i], a permutation of g's qubits): of
// routeFront's routings with each of routeWeights and routeInOrder's, the
// one of the least estimated two-qubit count after resynthesis
// (estimateTwoQubit), then of fewer ops, then the first.
func RouteFrom(c *circuit.Circuit, g *Graph, initial []int) (*circuit.Circuit, []int, error) {
	if err := checkRoute(c, g, initial); err != nil {
		return nil, nil, err
	}
	return routeBest(c, g, initial, routeTrials(), beamRoutes[:], true)
}

// routeJitteredTrials is the number of jittered trials RouteFrom adds to
// routeWeights (cycling over them).
const routeJitteredTrials = 12

// routeTrials returns the weights RouteFrom routes with: routeWeights,
// then routeJitteredTrials jittered copies of them.
func routeTrials() []weights {
	ws := routeWeights[:]
	for t := range routeJitteredTrials {
		w := routeWeights[t%len(routeWeights)]
		w.jitter, w.seed = 0.3, uint64(t+1)
		ws = append(ws, w)
	}
	return ws
}

// checkRoute checks that c fits on g and initial is a permutation of g's
// qubits.
func checkRoute(c *circuit.Circuit, g *Graph, initial []int) error {
	if c.Qubits > g.Nodes {
		return fmt.Errorf("mapping: %d qubits on a graph of %d", c.Qubits, g.Nodes)
	}
	if len(initial) != g.Nodes {
		return fmt.Errorf("mapping: initial mapping of %d qubits on a graph of %d", len(initial), g.Nodes)
	}
	seen := make([]bool, g.Nodes)
	for _, p := range initial {
		if p < 0 || p >= g.Nodes || seen[p] {
			return fmt.Errorf("mapping: initial mapping %v is not a permutation", initial)
		}
		seen[p] = true
	}
	return nil
}

// routeBest returns, of routeCandidates' routings, the one of the least
// estimateTwoQubit, then of fewer ops, then the first.
func routeBest(c *circuit.Circuit, g *Graph, initial []int, ws []weights, beams []beamParams, networks bool) (*circuit.Circuit, []int, error) {
	rs, err := routeCandidates(c, g, initial, ws, beams, networks)
	if err != nil {
		return nil, nil, err
	}
	best, bestCost := 0, 0
	for i, r := range rs {
		cost := estimateTwoQubit(r.out)
		if i == 0 || cost < bestCost || cost == bestCost && len(r.out.Ops) < len(rs[best].out.Ops) {
			best, bestCost = i, cost
		}
	}
	return rs[best].out, rs[best].final, nil
}

// routing is a routed circuit and its final mapping.
type routing struct {
	out   *circuit.Circuit
	final []int
}

// routeCandidates routes c (checked by checkRoute) from initial with
// routeFront under each of ws, with routeInOrder, with routeBeam under
// each of beams and, when networks is set, with routeSwapNetwork in each
// of swapNetworks (those that route: routeInOrder, routeBeam and
// routeSwapNetwork refuse some circuits), and returns the routings in
// that order; an error when routeFront fails.
func routeCandidates(c *circuit.Circuit, g *Graph, initial []int, ws []weights, beams []beamParams, networks bool) ([]routing, error) {
	var rs []routing
	for _, w := range ws {
		out, perm, err := routeFront(c, g, initial, w)
		if err != nil {
			return nil, err
		}
		rs = append(rs, routing{out, perm})
	}
	if out, perm, err := routeInOrder(c, g, initial); err == nil {
		rs = append(rs, routing{out, perm})
	}
	for _, p := range beams {
		if out, perm, err := routeBeam(c, g, initial, p); err == nil {
			rs = append(rs, routing{out, perm})
		}
	}
	if networks {
		for _, n := range swapNetworks {
			if out, perm, err := routeSwapNetwork(c, g, initial, n); err == nil {
				rs = append(rs, routing{out, perm})
			}
		}
	}
	if len(rs) == 0 {
		return nil, fmt.Errorf("mapping: no router routed the circuit")
	}
	return rs, nil
}

// layout returns the two views of initial, a permutation of nodes (checked
// by RouteFrom): logical → physical (a copy; logical ≥ the circuit's
// qubits are ancillas) and physical → logical.
func layout(initial []int, nodes int) (phys, log []int) {
	phys = slices.Clone(initial)
	log = make([]int, nodes)
	for l, p := range phys {
		log[p] = l
	}
	return phys, log
}

// routeFront routes c as SABRE does, from its front layer, from initial
// (checked by RouteFrom), with the weights w. It routes the units of c
// (see units): a unit of commuting diagonal gates does not wait for the
// other diagonal units on its qubits, so the router may run the terms of
// a diagonal layer (QAOA's ZZ rotations) in whatever order the coupling
// favours.
func routeFront(c *circuit.Circuit, g *Graph, initial []int, w weights) (*circuit.Circuit, []int, error) {
	out := &circuit.Circuit{Qubits: g.Nodes, Cregs: c.Cregs, Defs: c.Defs}
	phys, log := layout(initial, g.Nodes)
	us, err := units(c)
	if err != nil {
		return nil, nil, err
	}
	succs, indeg := unitDeps(us, g.Nodes)
	var front []int // units whose predecessors are all out, ascending
	for i := range indeg {
		if indeg[i] == 0 {
			front = append(front, i)
		}
	}
	// partner[p] is the physical qubit p last shared a two-qubit gate
	// with, when no other op on two qubits came after it on either (-1:
	// none): a swap on that pair joins the gate's block, which
	// resynthesis then writes with few more two-qubit gates, or none.
	partner := make([]int, g.Nodes)
	for i := range partner {
		partner[i] = -1
	}
	emit := func(op circuit.Op) {
		qs := op.QubitList()
		for j, q := range qs {
			op.Qubits[j] = phys[q]
		}
		switch {
		case routeFence(op):
			for _, q := range qs {
				partner[phys[q]] = -1
			}
		case len(qs) == 2:
			a, b := phys[qs[0]], phys[qs[1]]
			if pa := partner[a]; pa >= 0 && pa != b {
				partner[pa] = -1
			}
			if pb := partner[b]; pb >= 0 && pb != a {
				partner[pb] = -1
			}
			partner[a], partner[b] = b, a
		}
		out.Ops = append(out.Ops, op)
	}
	// swapLayout appends a swap on the edge e and swaps the layout.
	swapLayout := func(e [2]int) {
		for _, p := range e {
			if q := partner[p]; q >= 0 {
				partner[q] = -1
			}
			partner[p] = -1
		}
		out.Ops = append(out.Ops, circuit.Op{Gate: circuit.Swap, Qubits: [3]int{e[0], e[1]}})
		la, lb := log[e[0]], log[e[1]]
		log[e[0]], log[e[1]] = lb, la
		if la >= 0 {
			phys[la] = e[1]
		}
		if lb >= 0 {
			phys[lb] = e[0]
		}
	}
	executable := func(u int) bool {
		qs := us[u].qubits
		return len(qs) < 2 || g.Adjacent(phys[qs[0]], phys[qs[1]])
	}
	var rng *rand.Rand
	if w.jitter > 0 {
		rng = rand.New(rand.NewPCG(w.seed, 0x5ab0))
	}
	decay := make([]float64, g.Nodes)
	swapsSinceGate := 0
	for len(front) > 0 {
		// Run every unit of the front that can run, and those it frees.
		progressed := false
		for k := 0; k < len(front); {
			u := front[k]
			if !executable(u) {
				k++
				continue
			}
			for _, i := range us[u].ops {
				emit(c.Ops[i])
			}
			progressed = true
			front = slices.Delete(front, k, k+1)
			for _, s := range succs[u] {
				if indeg[s]--; indeg[s] == 0 {
					pos, _ := slices.BinarySearch(front, s)
					front = slices.Insert(front, pos, s)
				}
			}
			k = 0 // a unit freed may come before k
			if qs := us[u].qubits; len(qs) == 2 && w.mirror > 0 {
				// The unit's mirror: a swap right after it joins its
				// block (at most one more two-qubit gate, not three);
				// take it when it brings the next units closer.
				e := [2]int{min(phys[qs[0]], phys[qs[1]]), max(phys[qs[0]], phys[qs[1]])}
				ext := lookaheadSet(us, front, succs, w.lookahead)
				if layoutCost(g, us, front, ext, phys, e, w)+w.mirror < layoutCost(g, us, front, ext, phys, [2]int{-1, -1}, w) {
					swapLayout(e)
				}
			}
		}
		if len(front) == 0 {
			break
		}
		if progressed {
			clear(decay)
			swapsSinceGate = 0
		}
		// Every unit of the front is on two qubits apart: insert one
		// swap.
		var e [2]int
		if swapsSinceGate > 2*g.Nodes {
			// No progress for long: bring the first unit's qubits closer.
			qs := us[front[0]].qubits
			e = closer(g, phys[qs[0]], phys[qs[1]])
		} else {
			e = bestSwap(g, us, front, succs, phys, decay, partner, w, rng)
		}
		swapLayout(e)
		decay[e[0]] += w.decay
		decay[e[1]] += w.decay
		swapsSinceGate++
		if swapsSinceGate > g.Nodes*g.Nodes*4 {
			return nil, nil, fmt.Errorf("mapping: routing did not converge")
		}
	}
	return out, phys, nil
}

// routeInOrder routes c gate by gate in circuit order (from initial,
// checked by RouteFrom): before each
// two-qubit gate whose qubits are apart it inserts swaps, each chosen
// among those that bring the gate's qubits closer by the smallest total
// distance of the next gates (a lookahead window).
func routeInOrder(c *circuit.Circuit, g *Graph, initial []int) (*circuit.Circuit, []int, error) {
	out := &circuit.Circuit{Qubits: g.Nodes, Cregs: c.Cregs, Defs: c.Defs}
	phys, log := layout(initial, g.Nodes)
	var twoQ []int // indices of the two-qubit ops
	for i, op := range c.Ops {
		switch n := len(op.QubitList()); {
		case n > 2:
			return nil, nil, fmt.Errorf("mapping: %s on %d qubits: decompose it first", op.Gate, n)
		case n == 2:
			twoQ = append(twoQ, i)
		}
	}
	next := 0 // the first entry of twoQ not yet routed
	for _, op := range c.Ops {
		qs := op.QubitList()
		if len(qs) == 2 {
			next++
			for steps := 0; !g.Adjacent(phys[qs[0]], phys[qs[1]]); steps++ {
				if steps > g.Nodes*g.Nodes {
					return nil, nil, fmt.Errorf("mapping: routing did not converge")
				}
				a, b := phys[qs[0]], phys[qs[1]]
				best, bestCost := [2]int{-1, -1}, 0
				for _, e := range g.Edges {
					if e[0] != a && e[1] != a && e[0] != b && e[1] != b {
						continue
					}
					swapped := func(p int) int {
						switch p {
						case e[0]:
							return e[1]
						case e[1]:
							return e[0]
						}
						return p
					}
					if g.Dist(swapped(a), swapped(b)) >= g.Dist(a, b) {
						continue
					}
					cost := 0
					for k := next; k < min(len(twoQ), next+lookahead); k++ {
						nq := c.Ops[twoQ[k]].QubitList()
						cost += g.Dist(swapped(phys[nq[0]]), swapped(phys[nq[1]]))
					}
					if best[0] < 0 || cost < bestCost {
						best, bestCost = e, cost
					}
				}
				out.Ops = append(out.Ops, circuit.Op{Gate: circuit.Swap, Qubits: [3]int{best[0], best[1]}})
				la, lb := log[best[0]], log[best[1]]
				log[best[0]], log[best[1]] = lb, la
				phys[la], phys[lb] = best[1], best[0]
			}
		}
		for j, q := range qs {
			op.Qubits[j] = phys[q]
		}
		out.Ops = append(out.Ops, op)
	}
	return out, phys, nil
}

// weights are the knobs of routeFront's swap choice (SABRE's): the
// lookahead set's weight against the front's, the penalty a swap adds to
// its qubits' next swaps (so that the swaps of a step spread over the
// qubits), the size of the lookahead set, and the bonus of a swap on the
// pair of the last two-qubit gate of both its qubits (it joins that
// gate's block, and resynthesis writes the two as one block of at most
// three two-qubit gates).
//
// jitter, when not 0, scales each swap's cost by a factor drawn from
// [1, 1+jitter) with a generator seeded by seed, so that trials of the
// same weights explore other routings.
type weights struct {
	extended, decay, absorb float64
	lookahead               int
	jitter                  float64
	seed                    uint64
	// mirror, when not 0, lets routeFront follow a two-qubit unit by a
	// swap on its pair when that lowers the layout's cost by more than
	// mirror (see layoutCost).
	mirror float64
}

// routeWeights are the weights RouteFrom tries, the first SABRE's usual
// ones; it keeps the routing of the least estimated cost (see
// estimateTwoQubit).
var routeWeights = [...]weights{
	{extended: 0.5, decay: 0.001, absorb: 0.5, lookahead: 20},
	{extended: 0.5, decay: 0.001, absorb: 1.5, lookahead: 20},
	{extended: 0.25, decay: 0.01, absorb: 1, lookahead: 10},
	{extended: 0.8, decay: 0.001, absorb: 1, lookahead: 40},
	{extended: 0.5, decay: 0.001, absorb: 0.5, lookahead: 20, mirror: 0.3},
	{extended: 0.5, decay: 0.001, absorb: 1, lookahead: 20, mirror: 0.1},
	{extended: 0.25, decay: 0.01, absorb: 1, lookahead: 10, mirror: 0.6},
	{extended: 0.8, decay: 0.001, absorb: 1, lookahead: 40, mirror: 1},
}

// routeFence reports whether op keeps its place among all the others in
// routing: an op that is not a unitary gate (measure, reset, barrier), or
// a conditioned one.
func routeFence(op circuit.Op) bool { return !op.Gate.Unitary() || op.Cond.Set() }

// bestSwap returns the edge whose swap gives the least SABRE cost: the
// mean distance of the front's units plus w.extended times that of the
// next (up to w.lookahead) two-qubit units after them, scaled by the
// swapped qubits' decay, less w.absorb for a swap that joins the block
// before it; only edges on a front unit's qubit count, ties go to the
// first edge.
func bestSwap(g *Graph, us []unit, front []int, succs [][]int, phys []int, decay []float64, partner []int, w weights, rng *rand.Rand) [2]int {
	ext := lookaheadSet(us, front, succs, w.lookahead)
	onFront := map[int]bool{}
	for _, u := range front {
		for _, q := range us[u].qubits {
			onFront[phys[q]] = true
		}
	}
	best, bestCost := [2]int{-1, -1}, math.Inf(1)
	for _, e := range g.Edges {
		if !onFront[e[0]] && !onFront[e[1]] {
			continue
		}
		h := max(1+decay[e[0]], 1+decay[e[1]]) * layoutCost(g, us, front, ext, phys, e, w)
		if partner[e[0]] == e[1] {
			h -= w.absorb
		}
		if rng != nil {
			h *= 1 + w.jitter*rng.Float64()
		}
		if h < bestCost {
			best, bestCost = e, h
		}
	}
	return best
}

// lookaheadSet returns the first n two-qubit units after front, breadth
// first along succs.
func lookaheadSet(us []unit, front []int, succs [][]int, n int) []int {
	var ext []int
	seen := map[int]bool{}
	queue := slices.Clone(front)
	for h := 0; h < len(queue) && len(ext) < n; h++ {
		for _, s := range succs[queue[h]] {
			if seen[s] {
				continue
			}
			seen[s] = true
			queue = append(queue, s)
			if len(us[s].qubits) == 2 && len(ext) < n {
				ext = append(ext, s)
			}
		}
	}
	return ext
}

// layoutCost is SABRE's cost of the layout phys after a swap on the edge
// swap ({-1, -1}: none): the mean distance of front's two-qubit units
// plus w.extended times that of ext's.
func layoutCost(g *Graph, us []unit, front, ext []int, phys []int, swap [2]int, w weights) float64 {
	moved := func(p int) int {
		switch p {
		case swap[0]:
			return swap[1]
		case swap[1]:
			return swap[0]
		}
		return p
	}
	mean := func(set []int) float64 {
		sum, n := 0, 0
		for _, u := range set {
			if qs := us[u].qubits; len(qs) == 2 {
				sum += g.Dist(moved(phys[qs[0]]), moved(phys[qs[1]]))
				n++
			}
		}
		if n == 0 {
			return 0
		}
		return float64(sum) / float64(n)
	}
	return mean(front) + w.extended*mean(ext)
}

// closer returns an edge at a whose swap brings a nearer to b.
func closer(g *Graph, a, b int) [2]int {
	for _, e := range g.Edges {
		switch {
		case e[0] == a && g.Dist(e[1], b) < g.Dist(a, b), e[1] == a && g.Dist(e[0], b) < g.Dist(a, b):
			return e
		}
	}
	return [2]int{a, b} // adjacent already (not reached)
}

// Decompose returns c with every gate on three qubits (ccx) written as
// gates on two qubits or one (qelib1.inc's six-CNOT ccx), conditions
// kept, ready for Route.
func Decompose(c *circuit.Circuit) *circuit.Circuit {
	out := &circuit.Circuit{Qubits: c.Qubits, Cregs: c.Cregs, Defs: c.Defs}
	for _, op := range c.Ops {
		if op.Gate != circuit.CCX {
			out.Ops = append(out.Ops, op)
			continue
		}
		a, b, t := op.Qubits[0], op.Qubits[1], op.Qubits[2]
		one := func(g circuit.Gate, q int) circuit.Op { return circuit.Op{Gate: g, Qubits: [3]int{q}, Cond: op.Cond} }
		cx := func(x, y int) circuit.Op { o := circuit.CNOTOp(x, y); o.Cond = op.Cond; return o }
		out.Ops = append(out.Ops,
			one(circuit.H, t), cx(b, t), one(circuit.Tdg, t), cx(a, t), one(circuit.T, t), cx(b, t),
			one(circuit.Tdg, t), cx(a, t), one(circuit.T, b), one(circuit.T, t), one(circuit.H, t),
			cx(a, b), one(circuit.T, a), one(circuit.Tdg, b), cx(a, b))
	}
	return out
}

// placementRounds is the number of forward-backward routing rounds that
// refine each starting placement, and placementStarts the number of
// starting placements (the identity, then random ones).
const (
	placementRounds = 3
	placementStarts = 8
)

// Place returns an initial mapping for c on g, SABRE-style: from the
// identity and from random placements (drawn from seed), it routes the
// circuit forward and then backward (its ops reversed), each pass
// starting where the last ended, and keeps the start of the forward pass
// whose routing has the least estimated two-qubit count after
// resynthesis (estimateTwoQubit), ties to the earlier. The result depends
// only on c, g and seed.
func Place(c *circuit.Circuit, g *Graph, seed uint64) []int {
	return PlaceCandidates(c, g, seed, 1)[0]
}

// PlaceCandidates returns up to n initial mappings for c on g: the
// starts of Place's forward passes, in order of their routings'
// estimated two-qubit count after resynthesis (estimateTwoQubit), ties to
// the earlier, the first Place's. A start whose routing has the estimate,
// two-qubit gates and ops of an earlier one is left out: it is most often
// the same routing under a symmetry of the circuit (a ring's rotations),
// which compiles to the same count. The result depends only on c, g,
// seed and n.
func PlaceCandidates(c *circuit.Circuit, g *Graph, seed uint64, n int) [][]int {
	reversed := &circuit.Circuit{Qubits: c.Qubits, Cregs: c.Cregs, Defs: c.Defs, Ops: slices.Clone(c.Ops)}
	slices.Reverse(reversed.Ops)
	type scored struct {
		m   []int
		key [3]int // the estimate, two-qubit gates and ops of its routing
	}
	route := func(from []int, cc *circuit.Circuit) ([3]int, []int) {
		out, final, err := routeBest(cc, g, from, placeWeights, nil, false)
		if err != nil || checkRoute(cc, g, from) != nil {
			return [3]int{math.MaxInt}, from
		}
		return [3]int{estimateTwoQubit(out), out.TwoQubitGates(), len(out.Ops)}, final
	}
	var cands []scored
	rng := rand.New(rand.NewPCG(seed, 0x9ace))
	for start := range placementStarts {
		m := Identity(g.Nodes)
		if start > 0 {
			m = rng.Perm(g.Nodes)
		}
		for range placementRounds {
			key, end := route(m, c)
			if !slices.ContainsFunc(cands, func(s scored) bool { return s.key == key }) {
				cands = append(cands, scored{slices.Clone(m), key})
			}
			_, m = route(end, reversed)
		}
	}
	slices.SortStableFunc(cands, func(a, b scored) int { return cmp.Compare(a.key[0], b.key[0]) })
	out := make([][]int, 0, n)
	for _, s := range cands[:min(n, len(cands))] {
		out = append(out, s.m)
	}
	return out
}

// placeWeights are the weights Place routes with.
var placeWeights = routeWeights[:1]
