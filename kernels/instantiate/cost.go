package instantiate

import (
	"fmt"
	"math"
	"math/cmplx"
	"slices"

	"github.com/qlaunch/qlaunch/kernels/circuit"
)

// gateKind tells the workspace's gates apart.
type gateKind uint8

const (
	gateU3 gateKind = iota
	gateCX
)

type tgate struct {
	kind  gateKind
	a, b  int // qubit (U3), or control and target (CX)
	param int // index of θ for a U3
}

// Workspace evaluates the cost of one template against one target and its
// gradient, without allocating: it holds every prefix product of the
// template's gates. It is not safe for concurrent use; make one per
// goroutine.
//
// The cost minimised is C(x) = 1 − |Tr(U†V(x))|²/N², smooth everywhere; at
// a minimum near zero it is about twice the distance 1 − |Tr(U†V)|/N.
type Workspace struct {
	tmpl   Template
	qubits int
	dim    int
	gates  []tgate
	conjU  []complex128   // conj(U), which is (U†)ᵀ
	two    []complex128   // the template's two-qubit gate, nil for CX
	twoT   []complex128   // its transpose
	prefix [][]complex128 // prefix[k] = G_k ⋯ G_1, prefix[0] = I
	suffix []complex128   // (U† G_m ⋯ G_{k+1})ᵀ during the backward sweep
	dt     []complex128   // dTr/dx per parameter

	// The last point evaluated, so that Func and Grad at one x share work.
	lastX    []float64
	lastCost float64
	lastGrad []float64
	haveGrad bool
	evals    int
}

// NewWorkspace returns a workspace fitting tmpl to target.
func NewWorkspace(target circuit.Matrix, tmpl Template) (*Workspace, error) {
	if err := tmpl.Validate(); err != nil {
		return nil, err
	}
	dim := 1 << tmpl.Qubits
	if target.Dim != dim || len(target.Data) != dim*dim {
		return nil, fmt.Errorf("instantiate: target of dimension %d for a %d-qubit template: %w", target.Dim, tmpl.Qubits, ErrBadRequest)
	}
	w := &Workspace{tmpl: tmpl, qubits: tmpl.Qubits, dim: dim}
	p := 0
	for q := range tmpl.Qubits {
		w.gates = append(w.gates, tgate{kind: gateU3, a: q, param: p})
		p += 3
	}
	for _, b := range tmpl.Blocks {
		w.gates = append(w.gates, tgate{kind: gateCX, a: b[0], b: b[1]},
			tgate{kind: gateU3, a: b[0], param: p}, tgate{kind: gateU3, a: b[1], param: p + 3})
		p += 6
	}
	if tmpl.Gate != nil {
		if tmpl.Gate.Dim != 4 || len(tmpl.Gate.Data) != 16 {
			return nil, fmt.Errorf("instantiate: two-qubit gate of dimension %d: %w", tmpl.Gate.Dim, ErrBadTemplate)
		}
		w.two = slices.Clone(tmpl.Gate.Data)
		w.twoT = make([]complex128, 16)
		for i := range 4 {
			for j := range 4 {
				w.twoT[j*4+i] = w.two[i*4+j]
			}
		}
	}
	w.conjU = make([]complex128, dim*dim)
	for i, v := range target.Data {
		w.conjU[i] = cmplx.Conj(v)
	}
	w.prefix = make([][]complex128, len(w.gates)+1)
	for k := range w.prefix {
		w.prefix[k] = make([]complex128, dim*dim)
	}
	for i := range dim {
		w.prefix[0][i*dim+i] = 1
	}
	w.suffix = make([]complex128, dim*dim)
	n := tmpl.NumParams()
	w.dt = make([]complex128, n)
	w.lastX = make([]float64, n)
	w.lastGrad = make([]float64, n)
	w.lastCost = math.NaN()
	return w, nil
}

// Template returns the workspace's template.
func (w *Workspace) Template() Template { return w.tmpl }

// Evaluations returns how many times the cost was computed.
func (w *Workspace) Evaluations() int { return w.evals }

// forward fills the prefix products for x and returns Tr(U†V(x)).
func (w *Workspace) forward(x []float64) complex128 {
	for k, g := range w.gates {
		cur := w.prefix[k+1]
		copy(cur, w.prefix[k])
		switch g.kind {
		case gateU3:
			circuit.Apply1(cur, w.dim, w.qubits, g.a, circuit.U3Matrix(x[g.param], x[g.param+1], x[g.param+2]))
		case gateCX:
			if w.two != nil {
				circuit.ApplyMatrix(cur, w.dim, w.qubits, []int{g.a, g.b}, w.two)
			} else {
				circuit.ApplyOp(cur, w.dim, w.qubits, circuit.CNOTOp(g.a, g.b))
			}
		}
	}
	var tr complex128
	for i, v := range w.prefix[len(w.gates)] {
		tr += w.conjU[i] * v
	}
	return tr
}

// backward fills dt with dTr(U†V)/dx_j, given the prefixes of forward.
func (w *Workspace) backward(x []float64) {
	copy(w.suffix, w.conjU)
	dim := w.dim
	for k := len(w.gates) - 1; k >= 0; k-- {
		g := w.gates[k]
		if g.kind == gateCX {
			// (S·G)ᵀ = Gᵀ·Sᵀ; for CX, a symmetric permutation, Gᵀ = CX.
			if w.twoT != nil {
				circuit.ApplyMatrix(w.suffix, dim, w.qubits, []int{g.a, g.b}, w.twoT)
			} else {
				circuit.ApplyOp(w.suffix, dim, w.qubits, circuit.CNOTOp(g.a, g.b))
			}
			continue
		}
		// E[x][y] = Σ_rest Σ_a S[a,(rest,x)]·P[(rest,y),a], the 2×2
		// environment of the gate; Tr(S·dG·P) = Σ dg[x][y]·E[x][y].
		prev := w.prefix[k]
		stride := 1 << (w.qubits - 1 - g.a)
		var e [4]complex128
		for r0 := 0; r0 < dim; r0++ {
			if r0&stride != 0 {
				continue
			}
			s0 := w.suffix[r0*dim : (r0+1)*dim]
			s1 := w.suffix[(r0+stride)*dim : (r0+stride+1)*dim]
			p0 := prev[r0*dim : (r0+1)*dim]
			p1 := prev[(r0+stride)*dim : (r0+stride+1)*dim]
			var e00, e01, e10, e11 complex128
			for a := range dim {
				e00 += s0[a] * p0[a]
				e01 += s0[a] * p1[a]
				e10 += s1[a] * p0[a]
				e11 += s1[a] * p1[a]
			}
			e[0] += e00
			e[1] += e01
			e[2] += e10
			e[3] += e11
		}
		th, ph, la := x[g.param], x[g.param+1], x[g.param+2]
		s, c := math.Sincos(th / 2)
		eph, ela := circuit.ExpI(ph), circuit.ExpI(la)
		epl := eph * ela
		cc, ss := complex(c, 0), complex(s, 0)
		// dU3/dθ, dU3/dφ, dU3/dλ.
		w.dt[g.param] = e[0]*complex(-s/2, 0) + e[1]*(-ela*complex(c/2, 0)) +
			e[2]*(eph*complex(c/2, 0)) + e[3]*(-epl*complex(s/2, 0))
		w.dt[g.param+1] = e[2]*(1i*eph*ss) + e[3]*(1i*epl*cc)
		w.dt[g.param+2] = e[1]*(-1i*ela*ss) + e[3]*(1i*epl*cc)
		// Sᵀ ← (S·G)ᵀ = Gᵀ·Sᵀ.
		// U3 = [[c, −e^{iλ}s], [e^{iφ}s, e^{i(φ+λ)}c]], transposed.
		circuit.Apply1(w.suffix, dim, w.qubits, g.a, [4]complex128{cc, eph * ss, -ela * ss, epl * cc})
	}
}

func (w *Workspace) check(x []float64) {
	if len(x) != len(w.lastX) {
		panic(fmt.Sprintf("instantiate: %d parameters for a template of %d", len(x), len(w.lastX)))
	}
}

// Cost returns C(x) = 1 − |Tr(U†V(x))|²/N².
func (w *Workspace) Cost(x []float64) float64 {
	w.check(x)
	if !math.IsNaN(w.lastCost) && slices.Equal(x, w.lastX) {
		return w.lastCost
	}
	tr := w.forward(x)
	w.evals++
	n2 := float64(w.dim) * float64(w.dim)
	w.lastCost = 1 - (real(tr)*real(tr)+imag(tr)*imag(tr))/n2
	copy(w.lastX, x)
	w.haveGrad = false
	return w.lastCost
}

// CostGrad returns C(x) and stores its gradient in grad.
func (w *Workspace) CostGrad(x, grad []float64) float64 {
	w.check(x)
	if len(grad) != len(x) {
		panic("instantiate: gradient of the wrong length")
	}
	if w.haveGrad && slices.Equal(x, w.lastX) {
		copy(grad, w.lastGrad)
		return w.lastCost
	}
	tr := w.forward(x)
	w.evals++
	w.backward(x)
	n2 := float64(w.dim) * float64(w.dim)
	for j, d := range w.dt {
		// d(1 − |t|²/N²) = −2·Re(conj(t)·dt)/N².
		grad[j] = -2 * (real(tr)*real(d) + imag(tr)*imag(d)) / n2
	}
	w.lastCost = 1 - (real(tr)*real(tr)+imag(tr)*imag(tr))/n2
	copy(w.lastX, x)
	copy(w.lastGrad, grad)
	w.haveGrad = true
	return w.lastCost
}

// Distance returns 1 − |Tr(U†V(x))|/N, the Hilbert–Schmidt distance of
// the template at x from the target (circuit.Distance).
func (w *Workspace) Distance(x []float64) float64 {
	w.check(x)
	tr := w.forward(x)
	d := 1 - cmplx.Abs(tr)/float64(w.dim)
	if d < 0 {
		return 0
	}
	return d
}
