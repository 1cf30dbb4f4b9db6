package slurm

import (
	"errors"
	"fmt"
)

// ErrTooManyHosts is wrapped by every error about a size limit: a range
// element or prefix group over MaxRange hosts (SLURM's own limits), an
// expression that Expand refuses because it would produce more than
// MaxExpand hosts, a Count that does not fit in an int, and a count list
// that expands to more than MaxCountNodes values.
var ErrTooManyHosts = errors.New("too many hosts")

// SyntaxError reports input that SLURM rejects, or that this package
// refuses: a hostlist expression or a task-count list. It names the
// offending part and where it starts.
type SyntaxError struct {
	Kind   string // what was parsed: "hostlist" or "count list"
	Expr   string // the whole input
	Offset int    // byte offset of Part in Expr
	Part   string // the offending token, range element or count
	Reason string // what is wrong with Part
	Err    error  // a sentinel such as ErrTooManyHosts, or nil
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("invalid %s %q: %q at offset %d: %s", e.Kind, clip(e.Expr), clip(e.Part), e.Offset, e.Reason)
}

// Unwrap returns the sentinel the error wraps, if any.
func (e *SyntaxError) Unwrap() error { return e.Err }

// BadInput marks the error as bad input (qlaunch exits with status 2).
func (e *SyntaxError) BadInput() bool { return true }

// clip shortens s for an error message so that a huge input does not make
// a huge message.
func clip(s string) string {
	const max = 200
	if len(s) <= max {
		return s
	}
	return s[:max] + "…"
}
