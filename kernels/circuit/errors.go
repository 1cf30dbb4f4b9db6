package circuit

import (
	"errors"
	"fmt"
)

var (
	// ErrTooLarge is returned for a unitary on more than MaxUnitaryQubits
	// qubits, or a circuit beyond MaxQubits.
	ErrTooLarge = errors.New("circuit: too many qubits")
	// ErrNotUnitary is returned for a matrix that is not a unitary on whole
	// qubits.
	ErrNotUnitary = errors.New("circuit: not a unitary")
	// ErrBadOp is returned for an operation that does not fit its gate or
	// its circuit (wrong qubits or parameters).
	ErrBadOp = errors.New("circuit: bad operation")
	// ErrUnsupported is wrapped by a *SyntaxError for OpenQASM that is valid
	// but outside the supported subset (gate definitions, measure, reset,
	// if, opaque, other include files, unknown gates).
	ErrUnsupported = errors.New("unsupported")
)

// SyntaxError reports OpenQASM input that cannot be read, with the line and
// column (both from 1, columns counted in bytes) where the problem starts.
type SyntaxError struct {
	Line, Col int
	Msg       string
	Err       error // ErrUnsupported for valid OpenQASM outside the subset, else nil
}

func (e *SyntaxError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("qasm:%d:%d: %s: %v", e.Line, e.Col, e.Msg, e.Err)
	}
	return fmt.Sprintf("qasm:%d:%d: %s", e.Line, e.Col, e.Msg)
}

func (e *SyntaxError) Unwrap() error { return e.Err }

// BadInput marks the error as the input's fault (exit status 2 in the
// command-line tools).
func (e *SyntaxError) BadInput() bool { return true }
