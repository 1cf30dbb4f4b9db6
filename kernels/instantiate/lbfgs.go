package instantiate

import (
	"context"
	"math"
	"slices"

	"gonum.org/v1/gonum/floats"
	"gonum.org/v1/gonum/optimize"
)

// lbfgsStore is the number of past steps L-BFGS keeps (gonum's default).
const lbfgsStore = 15

// minimize minimises the workspace's cost from x0 with gonum's L-BFGS
// directions and bisection line search (what optimize.Minimize with
// optimize.LBFGS{} runs), driven in this goroutine. optimize.Minimize
// runs the method, a distributor, a worker and a statistics combiner as
// goroutines that hand every evaluation over channels: for a cost of a
// few microseconds that costs as much as the cost itself, and on an idle
// second core it bounces the goroutines between cores. The result is the
// best location of a major iteration (the starting point included), the
// number of major iterations, and ctx's cause when ctx ended it.
//
// It stops when a major iteration reaches the converger, the gradient's
// largest component falls below gradTol, maxIter major iterations have
// run, or the line search fails (no progress within rounding errors, a
// direction that does not descend): the best point is still returned.
func minimize(ctx context.Context, w *Workspace, x0 []float64, maxIter int, gradTol float64, conv optimize.Converger) (x []float64, iters int, err error) {
	n := len(x0)
	loc := &optimize.Location{X: slices.Clone(x0), Gradient: make([]float64, n)}
	loc.F = w.CostGrad(loc.X, loc.Gradient)
	best := slices.Clone(loc.X)
	bestF := loc.F
	conv.Init(n)
	converged := func() bool {
		if math.IsInf(loc.F, -1) || floats.Norm(loc.Gradient, math.Inf(1)) < gradTol {
			return true
		}
		return conv.Converged(loc) != optimize.NotTerminated
	}
	if converged() {
		return best, 0, nil
	}
	dirs := &optimize.LBFGS{Store: lbfgsStore}
	var ls optimize.Bisection
	dir := make([]float64, n)
	start := make([]float64, n) // the point the line search starts from
	evaluate := func(op optimize.Operation) {
		switch {
		case op&optimize.GradEvaluation != 0:
			loc.F = w.CostGrad(loc.X, loc.Gradient)
		case op&optimize.FuncEvaluation != 0:
			loc.F = w.Cost(loc.X)
		}
	}
	for iters < maxIter {
		if ctx.Err() != nil {
			return nil, iters, context.Cause(ctx)
		}
		copy(start, loc.X)
		var step float64
		if iters == 0 {
			step = dirs.InitDirection(loc, dir)
		} else {
			step = dirs.NextDirection(loc, dir)
		}
		projGrad := floats.Dot(loc.Gradient, dir)
		if projGrad >= 0 {
			break // not a descent direction
		}
		op := ls.Init(loc.F, projGrad, step)
		floats.AddScaledTo(loc.X, start, step, dir)
		if floats.Equal(start, loc.X) {
			break // no progress within rounding errors
		}
		valid := optimize.NoOperation // the fields of loc valid at loc.X
		for {
			evaluate(op)
			valid |= op
			f, g := math.NaN(), math.NaN()
			if valid&optimize.FuncEvaluation != 0 {
				f = loc.F
			}
			if valid&optimize.GradEvaluation != 0 {
				g = floats.Dot(loc.Gradient, dir)
			}
			next, nextStep, lsErr := ls.Iterate(f, g)
			if lsErr != nil {
				return best, iters, nil
			}
			if next == optimize.MajorIteration {
				if valid&optimize.GradEvaluation == 0 {
					evaluate(optimize.GradEvaluation)
				}
				break
			}
			if nextStep != step {
				floats.AddScaledTo(loc.X, start, nextStep, dir)
				if floats.Equal(start, loc.X) {
					return best, iters, nil
				}
				step = nextStep
				valid = optimize.NoOperation
			}
			op = next
		}
		iters++
		if loc.F < bestF {
			copy(best, loc.X)
			bestF = loc.F
		}
		if converged() {
			break
		}
	}
	return best, iters, nil
}
