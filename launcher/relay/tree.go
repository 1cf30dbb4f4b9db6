package relay

import (
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/qlaunch/qlaunch/launcher/wire"
)

// This file is the relay's view of its tree: the subtree it reports up
// (wire.Join), readiness, status requests walking down and replies coming
// up, and draining.

// subtree returns the ranks and slots of this relay's subtree.
func (c *Core) subtree() wire.Join {
	j := wire.Join{Ranks: 1}
	for _, p := range c.peers {
		if p.kind == Child {
			j.Ranks += p.ranks
			if !p.draining {
				j.Slots += p.slots
			}
		}
	}
	// Ranks being started again keep their place: the parent holds tasks
	// for their slots rather than failing them.
	for _, slots := range c.reserved {
		j.Ranks++
		j.Slots += slots
	}
	return j
}

// reportJoin tells the parent about a changed subtree, or, at the server,
// checks readiness.
func (c *Core) reportJoin() {
	if c.cfg.Server {
		c.checkReady()
		return
	}
	j := c.subtree()
	j.Alloc = c.cfg.Alloc
	if c.parent == nil || j == c.lastJoin {
		return
	}
	c.lastJoin = j
	c.sendCtrl(c.parent, wire.KindJoin, wire.AppendJoin(nil, &j))
	if !c.ready && c.cfg.DialsParent && j.Slots > 0 {
		// A manager that dialled its parent (the bootstrap's) is ready once
		// its first subtree with slots goes up; a manual-mode manager says
		// so when it listens.
		c.ready = true
		c.do(Action{Type: Ready})
	}
}

// checkReady makes the server ready once the ranks it expects joined.
func (c *Core) checkReady() {
	if !c.cfg.Server || c.ready {
		return
	}
	j := c.subtree()
	if c.cfg.ExpectRanks > 0 && j.Ranks < c.cfg.ExpectRanks {
		return
	}
	if c.cfg.ExpectRanks == 0 {
		// Every dialled child must have joined with worker slots below it.
		withSlots := 0
		for _, p := range c.peers {
			if p.kind == Child && p.slots > 0 {
				withSlots++
			}
		}
		if withSlots < c.cfg.DialledChildren {
			return
		}
	}
	c.ready = true
	c.do(Action{Type: WriteAddress})
	c.do(Action{Type: Ready})
}

// Ready reports whether the relay is ready (see checkReady, reportJoin).
func (c *Core) Ready() bool { return c.ready }

func (c *Core) ownStatus() wire.RankStatus {
	parent := -1
	if c.parent != nil {
		parent = c.parent.hello.Rank
	}
	return wire.RankStatus{
		Rank: c.cfg.Rank, Parent: parent, Role: c.cfg.Role(), Host: c.cfg.Host,
		Queued: c.sched.Pending(), Done: c.done, Alloc: c.cfg.Alloc,
	}
}

// statusRows returns this relay's own rows of a status reply: itself, then
// the children it lost (minus those connected again).
func (c *Core) statusRows() []wire.RankStatus {
	rows := []wire.RankStatus{c.ownStatus()}
	if len(c.lostRanks) == 0 {
		return rows
	}
	back := make(map[int]bool)
	for _, p := range c.peers {
		if p.kind == Child {
			back[p.hello.Rank] = true
		}
	}
	for _, r := range c.lostRanks {
		if !back[r.Rank] {
			rows = append(rows, r)
		}
	}
	return rows
}

func (c *Core) onStatus(p *peer, b []byte) error {
	var s wire.Status
	if err := wire.DecodeStatus(b, &s); err != nil {
		return err
	}
	if s.Reply {
		req := c.status[s.ID]
		if req == nil || !req.waiting[p.id] {
			return nil
		}
		delete(req.waiting, p.id)
		for _, r := range s.Ranks {
			if r.Depth == 0 && r.State == wire.RankJoined {
				// The child itself: how long it had been silent when asked,
				// and how often this relay's Supervisor restarted it; its
				// allocation is kept for its row once it has left.
				r.Silent = req.silent[p.id]
				r.Restarts = max(r.Restarts, c.restarts[r.Rank])
				if r.Alloc != "" {
					p.alloc = r.Alloc
				}
			}
			r.Depth++
			req.ranks = append(req.ranks, r)
		}
		c.statusDone(s.ID, req)
		return nil
	}
	c.startStatus(&statusReq{src: p.id, srcID: s.ID})
	return nil
}

// startStatus asks every child for its subtree's status; req is answered
// once they all replied (or were lost).
func (c *Core) startStatus(req *statusReq) {
	c.nextStatus++
	id := c.nextStatus
	req.waiting, req.ranks = make(map[Peer]bool), c.statusRows()
	req.silent = make(map[Peer]time.Duration)
	for _, pid := range c.order {
		ch := c.peers[pid]
		if ch.kind == Child {
			req.waiting[ch.id] = true
			req.silent[ch.id] = time.Duration(c.now - ch.lastSeen)
			c.sendCtrl(ch, wire.KindStatus, wire.AppendStatus(nil, &wire.Status{ID: id}))
		}
	}
	c.status[id] = req
	c.statusDone(id, req)
}

// statusIDs returns the ids of the status requests in flight, ascending.
func (c *Core) statusIDs() []uint64 { return slices.Sorted(maps.Keys(c.status)) }

func (c *Core) statusDone(id uint64, req *statusReq) {
	if len(req.waiting) > 0 {
		return
	}
	delete(c.status, id)
	if c.cfg.Server {
		req.ranks = WithExpected(req.ranks, c.cfg.Plan)
	}
	if req.src == 0 {
		c.do(Action{Type: StatusReply, Token: req.token, Ranks: req.ranks})
		return
	}
	src := c.peers[req.src]
	if src == nil {
		return
	}
	reply := wire.Status{ID: req.srcID, Reply: true, Ranks: req.ranks}
	c.sendCtrl(src, wire.KindStatus, wire.AppendStatus(nil, &reply))
}

// WithExpected completes the server's status rows with the ranks of the
// plan that are not in the tree: a rank whose parent is there never
// connected; one below a lost rank went with it.
func WithExpected(rows []wire.RankStatus, plan []PlannedRank) []wire.RankStatus {
	if len(plan) == 0 {
		return rows
	}
	joined := make(map[int]bool, len(rows))
	lost := make(map[int]wire.RankStatus)
	drained := make(map[int]bool)
	for _, r := range rows {
		switch r.State {
		case wire.RankJoined:
			joined[r.Rank] = true
		case wire.RankDrained:
			drained[r.Rank] = true
		case wire.RankLost:
			if old, ok := lost[r.Rank]; !ok || r.Since > old.Since {
				lost[r.Rank] = r
			}
		}
	}
	// Drop lost rows of ranks that joined again, and all but the latest
	// loss of a rank.
	out := rows[:0:0]
	for _, r := range rows {
		if r.State == wire.RankLost && (joined[r.Rank] || lost[r.Rank].Since != r.Since) {
			continue
		}
		out = append(out, r)
	}
	byRank := make(map[int]*PlannedRank, len(plan))
	for i := range plan {
		byRank[plan[i].Rank] = &plan[i]
	}
	depth := func(r int) int {
		d := 0
		for p := byRank[r]; p != nil && p.Parent >= 0 && d <= len(plan); p = byRank[p.Parent] {
			d++
		}
		return d
	}
	for _, p := range plan {
		if joined[p.Rank] || drained[p.Rank] {
			continue
		}
		if _, ok := lost[p.Rank]; ok {
			continue
		}
		row := wire.RankStatus{Rank: p.Rank, Parent: p.Parent, Depth: depth(p.Rank), Role: p.Role, Host: p.Host,
			State: wire.RankMissing, Reason: "never connected"}
		// The nearest ancestor not in the tree, if any, says why.
		for a, hops := byRank[p.Parent], 0; a != nil && hops <= len(plan); a, hops = byRank[a.Parent], hops+1 {
			if drained[a.Rank] {
				row.State, row.Reason = wire.RankDrained, fmt.Sprintf("drained with rank %d on %s", a.Rank, a.Host)
				break
			}
			if joined[a.Rank] {
				break
			}
			if l, ok := lost[a.Rank]; ok {
				row.State, row.Since = wire.RankLost, l.Since
				row.Reason = fmt.Sprintf("lost with rank %d on %s (%s)", a.Rank, a.Host, l.Reason)
				break
			}
			row.Reason = fmt.Sprintf("never connected: its parent rank %d on %s has not joined", p.Parent, byRank[p.Parent].Host)
		}
		out = append(out, row)
	}
	return out
}

// onDrain drains the listed ranks below this relay: a listed child is told
// to drain and gets no new task; a relay child that is not listed gets the
// list, for the ranks below it. A listed manager (this relay) drains all
// its children and leaves once they have left.
func (c *Core) onDrain(ranks []int) {
	want := make(map[int]bool, len(ranks))
	for _, r := range ranks {
		want[r] = true
	}
	if want[c.cfg.Rank] && !c.cfg.Server && !c.draining {
		c.log.Info("draining: no new task; leaving once the ranks below have left")
		c.draining = true
	}
	for _, id := range c.order {
		p := c.peers[id]
		if p.kind != Child || p.dying {
			continue
		}
		switch {
		case want[p.hello.Rank] || c.draining:
			c.drainChild(p)
		case p.role != "worker":
			c.sendCtrl(p, wire.KindDrain, wire.AppendDrain(nil, &wire.Drain{Ranks: ranks}))
		}
	}
	c.reportJoin()
	c.leaveIfDrained()
}

// selfDrain drains this manager on its own initiative: its parent learns
// of it first, so that it sends no more tasks.
func (c *Core) selfDrain() {
	if c.cfg.Server {
		return
	}
	if c.parent != nil {
		c.sendCtrl(c.parent, wire.KindDrain, wire.AppendDrain(nil, &wire.Drain{Ranks: []int{c.cfg.Rank}}))
	}
	c.onDrain([]int{c.cfg.Rank})
}

// drainChild tells child p to drain: it gets no new task, its slots no
// longer count, and its leave is clean once it holds no task.
func (c *Core) drainChild(p *peer) {
	if p.draining {
		return
	}
	p.draining = true
	c.sched.Drain(p.id)
	if p.supervised {
		c.do(Action{Type: Leaving, Rank: p.hello.Rank})
	}
	c.log.Info("draining child", "peer", p.name)
	c.sendCtrl(p, wire.KindDrain, wire.AppendDrain(nil, &wire.Drain{Ranks: []int{p.hello.Rank}}))
}

// leaveIfDrained stops a drained manager once its last child left.
func (c *Core) leaveIfDrained() {
	if c.draining && !c.stopping && c.children() == 0 && len(c.reserved) == 0 {
		c.log.Info("drained: every rank below left; leaving")
		c.fail(ErrDrained)
	}
}
