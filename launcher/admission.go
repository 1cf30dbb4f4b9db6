package launcher

import (
	"sync/atomic"

	"github.com/qlaunch/qlaunch/launcher/relay"
)

// This file is a relay's admission control: it bounds the tasks in flight
// through the node (submitted and not yet answered) and their body bytes,
// per client (LinkConfig.MaxClientTasks, MaxClientBytes) and in all
// (MaxQueuedTasks, MaxQueuedBytes). A client whose frame takes a bound is
// paused: its reader stops reading once that frame is handled, so the
// client's socket fills and its submissions wait (TCP's flow control is
// the back-pressure), instead of the node's memory growing with the map.
// It is read again once the loads are back under 7/8 of every bound (the
// gap saves a pause per batch). A paused client's silence is not held
// against it. Only clients are paused: a child's frames carry results,
// which are what frees room. The sched core counts the loads
// (relay.Core.Loads); this file only decides and waits.
//
// A bound is passed by at most one frame (MaxBatch, 1 MiB of records)
// per client, read before the pause.

// admission is a node's set of paused clients, under the node's lock.
type admission struct {
	paused map[relay.Peer]*nodePeer
}

// peerAdmission is one client's side of admission control. paused is set
// under the node's lock and read by the client's reader; resume wakes it.
type peerAdmission struct {
	paused atomic.Bool
	resume chan struct{}
}

// overBounds reports whether client p's load or the node's total is at
// num/den of a bound or more.
func (n *node) overBounds(p *nodePeer, num, den int64) bool {
	c := n.cfg.Link
	src, tot := n.core.Loads(p.id)
	return int64(src.Tasks)*den >= int64(c.MaxClientTasks)*num ||
		src.Bytes*den >= c.MaxClientBytes*num ||
		int64(tot.Tasks)*den >= int64(c.MaxQueuedTasks)*num ||
		tot.Bytes*den >= c.MaxQueuedBytes*num
}

// admit pauses client p, after one of its frames was handled, when a
// bound is reached. Called under the node's lock.
func (n *node) admit(p *nodePeer) {
	if p.kind != relay.Client || p.admit.paused.Load() || !n.overBounds(p, 1, 1) {
		return
	}
	if n.admission.paused == nil {
		n.admission.paused = make(map[relay.Peer]*nodePeer)
	}
	if p.admit.resume == nil {
		p.admit.resume = make(chan struct{}, 1)
	}
	select { // a wake-up left from the last pause
	case <-p.admit.resume:
	default:
	}
	n.admission.paused[p.id] = p
	p.admit.paused.Store(true)
	src, tot := n.core.Loads(p.id)
	n.log.Debug("client paused: tasks in flight at a bound", "peer", p.l.String(),
		"client_tasks", src.Tasks, "client_bytes", src.Bytes, "tasks", tot.Tasks, "bytes", tot.Bytes)
}

// readmit reads again the paused clients that are back under the bounds,
// and wakes those that left. Called under the node's lock after every
// event that may have answered tasks.
func (n *node) readmit() {
	for id, p := range n.admission.paused {
		if _, ok := n.peers[id]; ok && n.overBounds(p, 7, 8) {
			continue
		}
		delete(n.admission.paused, id)
		p.admit.paused.Store(false)
		select {
		case p.admit.resume <- struct{}{}:
		default:
		}
	}
}

// waitAdmission blocks client p's reader while p is paused, until it is
// read again, it is removed, or the node stops.
func (n *node) waitAdmission(p *nodePeer) {
	if !p.admit.paused.Load() {
		return
	}
	select {
	case <-p.admit.resume:
	case <-p.outDone:
	case <-n.quit:
	}
	p.l.seen() // it was not read meanwhile: its silence does not count
}
