package synth

import (
	"cmp"
	"slices"

	"github.com/qlaunch/qlaunch/kernels/instantiate"
)

// node is one instantiated template of the search tree.
type node struct {
	tmpl   instantiate.Template
	params []float64
	dist   float64
	id     int // creation order: the tie-breaker that makes the search deterministic
}

// search is the state of one synthesis, with no I/O: Synthesize asks it
// which nodes to expand (next), instantiates their children, and hands
// them back (add). It is an A* search over templates, ranked by
// f = Factor·distance + CNOTs, that expands the Width best open nodes per
// step plus a probe, the best node of the deepest layer, so that the
// search also deepens by one CNOT per step where distances give little
// signal (generic unitaries). After the first success at D CNOTs it goes
// on for at most Extra steps over open nodes of at most D−2 CNOTs, the
// only ones that can lead to fewer. Before a success, Patience steps in
// a row without a closer circuit end it (when Patience is set).
type search struct {
	pairs     []instantiate.Block
	budget    int
	width     int
	extra     int
	factor    float64
	threshold float64
	patience  int // steps without a closer circuit that end the search before a success; 0: no bound

	open    []*node
	nextID  int
	success *node // fewest CNOTs, then lowest distance, then lowest id
	closest *node // lowest distance, then lowest id
	after   int   // steps run since the first success
	deepest int   // most CNOTs of a node added
	closer  bool  // a node added since the last step is closer (see patienceGain)
	stale   int   // steps in a row that added no closer node
}

// patienceGain is the relative fall of the closest distance that counts
// as progress for Request.Patience: a search creeping by less than 1 %
// a step is not going to reach the threshold within a few steps.
const patienceGain = 0.01

func (s *search) f(n *node) float64 { return s.factor*n.dist + float64(n.tmpl.CNOTs()) }

// byF orders nodes by f, ties to the lower id.
func (s *search) byF(a, b *node) int {
	if c := cmp.Compare(s.f(a), s.f(b)); c != 0 {
		return c
	}
	return cmp.Compare(a.id, b.id)
}

// byDist orders nodes by distance, ties to the lower id.
func byDist(a, b *node) int {
	if c := cmp.Compare(a.dist, b.dist); c != 0 {
		return c
	}
	return cmp.Compare(a.id, b.id)
}

// newNode returns a node with the next id.
func (s *search) newNode(t instantiate.Template, r instantiate.Result) *node {
	s.nextID++
	return &node{tmpl: t, params: r.Params, dist: r.Distance, id: s.nextID - 1}
}

// add records instantiated nodes (in the order of their creation).
func (s *search) add(ns ...*node) {
	for _, n := range ns {
		s.deepest = max(s.deepest, n.tmpl.CNOTs())
		if s.closest == nil || n.dist < s.closest.dist*(1-patienceGain) {
			s.closer = true
		}
		if s.closest == nil || byDist(n, s.closest) < 0 {
			s.closest = n
		}
		if n.dist < s.threshold {
			if s.success == nil || n.tmpl.CNOTs() < s.success.tmpl.CNOTs() ||
				n.tmpl.CNOTs() == s.success.tmpl.CNOTs() && byDist(n, s.success) < 0 {
				s.success = n
			}
			continue // a success is never expanded
		}
		if n.tmpl.CNOTs() < s.budget && len(s.pairs) > 0 {
			s.open = append(s.open, n)
		}
	}
}

// next removes from the open list and returns the nodes to expand at the
// next step, or nil when the search is over.
func (s *search) next() []*node {
	if s.success != nil {
		if s.after >= s.extra {
			return nil
		}
		s.after++
		limit := s.success.tmpl.CNOTs() - 2
		s.open = slices.DeleteFunc(s.open, func(n *node) bool { return n.tmpl.CNOTs() > limit })
		return s.take(nil)
	}
	if len(s.open) == 0 || s.deepest >= s.budget {
		return nil // nothing to expand, or the probe has spent the budget
	}
	if s.closer {
		s.stale = 0
	} else {
		s.stale++
	}
	s.closer = false
	if s.patience > 0 && s.stale >= s.patience {
		return nil // no closer circuit for patience steps
	}
	// The probe: the closest node of the deepest open layer.
	var probe *node
	for _, n := range s.open {
		if probe == nil || n.tmpl.CNOTs() > probe.tmpl.CNOTs() ||
			n.tmpl.CNOTs() == probe.tmpl.CNOTs() && byDist(n, probe) < 0 {
			probe = n
		}
	}
	return s.take(probe)
}

// take removes the width best open nodes by f, and probe (when not nil
// and not among them), and returns them ordered by id.
func (s *search) take(probe *node) []*node {
	slices.SortFunc(s.open, s.byF)
	k := min(s.width, len(s.open))
	out := slices.Clone(s.open[:k])
	rest := s.open[k:]
	if probe != nil && !slices.Contains(out, probe) {
		out = append(out, probe)
		rest = slices.DeleteFunc(rest, func(n *node) bool { return n == probe })
	}
	s.open = slices.Clone(rest)
	slices.SortFunc(out, func(a, b *node) int { return cmp.Compare(a.id, b.id) })
	return out
}

// result returns the node the search ends with: the success with fewest
// CNOTs, else the closest node.
func (s *search) result() *node {
	if s.success != nil {
		return s.success
	}
	return s.closest
}
