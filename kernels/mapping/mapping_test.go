package mapping

import (
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/qlaunch/qlaunch/kernels/circuit"
	"github.com/qlaunch/qlaunch/kernels/circuitgen"
)

func TestParseCoupling(t *testing.T) {
	file := filepath.Join(t.TempDir(), "edges")
	if err := os.WriteFile(file, []byte("# a triangle\n0-1\n1 2, 2-0\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		spec         string
		nodes, edges int
		dist03       int
	}{
		{"linear:5", 5, 4, 3},
		{"ring:6", 6, 6, 3},
		{"grid:2x3", 6, 7, 1},
		{"all:4", 4, 6, 1},
		{"heavy-hex:3x5", 18, 12 + 6, 3}, // bridges at columns 0, 4 below row 0 and 2 below row 1
		{"0-1,1-2,2-3", 4, 3, 3},
		{"3-2, 1-0, 2-1, 1-2", 4, 3, 3},
	} {
		g, err := ParseCoupling(tc.spec)
		if err != nil {
			t.Fatalf("%s: %v", tc.spec, err)
		}
		if g.Nodes != tc.nodes || len(g.Edges) != tc.edges || g.Dist(0, 3) != tc.dist03 {
			t.Errorf("%s: %d nodes, %d edges, distance(0, 3) %d", tc.spec, g.Nodes, len(g.Edges), g.Dist(0, 3))
		}
	}
	g, err := ParseCoupling(file)
	if err != nil || g.Nodes != 3 || len(g.Edges) != 3 {
		t.Errorf("file: %+v, %v", g, err)
	}
	hh, _ := ParseCoupling("heavy-hex:3x9")
	deg := make([]int, hh.Nodes)
	for _, e := range hh.Edges {
		deg[e[0]]++
		deg[e[1]]++
	}
	for q, d := range deg {
		if d < 1 || d > 3 {
			t.Errorf("heavy-hex:3x9: qubit %d has %d neighbours", q, d)
		}
	}
	for _, bad := range []string{"heavy-hex:2", "heavy-hex:0x3", "linear:1", "ring:x", "grid:0x3", "all:100", "0-1,2-3", "0-0", "nothing", "a-b", ""} {
		_, err := ParseCoupling(bad)
		var ce *CouplingError
		if !errors.As(err, &ce) {
			t.Errorf("%q: error %v, want a *CouplingError", bad, err)
		}
	}
}

// permutation returns the unitary that moves the state of qubit i to
// qubit perm[i], on n qubits.
func permutation(n int, perm []int) circuit.Matrix {
	m := circuit.NewMatrix(1 << n)
	for x := range 1 << n {
		y := 0
		for i := range n {
			if x&(1<<(n-1-i)) != 0 {
				y |= 1 << (n - 1 - perm[i])
			}
		}
		m.Set(y, x, 1)
	}
	return m
}

// TestRouteRespectsTheGraphAndThePermutation routes random circuits onto
// several graphs: every two-qubit gate of the result is on an edge, and
// the result equals the input followed by the final mapping's permutation.
func TestRouteRespectsTheGraphAndThePermutation(t *testing.T) {
	for _, spec := range []string{"linear:6", "ring:6", "grid:2x3", "0-1,0-2,0-3,3-4,4-5"} {
		g, err := ParseCoupling(spec)
		if err != nil {
			t.Fatal(err)
		}
		for seed := range uint64(4) {
			rng := rand.New(rand.NewPCG(seed, 3))
			c := circuit.New(6)
			for range 40 {
				p := rng.Perm(6)
				if rng.IntN(2) == 0 {
					c.Append(circuit.U3Op(p[0], rng.Float64()*6, rng.Float64()*6, rng.Float64()*6))
				} else {
					c.Append(circuit.CNOTOp(p[0], p[1]))
				}
			}
			initial := Identity(6)
			if seed%2 == 1 {
				initial = Place(c, g, seed)
			}
			out, final, err := RouteFrom(c, g, initial)
			if err != nil {
				t.Fatal(err)
			}
			for _, op := range out.Ops {
				if qs := op.QubitList(); len(qs) == 2 && !g.Adjacent(qs[0], qs[1]) {
					t.Fatalf("%s: %s on %v, not an edge", spec, op.Gate, qs)
				}
			}
			// out = P_final · U · P_initial⁻¹.
			u, _ := c.Unitary()
			v, _ := out.Unitary()
			want := circuit.Mul(permutation(6, final), circuit.Mul(u, permutation(6, initial).Dagger()))
			if d := circuit.Distance(want, v); d > 1e-12 {
				t.Errorf("%s seed %d: routed circuit at distance %g from the input and permutation %v", spec, seed, d, final)
			}
		}
	}
}

func TestDecomposeCCX(t *testing.T) {
	c := &circuit.Circuit{Qubits: 3, Ops: []circuit.Op{{Gate: circuit.CCX, Qubits: [3]int{2, 0, 1}}, circuit.CNOTOp(0, 1)}}
	d := Decompose(c)
	u, _ := c.Unitary()
	v, err := d.Unitary()
	if err != nil {
		t.Fatal(err)
	}
	if dist := circuit.Distance(u, v); dist > 1e-14 || d.CNOTs() != 7 || len(d.Ops) != 16 {
		t.Errorf("distance %g, %d CNOTs, %d ops", dist, d.CNOTs(), len(d.Ops))
	}
}

// TestPlaceFindsAnEmbedding places a chain of gates on qubits 0-3-1-4-2,
// a path, onto linear:5: no swap is needed from the placement found.
func TestPlaceFindsAnEmbedding(t *testing.T) {
	g, _ := ParseCoupling("linear:5")
	c := circuit.New(5)
	for range 3 {
		for _, e := range [][2]int{{0, 3}, {3, 1}, {1, 4}, {4, 2}} {
			c.Append(circuit.CNOTOp(e[0], e[1]))
		}
	}
	initial := Place(c, g, 1)
	out, _, err := RouteFrom(c, g, initial)
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Ops) != len(c.Ops) {
		t.Errorf("placement %v: %d swaps", initial, len(out.Ops)-len(c.Ops))
	}
	if _, _, err := RouteFrom(c, g, []int{0, 0, 1, 2, 3}); err == nil {
		t.Error("a mapping that is not a permutation was accepted")
	}
}

func FuzzParseCoupling(f *testing.F) {
	for _, s := range []string{"linear:5", "ring:3", "grid:2x3", "all:4", "0-1,1-2", "0 1\n1 2 # c", "3-2,2-1,1-0", "grid:1x1", "0-0", "linear:-1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, spec string) {
		if strings.ContainsAny(spec, "/.\\") {
			return // not a file name: only the text forms are fuzzed
		}
		g, err := ParseCoupling(spec)
		if err != nil {
			var ce *CouplingError
			if !errors.As(err, &ce) {
				t.Fatalf("error %v is not a *CouplingError", err)
			}
			return
		}
		if g.Nodes < 2 || g.Nodes > MaxNodes || len(g.Edges) == 0 {
			t.Fatalf("graph of %d nodes, %d edges", g.Nodes, len(g.Edges))
		}
		for _, e := range g.Edges {
			if e[0] < 0 || e[0] >= e[1] || e[1] >= g.Nodes || !g.Adjacent(e[0], e[1]) {
				t.Fatalf("edge %v", e)
			}
		}
		for a := range min(g.Nodes, 16) {
			for b := range min(g.Nodes, 16) {
				if g.Dist(a, b) != g.Dist(b, a) || g.Dist(a, b) < 0 || (g.Dist(a, b) == 0) != (a == b) {
					t.Fatalf("distance %d-%d: %d", a, b, g.Dist(a, b))
				}
			}
		}
	})
}

// TestRouteKeepsFencesInPlace: measurements, conditioned gates and
// barriers keep their order, and every op stays on its side of them
// (the router runs independent gates out of order, never across these).
func TestRouteKeepsFencesInPlace(t *testing.T) {
	c, err := circuit.ParseQASM(`OPENQASM 2.0;
include "qelib1.inc";
qreg q[5];
creg c[2];
cx q[0],q[4];
h q[1];
cx q[1],q[2];
measure q[1] -> c[0];
if(c==1) x q[2];
cx q[2],q[0];
cx q[3],q[4];
barrier q[0],q[1];
cx q[4],q[1];
measure q[0] -> c[1];
cx q[0],q[3];
`)
	if err != nil {
		t.Fatal(err)
	}
	g, err := ParseCoupling("linear:5")
	if err != nil {
		t.Fatal(err)
	}
	out, _, err := Route(c, g)
	if err != nil {
		t.Fatal(err)
	}
	// Before each fence: how many of the input's ops (swaps aside).
	fences := func(c *circuit.Circuit) (kinds []circuit.Op, before []int) {
		n := 0
		for _, op := range c.Ops {
			if !op.Gate.Unitary() || op.Cond.Set() {
				kinds = append(kinds, circuit.Op{Gate: op.Gate, Cond: op.Cond, Arg: op.Arg})
				before = append(before, n)
			}
			if op.Gate != circuit.Swap {
				n++
			}
		}
		return kinds, before
	}
	wantKinds, wantBefore := fences(c)
	gotKinds, gotBefore := fences(out)
	if !slices.Equal(gotKinds, wantKinds) || !slices.Equal(gotBefore, wantBefore) {
		t.Fatalf("fences %v after %v ops, want %v after %v\n%s", gotKinds, gotBefore, wantKinds, wantBefore, circuit.FormatQASM(out))
	}
	for _, op := range out.Ops {
		if qs := op.QubitList(); len(qs) == 2 && !g.Adjacent(qs[0], qs[1]) {
			t.Fatalf("%s on %v, not an edge", op.Gate, qs)
		}
	}
}

// TestEveryRouterCandidateIsTheInputAndThePermutation checks every
// routing RouteFrom chooses from (each weight's routeFront, routeInOrder,
// each beam search), not only the one it keeps: on benchmark circuits and
// random ones, on a line, a ring and a grid, every two-qubit gate is on an
// edge and the routing equals the input followed by its final mapping's
// permutation.
func TestEveryRouterCandidateIsTheInputAndThePermutation(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 5))
	random := circuit.New(6)
	for range 50 {
		p := rng.Perm(6)
		if rng.IntN(2) == 0 {
			random.Append(circuit.U3Op(p[0], rng.Float64()*6, rng.Float64()*6, rng.Float64()*6))
		} else {
			random.Append(circuit.CNOTOp(p[0], p[1]))
		}
	}
	inputs := map[string]*circuit.Circuit{"random:6:50": random}
	for _, name := range []string{"hubbard:3:1", "qaoa:6:1", "grover:3:1", "qft:5", "tfim:6:1"} {
		c, err := circuitgen.Named(name)
		if err != nil {
			t.Fatal(err)
		}
		inputs[name] = Decompose(c)
	}
	for _, spec := range []string{"linear:6", "ring:6", "grid:2x3"} {
		g, err := ParseCoupling(spec)
		if err != nil {
			t.Fatal(err)
		}
		for name, c := range inputs {
			initial := Place(c, g, 1)
			rs, err := routeCandidates(c, g, initial, routeTrials(), beamRoutes[:], true)
			if err != nil {
				t.Fatal(err)
			}
			// The swap networks route the circuits whose two-qubit
			// units are all diagonal (QAOA's, TFIM's, Hubbard's
			// h·ZZ·h and rx·ZZ·rx terms) on a line.
			want := len(routeTrials()) + 1 + len(beamRoutes)
			if spec == "linear:6" && (strings.HasPrefix(name, "qaoa") || strings.HasPrefix(name, "tfim") || strings.HasPrefix(name, "hubbard")) {
				want += len(swapNetworks)
			}
			if len(rs) != want {
				t.Errorf("%s on %s: %d candidates, want %d", name, spec, len(rs), want)
			}
			u, err := c.Unitary()
			if err != nil {
				t.Fatal(err)
			}
			for i, r := range rs {
				for _, op := range r.out.Ops {
					if qs := op.QubitList(); len(qs) == 2 && !g.Adjacent(qs[0], qs[1]) {
						t.Fatalf("%s on %s, candidate %d: %s on %v, not an edge", name, spec, i, op.Gate, qs)
					}
				}
				padded := u
				if c.Qubits < g.Nodes {
					wide := &circuit.Circuit{Qubits: g.Nodes, Ops: c.Ops}
					padded, _ = wide.Unitary()
				}
				v, err := r.out.Unitary()
				if err != nil {
					t.Fatal(err)
				}
				want := circuit.Mul(permutation(g.Nodes, r.final), circuit.Mul(padded, permutation(g.Nodes, initial).Dagger()))
				if d := circuit.Distance(want, v); d > 1e-10 {
					t.Errorf("%s on %s, candidate %d: at distance %g from the input and the permutation %v", name, spec, i, d, r.final)
				}
			}
		}
	}
}

// zzLayer returns the ZZ rotations cx·rz·cx on every pair of n qubits,
// a layer of commuting terms (an all-to-all QAOA or SK model's).
func zzLayer(n int) *circuit.Circuit {
	c := circuit.New(n)
	for a := range n {
		for b := a + 1; b < n; b++ {
			rz, err := circuit.NewOp(circuit.RZ, []int{b}, 0.1*float64(a+b))
			if err != nil {
				panic(err)
			}
			c.Append(circuit.CNOTOp(a, b), rz, circuit.CNOTOp(a, b))
		}
	}
	return c
}

// TestSwapNetworkRoutesDenseCommutingLayers: a layer of ZZ terms on every
// pair, on a line, costs fewer estimated two-qubit gates as a swap
// network (each swap joined to the term on its bond: at most three CNOTs
// per pair) than any SABRE routing, RouteFrom keeps the network's (or a
// cheaper one), and the network's routing is the input and its
// permutation.
func TestSwapNetworkRoutesDenseCommutingLayers(t *testing.T) {
	for _, n := range []int{6, 8} {
		c := zzLayer(n)
		g, err := ParseCoupling("linear:" + strconv.Itoa(n))
		if err != nil {
			t.Fatal(err)
		}
		sabre := math.MaxInt
		for _, w := range routeTrials() {
			out, _, err := routeFront(c, g, Identity(n), w)
			if err != nil {
				t.Fatal(err)
			}
			sabre = min(sabre, estimateTwoQubit(out))
		}
		network, netOut, netFinal := math.MaxInt, (*circuit.Circuit)(nil), []int(nil)
		for _, v := range swapNetworks {
			out, final, err := routeSwapNetwork(c, g, Identity(n), v)
			if err != nil {
				t.Fatal(err)
			}
			if e := estimateTwoQubit(out); e < network {
				network, netOut, netFinal = e, out, final
			}
		}
		if pairs := n * (n - 1) / 2; network >= sabre || network > 3*pairs {
			t.Errorf("K%d on a line: swap network %d, SABRE %d, want fewer and at most 3 per pair (%d)", n, network, sabre, 3*pairs)
		}
		out, _, err := RouteFrom(c, g, Identity(n))
		if err != nil {
			t.Fatal(err)
		}
		if e := estimateTwoQubit(out); e > network {
			t.Errorf("K%d: RouteFrom kept %d, the swap network gives %d", n, e, network)
		}
		if n > 6 {
			continue
		}
		u, _ := c.Unitary()
		v, _ := netOut.Unitary()
		if d := circuit.Distance(circuit.Mul(permutation(n, netFinal), u), v); d > 1e-10 {
			t.Errorf("K%d: swap network at distance %g from the input and the permutation %v", n, d, netFinal)
		}
	}
}

// TestBeamJoinsSwapsToBlocks: ZZ(0,1) then ZZ(0,2) on the line 0-1-2
// costs 5 when the swap that brings 0 to 2 follows ZZ(0,1) on its pair
// (the two one block of 3), not 7 (a swap of its own).
func TestBeamJoinsSwapsToBlocks(t *testing.T) {
	c := mustQASM(t, "qreg q[3];\ncx q[0],q[1];\nrz(0.3) q[1];\ncx q[0],q[1];\ncx q[0],q[2];\nrz(0.2) q[2];\ncx q[0],q[2];\n")
	g, err := ParseCoupling("linear:3")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range beamRoutes {
		out, _, err := routeBeam(c, g, Identity(3), p)
		if err != nil {
			t.Fatal(err)
		}
		if e := estimateTwoQubit(out); e != 5 {
			t.Errorf("beam %+v: estimate %d, want 5:\n%s", p, e, circuit.FormatQASM(out))
		}
	}
}

// TestPlaceCandidates: on a ring of ZZ terms (QAOA's cost layer) on a
// line, whose rotations and reflections route alike, the candidates are
// permutations, the first is Place's, none routes (with Place's
// weights) to the estimate, two-qubit gates and ops of another — the
// symmetric copies are left out — and they depend only on the circuit,
// the graph and the seed.
func TestPlaceCandidates(t *testing.T) {
	const n = 6
	g, _ := ParseCoupling("linear:6")
	c := circuit.New(n)
	for range 2 {
		for q := range n {
			a, b := q, (q+1)%n
			c.Append(circuit.CNOTOp(a, b), circuit.Op{Gate: circuit.RZ, Qubits: [3]int{b}, Params: [3]float64{0.4}}, circuit.CNOTOp(a, b))
		}
		for q := range n {
			c.Append(circuit.Op{Gate: circuit.RX, Qubits: [3]int{q}, Params: [3]float64{0.6}})
		}
	}
	cands := PlaceCandidates(c, g, 1, 8)
	if len(cands) < 2 {
		t.Fatalf("%d candidates, want several", len(cands))
	}
	if !slices.Equal(cands[0], Place(c, g, 1)) {
		t.Errorf("first candidate %v, Place %v", cands[0], Place(c, g, 1))
	}
	seen := map[[3]int][]int{}
	for _, m := range cands {
		if err := checkRoute(c, g, m); err != nil {
			t.Fatal(err)
		}
		out, _, err := routeBest(c, g, m, placeWeights, nil, false)
		if err != nil {
			t.Fatal(err)
		}
		key := [3]int{estimateTwoQubit(out), out.TwoQubitGates(), len(out.Ops)}
		if other, ok := seen[key]; ok {
			t.Errorf("%v and %v route alike (%v)", other, m, key)
		}
		seen[key] = m
	}
	if again := PlaceCandidates(c, g, 1, 8); !slices.EqualFunc(cands, again, slices.Equal) {
		t.Errorf("candidates %v, then %v", cands, again)
	}
	if few := PlaceCandidates(c, g, 1, 1); len(few) != 1 || !slices.Equal(few[0], cands[0]) {
		t.Errorf("one candidate: %v", few)
	}
}
