package launcher

import (
	"github.com/qlaunch/qlaunch/kernels"
	"github.com/qlaunch/qlaunch/launcher/relay"
)

var (
	// ErrShutdown is returned by Run functions after a clean, requested
	// stop (a signal to the server, a shutdown message from above).
	ErrShutdown = relay.ErrShutdown
	// ErrRankLost is wrapped by the TaskError of a task whose rank was lost.
	ErrRankLost = kernels.ErrRankLost
	// ErrParentLost is returned by a manager or worker rank whose parent
	// connection broke without a shutdown message.
	ErrParentLost = relay.ErrParentLost
	// ErrDrained is returned by a manager or worker rank that was drained
	// (qlaunch drain): it finished its tasks and left. It wraps
	// ErrShutdown, since it is a clean, requested stop.
	ErrDrained = relay.ErrDrained
)

// TaskError is the error of a task that failed: see kernels.TaskError.
type TaskError = kernels.TaskError
