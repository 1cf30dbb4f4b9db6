package launcher

import (
	"context"
	"errors"
	"os"
	"sync"

	"github.com/qlaunch/qlaunch/launcher/relay"
	"github.com/qlaunch/qlaunch/launcher/wire"
)

// This file holds what a node tells observers in its own process: the
// counters a Monitor reads and the tree's status (the rows come from the
// relay core), and the starting address file.

// PlannedRank is one rank of the job's plan, as the server expects it.
type PlannedRank = relay.PlannedRank

// ErrNotRunning is returned by a Monitor whose node is not running.
var ErrNotRunning = errors.New("launcher: not running")

// Monitor lets an observer in the same process (the metrics endpoint) read
// a running server's counters and ask its tree's status. Pass one in
// NodeConfig.Monitor; it is safe for concurrent use.
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

func addWire(a *wire.Stats, b wire.Stats) {
	a.FramesIn += b.FramesIn
	a.FramesOut += b.FramesOut
	a.PayloadIn += b.PayloadIn
	a.PayloadOut += b.PayloadOut
	a.WireIn += b.WireIn
	a.WireOut += b.WireOut
	a.CompressedIn += b.CompressedIn
	a.CompressedOut += b.CompressedOut
	a.Recycled += b.Recycled
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
	j, c, sc := n.core.Subtree(), n.core.Counters(), n.core.Sched()
	s := Stats{
		Submitted: c.Submitted, Completed: c.Completed, Failed: c.Failed,
		Cancelled: c.Cancelled, Retried: sc.Retries(), Held: sc.Held(),
		InFlight: sc.Pending() - sc.Held(), Ranks: j.Ranks, Slots: j.Slots,
		Wire: n.closedWire, Clients: n.core.Clients(),
	}
	if n.cfg.Supervisor != nil {
		s.Restarts = n.cfg.Supervisor.Restarts()
	}
	for _, p := range n.peers {
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
	n.do(func() {
		n.nextToken++
		n.statusWait[n.nextToken] = ch
		n.step(relay.Event{Type: relay.StatusAsk, Token: n.nextToken})
	})
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
	s := n.cfg.Server
	if s == nil || s.AddressFile == "" || n.core.Ready() {
		return
	}
	if s.HoldClients {
		// Clients are held until ready: the address is good at once.
		if err := WriteAddressRecord(s.AddressFile, ownRecord(s.Address, s.Owner)); err != nil {
			n.log.Error("writing the address file", "err", err)
		}
		return
	}
	if err := WriteAddressFile(StartingFile(s.AddressFile), s.Address); err != nil {
		n.log.Warn("writing the starting address file", "err", err)
	}
}

func (n *node) removeStarting() {
	s := n.cfg.Server
	if s == nil || s.AddressFile == "" {
		return
	}
	if err := os.Remove(StartingFile(s.AddressFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
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
	n.do(func() { n.step(relay.Event{Type: relay.DrainRanks, Ranks: ranks}) })
	return nil
}
