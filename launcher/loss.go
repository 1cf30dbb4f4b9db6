package launcher

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/qlaunch/qlaunch/launcher/wire"
)

// A relay's handling of lost children that its own process started (see
// Supervisor) and of a tree left without worker slots. Everything here
// runs under the node's lock.

// killGrace is how long a relay waits for the exit status of a supervised
// child whose connection broke before it kills the child's process.
const killGrace = 100 * time.Millisecond

// awaitExit holds back the loss of a supervised child whose connection
// broke until its process's exit status is known (the supervisor reaps it,
// killing it first if it still runs), so the errors of its tasks name the
// signal or the exit status; it reports whether it did. Meanwhile the
// child gets no task and its slots are reserved, so that its tasks wait
// for its replacement rather than fail for want of a slot. The wait is
// bounded by exitWait.
func (n *node) awaitExit(p *nodePeer, err error) bool {
	sup := n.cfg.Supervisor
	if p.kind != peerChild || n.stopping || p.exit != "" || sup == nil || !sup.supervises(p.l.peer.Rank) {
		return false
	}
	if p.dying {
		return true
	}
	p.dying, p.dyingErr = true, err
	p.out.Stop()
	p.l.close()
	rank := p.l.peer.Rank
	n.reserved[rank] = p.slots
	p.ranks, p.slots = 0, 0
	n.updateReserve()
	n.sched.AddChild(p.id, 0)
	n.apply()
	// A rank that died closed its connection on its way out: its exit
	// status comes within milliseconds. One that lives on without its
	// connection (a cut link, a hang) is killed.
	why := lossCause(p, err)
	if p.lostReason != "" {
		sup.kill(rank, why)
	} else {
		time.AfterFunc(killGrace, func() {
			n.do(func() {
				if _, ok := n.peers[p.id]; ok && p.dying && p.exit == "" {
					sup.kill(rank, why+", so the runtime killed it")
				}
			})
		})
	}
	time.AfterFunc(exitWait, func() {
		n.do(func() {
			if _, ok := n.peers[p.id]; ok && p.dying && p.exit == "" {
				n.log.Warn("no exit status from a lost worker rank", "peer", p.l.String(), "waited", exitWait)
				delete(n.reserved, rank)
				n.updateReserve()
				p.exit = lossCause(p, err)
				n.fail(n.removePeer(p, err))
			}
		})
	})
	return true
}

// rankExited is the supervisor's news that the process of worker rank
// rank (slots slots) ended, how (cause), and whether it is being started
// again: its slots stay reserved for the replacement, or are given up.
func (n *node) rankExited(rank, slots int, cause string, restart bool) {
	if restart {
		n.reserved[rank] = slots
	} else {
		delete(n.reserved, rank)
	}
	// The scheduler learns of the replacement before the rank's tasks are
	// placed again (removePeer), so that retryable ones wait for it rather
	// than fail for want of a slot.
	n.updateReserve()
	var victim *nodePeer
	for _, p := range n.peers {
		if p.kind == peerChild && p.l.peer.Rank == rank && (victim == nil || p.dying) {
			victim = p
		}
	}
	if victim != nil {
		victim.exit = cause
		n.fail(n.removePeer(victim, errors.New(cause)))
	} else {
		// Lost before (its connection, then the wait, ran out): the new
		// cause goes to status replies.
		for i := len(n.lostRanks) - 1; i >= 0; i-- {
			if n.lostRanks[i].Rank == rank {
				n.lostRanks[i].Reason = cause
				break
			}
		}
	}
	n.updateReserve()
	n.reportJoin()
	n.apply()
}

// updateReserve tells the scheduler how many slots are expected back.
func (n *node) updateReserve() {
	total := 0
	for _, s := range n.reserved {
		total += s
	}
	n.sched.Reserve(total)
}

// lossCause says why child p was lost: its process's exit (supervised
// ranks), the heartbeat silence, or its connection's error.
func lossCause(p *nodePeer, err error) string {
	switch {
	case p.exit != "":
		return p.exit
	case p.lostReason != "":
		return p.lostReason
	case err != nil:
		return "connection lost: " + err.Error()
	}
	return "connection closed"
}

// noSlotResult is the result of a task that cannot run because no worker
// slot is left below this node and none is coming back: it names the
// ranks this node lost, latest first, with when and why.
func (n *node) noSlotResult() wire.Result {
	r := wire.Result{Status: wire.ResultLost, Rank: n.cfg.Rank, Host: n.cfg.Host}
	const head = "no worker slot is left in the job to run this task"
	const tail = "start a new job, or allow more restarts ([workers] restarts, qlaunch manager --restarts)"
	back := make(map[int]bool)
	for _, p := range n.peers {
		if p.kind == peerChild && !p.dying {
			back[p.l.peer.Rank] = true
		}
	}
	var lost []wire.RankStatus // latest first, ranks that came back left out
	for _, l := range slices.Backward(n.lostRanks) {
		if !back[l.Rank] && !slices.ContainsFunc(lost, func(o wire.RankStatus) bool { return o.Rank == l.Rank }) {
			lost = append(lost, l)
		}
	}
	if len(lost) == 0 {
		r.Message = head + ": no worker rank is connected; " + tail
		return r
	}
	at := func(l wire.RankStatus) string { return time.Unix(0, l.Since).Format("15:04:05.000") }
	r.Rank, r.Host = lost[0].Rank, lost[0].Host
	var b strings.Builder
	fmt.Fprintf(&b, "%s; it was lost at %s (%s)", head, at(lost[0]), lost[0].Reason)
	for i, l := range lost[1:min(len(lost), 6)] {
		if i == 0 {
			b.WriteString("; also lost:")
		}
		fmt.Fprintf(&b, " rank %d on %s at %s (%s)", l.Rank, l.Host, at(l), l.Reason)
	}
	b.WriteString(". ")
	b.WriteString(strings.ToUpper(tail[:1]) + tail[1:])
	r.Message = b.String()
	return r
}
