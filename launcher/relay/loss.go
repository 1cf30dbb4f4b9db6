package relay

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/qlaunch/qlaunch/launcher/wire"
)

// This file is the relay's handling of lost peers: a client's tasks are
// cancelled, a lost child's tasks fail (or are placed again when
// retryable), a supervised child's loss waits for its process's exit
// status while its slots stay reserved for its replacement, and a tree
// left without worker slots fails tasks saying why.

// removePeer forgets peer p, whose connection ended with err (nil: closed).
func (c *Core) removePeer(p *peer, err error) {
	if c.peers[p.id] == nil {
		return
	}
	if c.awaitExit(p, err) {
		return
	}
	switch p.kind {
	case Client:
		c.log.Debug("client left", "peer", p.name)
		c.forget(p)
		c.sched.DropSource(p.id)
	case Child:
		p.cause, p.removed = lossCause(p, err), true
		switch {
		case p.draining && c.sched.Holding(p.id) == 0:
			c.log.Info("child drained and left", "peer", p.name)
			c.recordGone(p, wire.RankDrained, "drained")
		case !c.stopping:
			c.log.Warn("child lost", "peer", p.name, "cause", p.cause)
			c.recordGone(p, wire.RankLost, p.cause)
		}
		// Its tasks fail naming it (sched's FailTask.Lost): it is
		// forgotten once they are turned into results.
		c.sched.RemoveChild(p.id)
		c.apply()
		c.forget(p)
		for _, id := range c.statusIDs() {
			if s := c.status[id]; s.waiting[p.id] {
				delete(s.waiting, p.id)
				c.statusDone(id, s)
			}
		}
		c.reportJoin()
		c.leaveIfDrained()
	case Parent:
		c.forget(p)
		c.parent = nil
		c.sched.DropSource(p.id)
		if !c.stopping {
			c.log.Warn("parent lost", "peer", p.name, "err", err)
			c.apply()
			c.fail(ErrParentLost)
			return
		}
	}
	c.apply()
}

// recordGone notes that child p left the tree (lost or drained), for
// status replies.
func (c *Core) recordGone(p *peer, state wire.RankState, reason string) {
	c.lostRanks = append(c.lostRanks, wire.RankStatus{
		Rank: p.hello.Rank, Parent: c.cfg.Rank, Depth: 1, Role: p.role, Host: p.hello.Host,
		State: state, Since: c.now, Reason: reason, Alloc: c.childAlloc(p), Restarts: c.restarts[p.hello.Rank],
	})
	if len(c.lostRanks) > lostLimit {
		c.lostRanks = slices.Delete(c.lostRanks, 0, len(c.lostRanks)-lostLimit)
	}
}

// childAlloc returns the allocation child p runs in: what it said (a
// relay's join, its own status row), else, for a worker rank, this
// relay's own: a worker rank's parent is a rank of its job (package boot:
// only a job's top manager joins a running tree), and a worker's join
// does not carry its allocation.
func (c *Core) childAlloc(p *peer) string {
	if p.alloc == "" && p.role == "worker" {
		return c.cfg.Alloc
	}
	return p.alloc
}

// awaitExit holds back the loss of a supervised child whose connection
// broke until its process's exit status is known (RankExited: the
// supervisor reaps it, killing it first if it still runs), so the errors
// of its tasks name the signal or the exit status; it reports whether it
// did. Meanwhile the child gets no task and its slots are reserved, so
// that its tasks wait for its replacement rather than fail for want of a
// slot. The wait is bounded by ExitWait.
func (c *Core) awaitExit(p *peer, err error) bool {
	if p.kind != Child || c.stopping || p.draining || p.exit != "" || !p.supervised {
		return false
	}
	if p.dying {
		return true
	}
	p.dying, p.dyingErr = true, err
	c.do(Action{Type: Close, Peer: p.id, Reason: "awaiting its exit status"})
	rank := p.hello.Rank
	// A replacement lost before its join was read has no slots of its
	// own yet: the reservation made for it stands.
	if slots := max(c.reserved[rank], p.slots); slots > 0 {
		c.reserved[rank] = slots
	}
	p.ranks, p.slots = 0, 0
	c.updateReserve()
	c.sched.AddChild(p.id, 0)
	c.apply()
	// A rank that died closed its connection on its way out: its exit
	// status comes within milliseconds. One that lives on without its
	// connection (a cut link, a hang) is killed.
	if p.lostReason != "" {
		c.do(Action{Type: Kill, Rank: rank, Reason: lossCause(p, err)})
	} else {
		c.do(Action{Type: StartTimer, Peer: p.id, Timer: KillTimer, After: c.cfg.KillGrace})
	}
	c.do(Action{Type: StartTimer, Peer: p.id, Timer: ExitTimer, After: c.cfg.ExitWait})
	return true
}

// timeout handles a timer of awaitExit.
func (c *Core) timeout(id Peer, t Timer) {
	p := c.peers[id]
	if p == nil || !p.dying || p.exit != "" {
		return
	}
	switch t {
	case KillTimer:
		c.do(Action{Type: Kill, Rank: p.hello.Rank, Reason: lossCause(p, p.dyingErr) + ", so the runtime killed it"})
	case ExitTimer:
		c.log.Warn("no exit status from a lost worker rank", "peer", p.name, "waited", c.cfg.ExitWait)
		delete(c.reserved, p.hello.Rank)
		c.updateReserve()
		p.exit = lossCause(p, p.dyingErr)
		c.removePeer(p, p.dyingErr)
	}
}

// rankExited is the supervisor's news that the process of worker rank
// rank (slots slots) ended, how (cause), and whether it is being started
// again: its slots stay reserved for the replacement, or are given up.
func (c *Core) rankExited(rank, slots int, cause string, restart bool) {
	delete(c.starting, rank)
	if restart {
		c.restarts[rank]++
		c.reserved[rank] = slots
	} else {
		delete(c.reserved, rank)
	}
	// Before the rank's tasks are placed again: with its slots reserved
	// they wait for the replacement.
	c.updateReserve()
	var victim *peer
	for _, id := range c.order {
		p := c.peers[id]
		if p.kind == Child && p.hello.Rank == rank && (victim == nil || p.dying) {
			victim = p
		}
	}
	if victim != nil {
		victim.exit = cause
		c.removePeer(victim, errors.New(cause))
	} else {
		// Lost before (its connection, then the wait, ran out): the new
		// cause goes to status replies.
		for i := len(c.lostRanks) - 1; i >= 0; i-- {
			if c.lostRanks[i].Rank == rank {
				c.lostRanks[i].Reason, c.lostRanks[i].Restarts = cause, c.restarts[rank]
				break
			}
		}
	}
	c.updateReserve()
	c.reportJoin()
	c.apply()
}

// updateReserve tells the scheduler how many slots are expected back.
func (c *Core) updateReserve() {
	total := 0
	for _, s := range c.reserved {
		total += s
	}
	c.sched.Reserve(total)
}

// lossCause says why child p was lost: its process's exit (supervised
// ranks), the heartbeat silence, or its connection's error.
func lossCause(p *peer, err error) string {
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
// slot is left below this relay and none is coming back: it names the
// ranks this relay lost, latest first, with when and why.
func (c *Core) noSlotResult() wire.Result {
	r := wire.Result{Status: wire.ResultLost, Rank: c.cfg.Rank, Host: c.cfg.Host}
	const head = "no worker slot is left in the job to run this task"
	const tail = "start a new job, or allow more restarts ([workers] restarts, qlaunch manager --restarts)"
	back := make(map[int]bool)
	for _, p := range c.peers {
		if p.kind == Child && !p.dying && !p.removed {
			back[p.hello.Rank] = true
		}
	}
	var lost []wire.RankStatus // latest first, ranks that came back left out
	for _, l := range slices.Backward(c.lostRanks) {
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
