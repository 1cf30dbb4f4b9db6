package synth

import (
	"fmt"
	"reflect"
	"testing"

	"github.com/qlaunch/qlaunch/kernels/instantiate"
)

// ids returns the ids of ns.
func ids(ns []*node) []int {
	out := make([]int, len(ns))
	for i, n := range ns {
		out[i] = n.id
	}
	return out
}

// linePairs returns the pairs of a 3-qubit line; chain(n) is n CNOTs on
// its first pair, a template of n CNOTs for the tests' search nodes.
func linePairs() []instantiate.Block { return []instantiate.Block{{0, 1}, {1, 2}} }

func chain(cnots int) instantiate.Template {
	t := instantiate.Template{Qubits: 3}
	for range cnots {
		t = t.With(instantiate.Block{0, 1})
	}
	return t
}

func TestSearchNext(t *testing.T) {
	pairs := linePairs()
	type add struct {
		cnots int
		dist  float64
	}
	tests := []struct {
		name  string
		width int
		extra int
		adds  []add
		want  [][]int // ids expanded per step until next returns nil (adds only before the first)
	}{
		{
			// f = 20·d + cnots: 1: 3.0 … the ties go to the lower id; the
			// probe is the closest of the deepest layer (id 4).
			name: "width and probe", width: 2,
			adds: []add{{1, 0.1}, {1, 0.1}, {2, 0.2}, {3, 0.5}, {3, 0.4}},
			want: [][]int{{0, 1, 4}, {2, 3}},
		},
		{
			name: "probe among the best", width: 1,
			adds: []add{{2, 0.01}, {1, 0.3}},
			want: [][]int{{0}, {1}},
		},
		{
			// A success ends the search; with extra steps, only nodes of
			// at most D−2 CNOTs are expanded.
			name: "extra steps after a success", width: 1, extra: 2,
			adds: []add{{1, 0.2}, {2, 0.1}, {3, 1e-12}, {1, 0.3}},
			want: [][]int{{0}, {3}},
		},
		{
			name: "success ends it", width: 3,
			adds: []add{{1, 0.2}, {2, 1e-12}},
			want: [][]int{},
		},
		{
			// The probe at the budget (4) cannot be expanded: done.
			name: "budget spent", width: 3,
			adds: []add{{1, 0.2}, {4, 0.1}},
			want: [][]int{},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := &search{pairs: pairs, budget: 4, width: tc.width, extra: tc.extra, factor: 20, threshold: 1e-10}
			for _, a := range tc.adds {
				s.add(s.newNode(chain(a.cnots), instantiate.Result{Distance: a.dist}))
			}
			got := [][]int{}
			for range 10 {
				ns := s.next()
				if ns == nil {
					break
				}
				got = append(got, ids(ns))
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("expanded %v, want %v", got, tc.want)
			}
		})
	}
}

func TestSearchResult(t *testing.T) {
	s := &search{pairs: []instantiate.Block{{0, 1}}, budget: 8, width: 1, factor: 20, threshold: 1e-10}
	tmpl := instantiate.Template{Qubits: 2}
	s.add(s.newNode(tmpl.With(instantiate.Block{0, 1}), instantiate.Result{Distance: 0.3}))
	if got := s.result().id; got != 0 {
		t.Errorf("closest is %d, want 0", got)
	}
	three := tmpl.With(instantiate.Block{0, 1}).With(instantiate.Block{0, 1}).With(instantiate.Block{0, 1})
	two := tmpl.With(instantiate.Block{0, 1}).With(instantiate.Block{0, 1})
	s.add(s.newNode(three, instantiate.Result{Distance: 1e-14}),
		s.newNode(three, instantiate.Result{Distance: 1e-15}),
		s.newNode(two, instantiate.Result{Distance: 5e-11}),
		s.newNode(two, instantiate.Result{Distance: 5e-11}))
	// Fewest CNOTs first, then the distance, then the lower id.
	if got := s.result().id; got != 3 {
		t.Errorf("result is node %d, want 3", got)
	}
}

// TestToffoliStepsFillTheSlots checks the parallel structure of the
// toffoli synthesis: every step maps its candidates × starts at once, at
// least 36 independent tasks from the third step on, and two slots run
// two tasks at a time.
func TestToffoliStepsFillTheSlots(t *testing.T) {
	if testing.Short() {
		t.Skip("synthesises toffoli")
	}
	target, err := Target("toffoli")
	if err != nil {
		t.Fatal(err)
	}
	rt := newRuntime(t, 2)
	res := synthesize(t, rt, Request{Target: target, Seed: 1})
	if res.CNOTs != 6 || len(res.StepTasks) < 4 {
		t.Fatalf("%d CNOTs in %d steps, want 6 in at least 4", res.CNOTs, len(res.StepTasks))
	}
	starts := DefaultStarts(3)
	want := []int{starts, 3 * starts, 9 * starts} // 1 root, its 3 children, then 3 nodes × 3 pairs
	if !reflect.DeepEqual(res.StepTasks[:3], want) {
		t.Errorf("first steps map %v tasks, want %v", res.StepTasks[:3], want)
	}
	for i, n := range res.StepTasks[2:] {
		if n < 36 {
			t.Errorf("step %d maps %d tasks, want at least 36", i+2, n)
		}
	}
	// Every start of every step ran: the root, the synth kernel, and the tasks.
	total := int64(1)
	for _, n := range res.StepTasks {
		total += int64(n)
	}
	if st := rt.Stats(); st.Tasks != total || st.MaxRunning != 2 {
		t.Errorf("runtime ran %d tasks, %d at most at once; want %d, 2", st.Tasks, st.MaxRunning, total)
	}
}

func TestSynthesizeRandomTwoQubits(t *testing.T) {
	rt := newRuntime(t, 2)
	for u := range 20 {
		target, err := Target(fmt.Sprintf("random:2:%d", 100+u))
		if err != nil {
			t.Fatal(err)
		}
		res := synthesize(t, rt, Request{Target: target, Seed: uint64(u)})
		if res.CNOTs != 3 || res.Distance >= 1e-10 {
			t.Errorf("random:2:%d seed %d: %d CNOTs at distance %g, want 3 below 1e-10", 100+u, u, res.CNOTs, res.Distance)
		}
	}
}
