package kernels

import "errors"

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
)
