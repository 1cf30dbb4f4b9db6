package launcher

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/qlaunch/qlaunch/launcher/wire"
)

// This file holds what a node tells observers: the ranks it lost, the
// ranks the server expected from the plan and has not got, and the
// counters a Monitor reads.

// PlannedRank is one rank of the job's plan, as the server expects it.
type PlannedRank struct {
	Rank   int
	Parent int // -1 for the server
	Host   string
	Role   string // "server", "manager", "worker" (or roles joined by "+")
}

// lostLimit bounds the records of lost children a node keeps.
const lostLimit = 1024

// recordLost notes that child p was lost, with why, for status replies.
func (n *node) recordLost(p *nodePeer, err error) {
	reason := lossCause(p, err)
	role, _ := splitRole(p.l.peer.Role)
	n.lostRanks = append(n.lostRanks, wire.RankStatus{
		Rank: p.l.peer.Rank, Parent: n.cfg.Rank, Depth: 1, Role: role, Host: p.l.peer.Host,
		State: wire.RankLost, Since: time.Now().UnixNano(), Reason: reason,
	})
	if len(n.lostRanks) > lostLimit {
		n.lostRanks = slices.Delete(n.lostRanks, 0, len(n.lostRanks)-lostLimit)
	}
}

// recordDrained notes that child p drained and left cleanly, for status
// replies.
func (n *node) recordDrained(p *nodePeer) {
	role, _ := splitRole(p.l.peer.Role)
	n.lostRanks = append(n.lostRanks, wire.RankStatus{
		Rank: p.l.peer.Rank, Parent: n.cfg.Rank, Depth: 1, Role: role, Host: p.l.peer.Host,
		State: wire.RankDrained, Since: time.Now().UnixNano(), Reason: "drained",
	})
	if len(n.lostRanks) > lostLimit {
		n.lostRanks = slices.Delete(n.lostRanks, 0, len(n.lostRanks)-lostLimit)
	}
}

// statusRows returns this node's own rows of a status reply: itself, then
// the children it lost (minus those connected again).
func (n *node) statusRows() []wire.RankStatus {
	rows := []wire.RankStatus{n.ownStatus()}
	if len(n.lostRanks) == 0 {
		return rows
	}
	back := make(map[int]bool)
	for _, p := range n.peers {
		if p.kind == peerChild {
			back[p.l.peer.Rank] = true
		}
	}
	for _, r := range n.lostRanks {
		if !back[r.Rank] {
			rows = append(rows, r)
		}
	}
	return rows
}

// withExpected completes the server's status rows with the ranks of the
// plan that are not in the tree: a rank whose parent is there never
// connected; one below a lost rank went with it.
func withExpected(rows []wire.RankStatus, plan []PlannedRank) []wire.RankStatus {
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

// ErrNotRunning is returned by a Monitor whose node is not running.
var ErrNotRunning = errors.New("launcher: not running")

// Monitor lets an observer in the same process (the metrics endpoint) read
// a running server's counters and ask its tree's status. Pass one in
// ServerConfig.Monitor; it is safe for concurrent use.
type Monitor struct {
	mu sync.Mutex
	n  *node
}

// NewMonitor returns a Monitor to pass to a server.
func NewMonitor() *Monitor { return &Monitor{} }

func (m *Monitor) attach(n *node) {
	m.mu.Lock()
	m.n = n
	m.mu.Unlock()
}

func (m *Monitor) detach(n *node) {
	m.mu.Lock()
	if m.n == n {
		m.n = nil
	}
	m.mu.Unlock()
}

func (m *Monitor) node() *node {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.n
}

// Stats are a server's counters since it started.
type Stats struct {
	Submitted uint64 // tasks clients submitted
	Completed uint64 // results sent to clients: the kernel returned
	Failed    uint64 // results sent to clients: the kernel failed, or its rank was lost
	Cancelled uint64 // results sent to clients: the task was cancelled
	Retried   uint64 // retryable tasks placed again after their rank was lost
	Restarts  uint64 // worker ranks this process started again after they died
	Held      int    // tasks waiting for a free slot below the server
	InFlight  int    // tasks placed below the server and not finished
	Ranks     int    // ranks in the tree, the server included
	Slots     int    // worker slots in the tree
	Clients   int    // clients connected
	// Wire sums the traffic of every connection of the server (clients
	// and children, closed ones included).
	Wire wire.Stats
}

// observeCounts are the counters a node keeps for Stats; guarded by the
// node's mutex.
type observeCounts struct {
	submitted, completed, failed, cancelled uint64
	closedWire                              wire.Stats
}

// countResult counts a result going to a client.
func (c *observeCounts) countResult(body []byte) {
	switch {
	case len(body) > 0 && body[0] == wire.ResultOK:
		c.completed++
	case len(body) > 0 && body[0] == wire.ResultCancelled:
		c.cancelled++
	default:
		c.failed++
	}
}

func addWire(a *wire.Stats, b wire.Stats) {
	a.FramesIn += b.FramesIn
	a.FramesOut += b.FramesOut
	a.PayloadIn += b.PayloadIn
	a.PayloadOut += b.PayloadOut
	a.WireIn += b.WireIn
	a.WireOut += b.WireOut
	a.CompressedIn += b.CompressedIn
	a.CompressedOut += b.CompressedOut
}

// Stats returns the server's counters; ErrNotRunning when it is not
// running.
func (m *Monitor) Stats() (Stats, error) {
	n := m.node()
	if n == nil {
		return Stats{}, ErrNotRunning
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	j := n.subtree()
	s := Stats{
		Submitted: n.counts.submitted, Completed: n.counts.completed, Failed: n.counts.failed,
		Cancelled: n.counts.cancelled, Retried: n.sched.Retries(), Held: n.sched.Held(),
		InFlight: n.sched.Pending() - n.sched.Held(), Ranks: j.Ranks, Slots: j.Slots,
		Wire: n.counts.closedWire,
	}
	if n.cfg.Supervisor != nil {
		s.Restarts = n.cfg.Supervisor.Restarts()
	}
	for _, p := range n.peers {
		if p.kind == peerClient {
			s.Clients++
		}
		addWire(&s.Wire, p.l.fc.Stats())
	}
	return s, nil
}

// Status asks the tree for its status, as a client's Status does.
func (m *Monitor) Status(ctx context.Context) ([]wire.RankStatus, error) {
	n := m.node()
	if n == nil {
		return nil, ErrNotRunning
	}
	ch := make(chan []wire.RankStatus, 1)
	n.do(func() { n.startStatus(&statusReq{reply: ch}) })
	select {
	case r := <-ch:
		return r, nil
	case <-n.quit:
		return nil, ErrNotRunning
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// writeStarting writes the server's address to the starting file while
// it waits for its tree (see StartingFile).
func (n *node) writeStarting() {
	if !n.cfg.Server || n.cfg.AddressFile == "" || n.ready {
		return
	}
	if err := WriteAddressFile(StartingFile(n.cfg.AddressFile), n.cfg.Address); err != nil {
		n.log.Warn("writing the starting address file", "err", err)
	}
}

func (n *node) removeStarting() {
	if !n.cfg.Server || n.cfg.AddressFile == "" {
		return
	}
	if err := os.Remove(StartingFile(n.cfg.AddressFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
		n.log.Warn("removing the starting address file", "err", err)
	}
}

// Drain drains the listed ranks below the server, as a client's
// qlaunch drain does (they take no new task, hand back their queued ones,
// finish and leave): the automatic allocator ends idle allocations so.
func (m *Monitor) Drain(ranks []int) error {
	n := m.node()
	if n == nil {
		return ErrNotRunning
	}
	n.do(func() { n.onDrain(ranks) })
	return nil
}
