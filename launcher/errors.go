package launcher

import (
	"errors"
	"fmt"

	"github.com/qlaunch/qlaunch/kernels"
)

var (
	// ErrShutdown is returned by Run functions after a clean, requested
	// stop (a signal to the server, a shutdown message from above).
	ErrShutdown = errors.New("launcher: shut down")
	// ErrRankLost is wrapped by the TaskError of a task whose rank was lost.
	ErrRankLost = errors.New("launcher: rank lost")
	// ErrParentLost is returned by a manager or worker rank whose parent
	// connection broke without a shutdown message.
	ErrParentLost = errors.New("launcher: parent connection lost")
)

// TaskError is the error of a task that failed: its kernel returned an
// error (Message), or the rank running it was lost (Lost, wraps
// ErrRankLost), or it was cancelled (wraps kernels.ErrCancelled).
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

// Unwrap lets errors.Is find ErrRankLost or kernels.ErrCancelled.
func (e *TaskError) Unwrap() error {
	switch {
	case e.Lost:
		return ErrRankLost
	case e.Cancelled:
		return kernels.ErrCancelled
	}
	return nil
}
