package kernels

import (
	"context"
	"log/slog"
)

// Func is the Go signature of a kernel. args are the task's string
// arguments (after the kernel name), payload its input bytes. The returned
// bytes are the task's result; a non-nil error fails the task and reaches
// whoever waits on it. ctx is cancelled when the task is cancelled.
type Func func(ctx context.Context, rt Runtime, args []string, payload []byte) ([]byte, error)

// Kernel is one registered kernel.
type Kernel struct {
	Name string // unique name clients submit by
	Func Func
	// Retryable marks the kernel idempotent: a task lost with its worker
	// rank may be run again elsewhere.
	Retryable bool
	// Usage is a one-line synopsis of the arguments, e.g. "N DEPTH".
	Usage string
	// Doc is a one-line description.
	Doc string
}

// Task is a child task to start: a kernel name, its arguments and payload.
type Task struct {
	Kernel  string
	Args    []string
	Payload []byte
}

// Future stands for the results of one Submit (one result) or one Map
// (one result per task, in input order). It is a value handle, only valid
// with the Runtime that returned it, and cannot be sent to another task.
type Future struct {
	ID uint64 // assigned by the runtime; 0 is never a valid future
	N  int    // number of results
}

// Result is one completed child of a Future.
type Result struct {
	Index int    // position in the Map's input (0 for Submit)
	Value []byte // result bytes when Err is nil
	Err   error
}

// Runtime is the runtime as a running kernel sees it.
type Runtime interface {
	// Submit starts one child task.
	Submit(ctx context.Context, t Task) (Future, error)
	// Map starts one child task per element of ts.
	Map(ctx context.Context, ts []Task) (Future, error)
	// Wait blocks until every result of f is in and returns the values in
	// input order, or the first error among them (by index), not wrapped.
	// The calling kernel gives its slot back while it waits. Results
	// already taken by Next are still returned. f is then freed: Wait or
	// Next on it again returns ErrNoMoreResults.
	Wait(ctx context.Context, f Future) ([][]byte, error)
	// Next blocks until at least one result of f not yet taken is in and
	// returns all such results; a result is never returned twice. f is
	// freed with its last result: calling Wait or Next after that is an
	// error (ErrNoMoreResults). The calling kernel gives its slot back
	// while it waits.
	Next(ctx context.Context, f Future) ([]Result, error)
	// Cancel stops f's tasks and their descendants wherever they run,
	// and frees f: waiting on it returns ErrCancelled. Cancelling it
	// again, or after it was drained, does nothing. The full contract is
	// package kernels/futures's.
	Cancel(f Future) error
	// Cache is a store private to this worker rank, kept between tasks.
	Cache() *Cache
	// Logger logs records that are forwarded to the client, tagged with
	// the task, rank and host.
	Logger() *slog.Logger
	// Rank and Host name the worker rank running this task.
	Rank() int
	Host() string
}
