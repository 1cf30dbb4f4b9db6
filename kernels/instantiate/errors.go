package instantiate

import "errors"

var (
	// ErrBadTemplate is returned for a template whose qubits or blocks are
	// out of range.
	ErrBadTemplate = errors.New("instantiate: bad template")
	// ErrBadRequest is returned for a request that cannot be run: a target
	// that is not a unitary on the template's qubits, bad options or
	// parameters of the wrong length.
	ErrBadRequest = errors.New("instantiate: bad request")
)
