//go:build !mpi || !cgo

package rank

import (
	"fmt"
	"os"
)

// HaveMPI reports whether this binary was built with the MPI bootstrap.
const HaveMPI = false

// MPI stands for the MPI library in builds without it (no "mpi" tag, or
// CGO_ENABLED=0); StartMPI always fails.
type MPI struct{}

// StartMPI fails with ErrNoMPI: this build has no MPI.
func StartMPI() (*MPI, error) {
	return nil, fmt.Errorf("%w: rebuild with `go build -tags mpi` (Open MPI) or `-tags mpi,mpich` (MPICH), cgo enabled", ErrNoMPI)
}

// Rank is 0.
func (m *MPI) Rank() int { return 0 }

// Size is 1.
func (m *MPI) Size() int { return 1 }

// Library names no library.
func (m *MPI) Library() string { return "none" }

// Allgather fails with ErrNoMPI.
func (m *MPI) Allgather([]byte) ([]byte, error) { return nil, ErrNoMPI }

// Finalize does nothing.
func (m *MPI) Finalize() error { return nil }

// Abort exits with status code.
func (m *MPI) Abort(code int) { os.Exit(code) }
