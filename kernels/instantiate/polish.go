package instantiate

import (
	"context"
	"math/cmplx"
	"slices"

	"gonum.org/v1/gonum/mat"
)

// Polishing (Options.Polish): L-BFGS on the cost C(x) creeps near some
// minima — on 4-qubit templates the starts of a basin that holds an
// exact solution often stop between 1e-8 and 1e-4 — where Gauss–Newton
// steps on the residual r(x, φ) = V(x)·e^{−iφ} − U, whose zero is the
// solution, converge in a few steps. A start that ends at a distance
// below polishBelow but above the threshold takes up to polishSteps
// steps: each solves J·δ = r in the least-squares sense (J by central
// differences, the pseudo-inverse of its singular value decomposition)
// and takes the largest of δ, δ/2, … (polishHalvings) that lowers the
// distance, and the polish stops at the first step that does not.
const (
	polishBelow    = 1e-3
	polishSteps    = 40
	polishHalvings = 8
	polishDelta    = 1e-6  // the central differences' step
	polishRank     = 1e-10 // singular values below this fraction of the largest are dropped
)

// unitary returns V(x), the template's unitary at x, in w.prefix's last
// entry, valid until the next evaluation (the cached cost and gradient
// stay valid: they are of lastX).
func (w *Workspace) unitary(x []float64) []complex128 {
	w.forward(x)
	return w.prefix[len(w.gates)]
}

// polish runs Gauss–Newton steps from x (see polishBelow) and returns the
// point reached and its distance, never farther than x.
func (w *Workspace) polish(ctx context.Context, x []float64, dist, threshold float64) ([]float64, float64) {
	n, m := len(x), w.dim*w.dim
	x = slices.Clone(x)
	res := make([]float64, 2*m)
	jac := mat.NewDense(2*m, n+1, nil)
	xp := make([]float64, n)
	vplus := make([]complex128, m)
	delta := make([]float64, n+1)
	next := make([]float64, n)
	var svd mat.SVD
	var us, vs mat.Dense
	for step := 0; step < polishSteps && dist >= threshold*1e-3 && ctx.Err() == nil; step++ {
		v := w.unitary(x)
		var tr complex128
		for i, c := range w.conjU {
			tr += c * v[i]
		}
		if tr == 0 {
			break
		}
		ph := cmplx.Conj(tr / complex(cmplx.Abs(tr), 0)) // e^{−iφ}
		for i, c := range w.conjU {
			r := v[i]*ph - cmplx.Conj(c)
			res[2*i], res[2*i+1] = real(r), imag(r)
			g := -1i * v[i] * ph // ∂r/∂φ
			jac.Set(2*i, n, real(g))
			jac.Set(2*i+1, n, imag(g))
		}
		for k := range n {
			copy(xp, x)
			xp[k] += polishDelta
			copy(vplus, w.unitary(xp))
			xp[k] -= 2 * polishDelta
			vminus := w.unitary(xp)
			for i := range m {
				g := (vplus[i] - vminus[i]) * ph / complex(2*polishDelta, 0)
				jac.Set(2*i, k, real(g))
				jac.Set(2*i+1, k, imag(g))
			}
		}
		if !svd.Factorize(jac, mat.SVDThin) {
			break
		}
		vals := svd.Values(nil)
		svd.UTo(&us)
		svd.VTo(&vs)
		clear(delta)
		for s, sv := range vals {
			if sv <= vals[0]*polishRank {
				continue
			}
			var c float64
			for i := range 2 * m {
				c += us.At(i, s) * res[i]
			}
			c /= sv
			for k := range n + 1 {
				delta[k] += c * vs.At(k, s)
			}
		}
		better := false
		for h, scale := 0, 1.0; h < polishHalvings; h, scale = h+1, scale/2 {
			for k := range n {
				next[k] = x[k] - scale*delta[k]
			}
			if d := w.Distance(next); d < dist {
				copy(x, next)
				dist, better = d, true
				break
			}
		}
		if !better {
			break
		}
	}
	return x, dist
}
