package launcher

import "github.com/qlaunch/qlaunch/launcher/relay"

// The server checks what clients send before anything is forwarded (see
// relay.Core: a task record that a worker rank could not decode, or that
// names no valid kernel, fails at once with an error result to its
// client); the worker rank does the same for a record that still fails
// there (see worker.refuse).

// recordKernel returns the kernel name of a task body that may be
// malformed, made printable and short enough for an error message.
func recordKernel(body []byte) string { return relay.RecordKernel(body) }
