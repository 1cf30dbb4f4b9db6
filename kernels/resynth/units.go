package resynth

import (
	"context"
	"math"
	"slices"

	"github.com/qlaunch/qlaunch/kernels/circuit"
	"github.com/qlaunch/qlaunch/kernels/instantiate"
)

// Unit fits: a circuit of ZZ and X rotations on a line (a transverse-field
// Ising chain) is, in the Hadamard basis, a circuit of free fermions, and
// every free-fermion circuit on 4 qubits is a product of six two-qubit
// units along the line (a triangle, or a brick of four layers; Kökcü et
// al., PRA 105, 032420, 2022), each of 2 CNOTs: 12 CNOTs whatever the
// number of Trotter steps, where 3-qubit blocks keep paying for every
// step. Neither the tree search nor a fit from random starts finds those
// 12 CNOTs: the Trotter angles (0.1) keep the block's unitary near the
// identity, where the units' exact parameters are narrow and
// ill-conditioned, and starts end on near misses about 1e-7 away. The
// fit therefore follows the block's angles: it fits the block with every
// rotation angle scaled by unitScaleFrom (a generic unitary, easy to
// reach from random starts), then walks the scale down to 1 in
// unitScaleSteps steps, each fit starting from the last (polished, see
// instantiate.Options.Polish), so that the parameters track the solution
// to the block's own unitary.
const (
	unitCNOTs      = 2  // CNOTs of one unit
	unitCount      = 6  // units of a 4-qubit free-fermion circuit
	unitScaleFrom  = 5  // the first fit's angles, times the block's
	unitScaleSteps = 40 // fits from there to the block's own angles
	unitStarts     = 16 // random starts of the first fit
	unitTrack      = 1e-8
	// unitMaxBlocks bounds the blocks one circuit fits, in circuit order.
	unitMaxBlocks = 16
)

// linePath returns the qubits of local, a 4-qubit circuit, in the order of
// the line its two-qubit gates lie on when they use exactly the three
// pairs of a line (0-1-2-3 in some order), else nil.
func linePath(local *circuit.Circuit) []int {
	if local.Qubits != 4 {
		return nil
	}
	var adj [4][]int
	seen := map[[2]int]bool{}
	for _, op := range local.Ops {
		qs := op.QubitList()
		if !op.Gate.Unitary() || len(qs) > 2 || op.Cond.Set() {
			return nil
		}
		if len(qs) < 2 {
			continue
		}
		p := [2]int{min(qs[0], qs[1]), max(qs[0], qs[1])}
		if !seen[p] {
			seen[p] = true
			adj[p[0]] = append(adj[p[0]], p[1])
			adj[p[1]] = append(adj[p[1]], p[0])
		}
	}
	if len(seen) != 3 {
		return nil
	}
	end := -1
	for q := range 4 {
		switch len(adj[q]) {
		case 1:
			if end < 0 {
				end = q
			}
		case 2:
		default:
			return nil
		}
	}
	if end < 0 {
		return nil
	}
	path := []int{end}
	for len(path) < 4 {
		last := path[len(path)-1]
		next := -1
		for _, q := range adj[last] {
			if !slices.Contains(path, q) {
				next = q
			}
		}
		if next < 0 {
			return nil
		}
		path = append(path, next)
	}
	return path
}

// unitShapes returns the templates of six units along path: the triangle
// from each end and the brick.
func unitShapes(path []int) [][]instantiate.Block {
	pair := func(i int) instantiate.Block {
		a, b := path[i], path[i+1]
		return instantiate.Block{min(a, b), max(a, b)}
	}
	var shapes [][]instantiate.Block
	for _, order := range [][]int{{0, 1, 2, 0, 1, 0}, {2, 1, 0, 2, 1, 2}, {0, 2, 1, 0, 2, 1}} {
		var blocks []instantiate.Block
		for _, i := range order {
			for range unitCNOTs {
				blocks = append(blocks, pair(i))
			}
		}
		shapes = append(shapes, blocks)
	}
	return shapes
}

// scaledUnitary returns the unitary of local with every gate parameter
// times s.
func scaledUnitary(local *circuit.Circuit, s float64) (circuit.Matrix, error) {
	c := &circuit.Circuit{Qubits: local.Qubits, Defs: local.Defs}
	for _, op := range local.Ops {
		for i := range op.Params {
			op.Params[i] *= s
		}
		c.Append(op)
	}
	return c.Unitary()
}

// fitUnits fits local, a 4-qubit block on a line with more than
// unitCount·unitCNOTs CNOTs, to six units along the line (see Unit fits):
// the first template whose walk reaches the threshold wins, and when the
// first template's first fit (from unitStarts starts) fails, no other is
// tried. It returns the circuit and its distance, or nil.
func fitUnits(ctx context.Context, local *circuit.Circuit, threshold float64, seed uint64) (*circuit.Circuit, float64, error) {
	path := linePath(local)
	if path == nil || local.CNOTs() <= unitCount*unitCNOTs {
		return nil, 0, nil
	}
	for si, blocks := range unitShapes(path) {
		tmpl := instantiate.Template{Qubits: 4, Blocks: blocks}
		var x []float64
		var dist float64
		for k := 0; k <= unitScaleSteps; k++ {
			s := unitScaleFrom + (1-unitScaleFrom)*float64(k)/unitScaleSteps
			u, err := scaledUnitary(local, s)
			if err != nil {
				return nil, 0, err
			}
			opts := instantiate.Options{Threshold: threshold, Starts: 1, Polish: true}
			if k == 0 {
				opts.Starts = unitStarts
			}
			r, err := instantiate.Instantiate(ctx, &instantiate.Request{Target: u, Template: tmpl,
				Seed: seed + uint64(si)<<32 + uint64(k), Initial: x, Options: opts})
			if err != nil {
				return nil, 0, err
			}
			if r.Distance >= unitTrack {
				if k == 0 {
					// Not near free fermions from any start: every
					// form would fail as the first did.
					return nil, 0, nil
				}
				x = nil
				break
			}
			x, dist = r.Params, r.Distance
		}
		if x != nil && dist < threshold {
			return tmpl.Circuit(x), dist, nil
		}
	}
	return nil, 0, nil
}

// FitUnits replaces every 4-qubit block of c (Partition's, at most
// unitMaxBlocks of them, in circuit order) whose two-qubit gates lie on a
// line and that has more than 12 CNOTs by six units along the line,
// 12 CNOTs, when their fit reaches threshold (see Unit fits). It returns
// the circuit, the number of blocks replaced, and the error bound of
// the replacements, (Σ √dᵢ)²; c itself when it replaces none. c's
// registers and defined gates stay.
func FitUnits(ctx context.Context, c *circuit.Circuit, threshold float64, seed uint64) (*circuit.Circuit, int, float64, error) {
	blocks := Partition(c, 4)
	replaced, tried := 0, 0
	var rootSum float64
	for i, b := range blocks {
		if b.Fence || len(b.Qubits) != 4 || b.CNOTs() <= unitCount*unitCNOTs || tried >= unitMaxBlocks {
			continue
		}
		local := b.Local(c.Defs)
		if linePath(local) == nil {
			continue
		}
		tried++
		fit, d, err := fitUnits(ctx, local, threshold, seed+uint64(i))
		if err != nil {
			return nil, 0, 0, err
		}
		if fit == nil {
			continue
		}
		blocks[i].Ops = globalOps(fit, b.Qubits)
		replaced++
		rootSum += math.Sqrt(d)
	}
	if replaced == 0 {
		return c, 0, 0, nil
	}
	out := Assemble(c.Qubits, blocks)
	out.Cregs, out.Defs = c.Cregs, c.Defs
	return out, replaced, rootSum * rootSum, nil
}
