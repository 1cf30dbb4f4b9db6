package rank

import (
	"errors"
	"fmt"
)

var (
	// ErrNoMPI means this binary was built without the MPI bootstrap.
	ErrNoMPI = errors.New("qlaunch was built without MPI")
	// ErrMPI marks a failed MPI call.
	ErrMPI = errors.New("mpi")
	// ErrLayout means the environment does not say how the ranks are spread
	// over the nodes (mpirun across nodes without SLURM, for example); the
	// MPI build finds out by Allgather.
	ErrLayout = errors.New("the launcher does not say how many ranks each node runs")
	// ErrInconsistent is wrapped by Detect's errors for variables that are
	// each well-formed but contradict each other (a rank beyond the size, a
	// node missing from the node list, task counts that do not add up).
	ErrInconsistent = errors.New("inconsistent environment")
)

// EnvError is a launcher variable that is missing, malformed or
// inconsistent with the others.
type EnvError struct {
	Launcher Launcher
	Var      string // the variable, e.g. "SLURM_PROCID"
	Value    string // its value ("" when unset)
	Err      error  // what is wrong
}

func (e *EnvError) Error() string {
	if e.Value == "" {
		return fmt.Sprintf("%s launcher: %s: %v", e.Launcher, e.Var, e.Err)
	}
	return fmt.Sprintf("%s launcher: %s=%q: %v", e.Launcher, e.Var, e.Value, e.Err)
}

func (e *EnvError) Unwrap() error { return e.Err }

// BadInput marks the error as bad input (exit status 2).
func (e *EnvError) BadInput() bool { return true }

// SizeMismatchError is MPI reporting another world size than the launcher
// started tasks: an MPI library that does not speak the launcher's process
// manager interface (MPICH under srun --mpi=pmix gives N singletons of size 1).
type SizeMismatchError struct {
	Launcher     Launcher
	LauncherSize int // tasks the launcher started
	MPISize      int // MPI_Comm_size(MPI_COMM_WORLD)
	Library      string
}

func (e *SizeMismatchError) Error() string {
	return fmt.Sprintf("MPI world size %d differs from the %d tasks the %s launcher started: %s does not speak this launcher's PMI "+
		"(Open MPI needs mpirun or srun --mpi=pmix; MPICH needs mpiexec or srun --mpi=pmi2)",
		e.MPISize, e.LauncherSize, e.Launcher, e.Library)
}

// CheckMPISize returns a *SizeMismatchError when the MPI world size differs
// from the number of tasks the launcher reports.
func CheckMPISize(info Info, mpiSize int, library string) error {
	if info.Size != mpiSize {
		return &SizeMismatchError{Launcher: info.Launcher, LauncherSize: info.Size, MPISize: mpiSize, Library: library}
	}
	return nil
}
