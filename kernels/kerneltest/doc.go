// Package kerneltest runs kernels in-process, without the launcher, so that
// kernel authors can test them with the race detector and no network.
//
// A Runtime built by New holds a kernel registry, a number of slots and a
// cache shared by every task it runs:
//
//	reg, err := kernels.NewRegistry(kernels.Builtin()...)
//	if err != nil { ... }
//	rt := kerneltest.New(reg, 2)
//	out, err := rt.Run(ctx, kernels.Task{Kernel: "fanout", Args: []string{"10", "2"}})
//	// out == []byte("100")
//
// Run starts a root task and returns its result once the task and every
// task it started are done. At most slots kernels run at a time. The tasks
// a kernel submits (Submit, Map) queue in submission order and each gets
// its own goroutine once it gets a slot. A kernel blocked in Wait or Next
// gives its slot back and takes one again before the call returns (ahead
// of queued tasks), so fork-join of any depth runs on one slot without
// deadlock, as in the launcher.
//
// The semantics follow the kernels.Runtime contract exactly (its futures
// live in a kernels/futures table, as the client's and the launcher's do,
// and pass the same contract test):
//
//   - Wait returns every value in input order, or the first error by
//     index, not wrapped; the future is then freed, so Wait or Next after
//     Wait returns kernels.ErrNoMoreResults.
//   - Next returns the results that are in and not yet taken, waiting
//     for at least one; a result is never returned twice, and results
//     that arrived before Next was called are kept for it. The future is
//     freed with its last result.
//   - Cancel cancels the contexts of the future's tasks and, through
//     them, of their descendants, and frees the future; Wait and Next on
//     a cancelled future return kernels.ErrCancelled.
//   - A future is valid only in the task that created it: any other task
//     gets kernels.ErrUnknownFuture.
//   - When a kernel returns, the tasks it started and did not wait for are
//     cancelled.
//
// Payloads and arguments are copied on Submit and Map, as the launcher's
// wire would, so a kernel cannot see a caller's later writes. A panicking
// kernel fails its task with an error carrying the panic value and stack.
// Rank is 0 and Host is "local"; Logger writes to the handler given with
// WithLogHandler (records are discarded by default), tagged with the task,
// kernel, rank and host. Stats reports how many kernels ran and the most
// that ever held a slot at once.
package kerneltest
