package kernels

import (
	"errors"
	"fmt"
)

var (
	// ErrNoMoreResults is returned by Next when every result was taken.
	ErrNoMoreResults = errors.New("kernels: every result of this future was already taken")
	// ErrCancelled is returned when waiting on a cancelled future.
	ErrCancelled = errors.New("kernels: task cancelled")
	// ErrUnknownFuture is returned for a future this runtime did not issue.
	ErrUnknownFuture = errors.New("kernels: unknown future")
	// ErrUnknownKernel is returned for a task naming a kernel that is not
	// in the registry.
	ErrUnknownKernel = errors.New("kernels: unknown kernel")
	// ErrRankLost is wrapped by the TaskError of a task whose rank was
	// lost.
	ErrRankLost = errors.New("kernels: rank lost")
)

// TaskError is the error of a task that failed in the runtime, as the
// client and a kernel waiting on its children see it: its kernel returned
// an error (Message), or the rank running it was lost (Lost, wraps
// ErrRankLost), or it was cancelled (Cancelled, wraps ErrCancelled).
type TaskError struct {
	Kernel    string
	Rank      int
	Host      string
	Message   string
	Lost      bool
	Cancelled bool
}

func (e *TaskError) Error() string {
	switch {
	case e.Cancelled && e.Message != "":
		return fmt.Sprintf("%s on rank %d (%s): %s", e.Kernel, e.Rank, e.Host, e.Message)
	case e.Cancelled:
		return "task cancelled"
	case e.Lost:
		return fmt.Sprintf("rank %d on %s lost: %s", e.Rank, e.Host, e.Message)
	}
	if e.Kernel == "" {
		return fmt.Sprintf("task failed on rank %d (%s): %s", e.Rank, e.Host, e.Message)
	}
	return fmt.Sprintf("%s failed on rank %d (%s): %s", e.Kernel, e.Rank, e.Host, e.Message)
}

// Unwrap lets errors.Is find ErrRankLost or ErrCancelled.
func (e *TaskError) Unwrap() error {
	switch {
	case e.Lost:
		return ErrRankLost
	case e.Cancelled:
		return ErrCancelled
	}
	return nil
}
