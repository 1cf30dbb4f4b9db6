package launcher

import (
	"fmt"
	"strings"

	"github.com/qlaunch/qlaunch/launcher/wire"
)

// This file is the server's check of what clients send, before anything
// is forwarded: a task record that a worker rank could not decode, or that
// names no valid kernel, fails at once with an error result to its client,
// and the rest of the batch goes on (the worker rank does the same for a
// record that still fails there, see worker.refuse).

// refuseTask checks the task record id | body from client p and reports
// whether it was refused, in which case p gets an error result for it.
// Called under the node's lock.
func (n *node) refuseTask(p *nodePeer, id uint64, body []byte) bool {
	err := wire.CheckTask(body)
	if err == nil {
		return false
	}
	n.log.Warn("malformed task record refused", "peer", p.l.String(), "id", id, "err", err)
	r := wire.Result{
		Status: wire.ResultError, Kernel: recordKernel(body), Rank: n.cfg.Rank, Host: n.cfg.Host,
		Message: fmt.Sprintf("task record refused by the server: %v (the client sent a body the runtime cannot decode: a client bug or a version mismatch)", err),
	}
	p.results = wire.AppendRecord(p.results, id, wire.AppendResult(nil, &r))
	n.counts.failed++
	n.mark(p)
	return true
}

// recordKernel returns the kernel name of a task body that may be
// malformed, made printable and short enough for an error message ("?"
// when there is none).
func recordKernel(body []byte) string {
	k := wire.TaskKernel(body)
	if len(k) > 64 {
		k = k[:64]
	}
	if len(k) == 0 {
		return "?"
	}
	return strings.ToValidUTF8(string(k), "?")
}
