package instantiate

import (
	"context"
	"fmt"
	"math"

	"gonum.org/v1/gonum/optimize"
)

// DefaultThreshold is the distance below which an instantiation succeeds.
const DefaultThreshold = 1e-10

// DefaultStarts is the number of starting points an instantiation tries.
const DefaultStarts = 8

// DefaultMaxIterations bounds the L-BFGS iterations of one start.
const DefaultMaxIterations = 1000

// Options tune an instantiation. Zero values take the defaults.
type Options struct {
	// Threshold is the success distance (DefaultThreshold). A start that
	// reaches it stops the others; it goes on itself until the distance is
	// a thousand times smaller or stops improving, so that errors of many
	// instantiated blocks stay well inside the threshold when added up.
	Threshold float64 `json:"threshold,omitempty"`
	// Starts is the number of starting points (DefaultStarts).
	Starts int `json:"starts,omitempty"`
	// MaxIterations bounds the L-BFGS iterations of one start
	// (DefaultMaxIterations).
	MaxIterations int `json:"max_iterations,omitempty"`
	// Polish, when set, finishes a start that L-BFGS leaves above the
	// threshold but below polishBelow with Gauss–Newton steps on the
	// residual (see polish.go): on 4-qubit templates L-BFGS often creeps
	// to a halt short of an exact solution that is a few such steps away.
	Polish bool `json:"polish,omitempty"`
}

func (o Options) withDefaults() Options {
	if o.Threshold == 0 {
		o.Threshold = DefaultThreshold
	}
	if o.Starts == 0 {
		o.Starts = DefaultStarts
	}
	if o.MaxIterations == 0 {
		o.MaxIterations = DefaultMaxIterations
	}
	return o
}

// Validate checks the options (zero values are allowed: they take the
// defaults).
func (o Options) Validate() error {
	if math.IsNaN(o.Threshold) || o.Threshold < 0 || o.Threshold >= 1 {
		return fmt.Errorf("instantiate: threshold %v (0 to 1): %w", o.Threshold, ErrBadRequest)
	}
	if o.Starts < 0 || o.Starts > 1024 {
		return fmt.Errorf("instantiate: %d starts (0 to 1024): %w", o.Starts, ErrBadRequest)
	}
	if o.MaxIterations < 0 {
		return fmt.Errorf("instantiate: %d iterations: %w", o.MaxIterations, ErrBadRequest)
	}
	return nil
}

// Result is the outcome of an instantiation.
type Result struct {
	Params      []float64 `json:"params"`
	Distance    float64   `json:"distance"`
	Start       int       `json:"start"`       // the starting point that gave Params
	Iterations  int       `json:"iterations"`  // L-BFGS iterations of that start
	Evaluations int       `json:"evaluations"` // cost evaluations of that start
}

// Success reports whether r reached threshold.
func (r Result) Success(threshold float64) bool { return r.Distance < threshold }

// converger stops a start once the cost is far below the threshold, and
// otherwise when the cost stops improving.
type converger struct {
	target float64 // on the cost C ≈ 2·distance
	fc     optimize.FunctionConverge
}

func (c *converger) Init(dim int) { c.fc.Init(dim) }

func (c *converger) Converged(loc *optimize.Location) optimize.Status {
	if loc.F < c.target {
		return optimize.Success
	}
	return c.fc.Converged(loc)
}

// Run minimises the workspace's cost from x0 with L-BFGS (see minimize)
// and returns the best point found. x0 is not modified. It returns ctx's
// cause when ctx ends first.
func Run(ctx context.Context, w *Workspace, x0 []float64, opts Options) (Result, error) {
	opts = opts.withDefaults()
	if len(x0) != w.Template().NumParams() {
		return Result{}, fmt.Errorf("instantiate: %d starting parameters for a template of %d: %w",
			len(x0), w.Template().NumParams(), ErrBadRequest)
	}
	if w.Template().NumParams() == 0 {
		return Result{Params: []float64{}, Distance: w.Distance(x0)}, nil
	}
	w.evals = 0
	conv := &converger{
		target: 2 * opts.Threshold * 1e-3,
		fc:     optimize.FunctionConverge{Absolute: 1e-16, Relative: 1e-10, Iterations: 20},
	}
	x, iters, err := minimize(ctx, w, x0, opts.MaxIterations, 1e-15, conv)
	if err != nil {
		return Result{}, err
	}
	// A line search may fail near the floor of rounding errors: the best
	// point found is still good.
	d := w.Distance(x)
	if opts.Polish && d >= opts.Threshold && d < polishBelow {
		x, d = w.polish(ctx, x, d, opts.Threshold)
		if ctx.Err() != nil {
			return Result{}, context.Cause(ctx)
		}
	}
	return Result{
		Params:      x,
		Distance:    d,
		Iterations:  iters,
		Evaluations: w.Evaluations(),
	}, nil
}
