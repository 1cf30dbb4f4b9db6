// Package boot takes one rank of a job started by srun, mpirun, mpiexec or
// PBS to its role: it is what `qlaunch TOPOLOGY.toml` runs on every rank.
//
// Every rank works alone from the same inputs (the topology, and the
// identity rank.Detect found in its environment) and so computes the same
// plan: its own entry (topology.RankOf), its parent's address and the
// number of ranks the tree will hold. In order, Run
//
//  1. with MPI, refuses a world whose size is not the launcher's task count
//     and learns the true layout (which node each rank is on) by Allgather;
//  2. computes this rank's plan entry, using the rank's position in
//     node-by-node order (rank.Info.BlockRank), whatever order the launcher
//     numbered the ranks in;
//  3. pins the process to the entry's CPUs (GOMAXPROCS follows) and sets
//     the entry's environment (GPU visibility, BLAS threads, templates)
//     before anything runs;
//  4. binds its listener (server and manager ranks) to its node's address
//     on the network of its role (topology key network, or Config.Network:
//     auto, an interface, a CIDR; see package netpick), never a fixed port
//     on 0.0.0.0, since several nodes may share one host. With MPI it
//     listens on port 0 and the ranks exchange their addresses by
//     Allgather; without, it listens on the plan's port, and a child finds
//     its parent's address among those of the parent's node name that lie
//     on the parent's network. It logs once where it listens and whom it
//     dials;
//  5. runs the role through launcher.RunServer, RunManager or RunWorker.
//     A child dials its parent with retries for at most DialTimeout and
//     then fails with a *ParentError naming the parent; the server writes
//     the address file once every rank of the plan has joined.
//
// A clean stop (SIGINT to the server, scancel -s INT, a shutdown from the
// parent) returns nil.
package boot

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"time"

	"github.com/qlaunch/qlaunch/launcher"
	"github.com/qlaunch/qlaunch/launcher/netpick"
	"github.com/qlaunch/qlaunch/rank"
	"github.com/qlaunch/qlaunch/topology"
)

// DefaultDialTimeout bounds how long a rank tries to reach its parent.
const DefaultDialTimeout = 60 * time.Second

// Config is what Run needs; zero values mean defaults where stated.
type Config struct {
	Topology *topology.Topology // loaded, with CPUs per node supplied
	Info     rank.Info          // from rank.Detect
	// MPI, when not nil, is an initialised MPI world (rank.StartMPI, on the
	// goroutine that calls Run): sizes are checked and the layout and the
	// listen addresses are exchanged by Allgather.
	MPI     *rank.MPI
	Getenv  func(string) string               // reads the environment (address file path)
	Setenv  func(key, value string) error     // sets the rank's environment; nil: not set
	Pin     func(cpus []int) error            // default rank.Pin
	Resolve func(host string) (string, error) // node name → IP; default: every address of net.LookupHost
	// Network, when not "", replaces the topology's networks for every
	// role: auto, an interface name, a CIDR or an address.
	Network string
	// Interfaces lists this node's interfaces; nil means netpick.Interfaces.
	Interfaces func() ([]netpick.Interface, error)
	// Node is what every rank of the job shares, as the command built it
	// from the topology and its flags: Registry, Link (the topology's and
	// the flags' settings with the job secret; a zero Link.DialTimeout,
	// which bounds the retries to reach the parent, means
	// DefaultDialTimeout), Logger, Drain, and Monitor (the server rank's
	// alone). Run fills in Rank, Host, Parent and Alloc from the plan.
	Node launcher.NodeConfig
	// SecretFile is the file Node.Link.Secret came from, recorded in the
	// server's address file for clients; "" records none.
	SecretFile string
	// Join, when not nil, makes this job's ranks join a running tree
	// instead of starting one (see Join).
	Join *Join
	// Started, when not nil, receives this rank's entry once the rank is
	// pinned, has its environment and is about to start its role.
	Started func(topology.Rank)
	// Ready, when not nil, is closed by the server rank once its tree is
	// up and its address file is written (ranks of other roles leave it).
	Ready chan struct{}
}

func (c Config) withDefaults() Config {
	if c.Getenv == nil {
		c.Getenv = func(string) string { return "" }
	}
	if c.Pin == nil {
		c.Pin = rank.Pin
	}
	if c.Node.Link.DialTimeout <= 0 {
		c.Node.Link.DialTimeout = DefaultDialTimeout
	}
	if c.Node.Logger == nil {
		c.Node.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Join says how the ranks of a second allocation join a running tree:
// every rank computes the plan of its own allocation as usual (roles,
// pinning, env, the manager tree of its nodes), numbers itself RankBase
// plus its plan rank, and the plan's rank 0, which would be the server,
// is a manager instead whose parent is Server: the top manager of the new
// nodes attaches under the running server (or a manager of it).
type Join struct {
	Server   string // the address of the running server (its address file)
	RankBase int    // added to every plan rank, so that numbers stay unique
}

// JoinRankBase is the default RankBase of an allocation: its job id times
// 1000 (job 57's ranks are 57000, 57001, …), or 1000 without a numeric
// job id. It stays below the wire's rank limit (2^31).
func JoinRankBase(jobID string) int {
	n := 0
	for _, c := range jobID {
		if c < '0' || c > '9' {
			break // PBS ids: "123.server"
		}
		n = (n*10 + int(c-'0')) % 2_000_000
	}
	if n == 0 {
		n = 1
	}
	return n * 1000
}

// ParentError is a rank that could not reach its parent within the dial
// timeout.
type ParentError struct {
	Rank       int
	Role       topology.Role
	Host       string
	Parent     int    // the parent's rank
	ParentHost string // the parent's node
	Addr       string // the address dialled
	Timeout    time.Duration
	Err        error
}

func (e *ParentError) Error() string {
	return fmt.Sprintf("rank %d (%s on %s): parent rank %d on %s unreachable at %s for %v: %v",
		e.Rank, e.Role, e.Host, e.Parent, e.ParentHost, e.Addr, e.Timeout, e.Err)
}

func (e *ParentError) Unwrap() error { return e.Err }

// Entry returns this rank's plan entry: the plan rank is the rank's
// position in node-by-node order.
func Entry(t *topology.Topology, info rank.Info) (topology.Rank, error) {
	br, err := info.BlockRank()
	if err != nil {
		return topology.Rank{}, fmt.Errorf("plan: %w (build qlaunch with -tags mpi to learn it by MPI_Allgather)", err)
	}
	e, err := t.RankOf(info.NodeList, info.TasksPerNode, br)
	if err != nil {
		return topology.Rank{}, fmt.Errorf("plan rank %d on %s: %w", br, info.Node, err)
	}
	return e, nil
}

// StartError is a failure before the rank took its role (plan, pinning,
// environment, listening, the MPI address exchange): the other ranks may be
// waiting on this one in a collective, so with MPI the caller ends the job
// (rank.MPI.Abort) instead of finalising.
type StartError struct{ Err error }

func (e *StartError) Error() string { return e.Err.Error() }

func (e *StartError) Unwrap() error { return e.Err }

// Run takes this rank to its role and returns when the role ends: nil on a
// clean stop, a *StartError when the rank failed before taking its role.
func Run(ctx context.Context, cfg Config) (err error) {
	cfg = cfg.withDefaults()
	started := false
	defer func() {
		if err != nil && !started {
			err = &StartError{Err: err}
		}
	}()
	info := cfg.Info
	if cfg.MPI != nil {
		var err error
		if info, err = mpiLayout(cfg.MPI, info); err != nil {
			return err
		}
	}
	e, err := Entry(cfg.Topology, info)
	if err != nil {
		return err
	}
	log := cfg.Node.Logger.With("rank", e.Rank, "host", e.Host, "role", e.Roles.String())
	if e.CPUs != "" {
		set, err := topology.ParseCPUList(e.CPUs, 0)
		if err != nil {
			return fmt.Errorf("rank %d: plan CPUs %q: %w", e.Rank, e.CPUs, err)
		}
		if err := cfg.Pin(set.Slice()); err != nil {
			return fmt.Errorf("rank %d: %w", e.Rank, err)
		}
	}
	if cfg.Setenv != nil {
		for _, k := range slices.Sorted(mapKeys(e.Env)) {
			if err := cfg.Setenv(k, e.Env[k]); err != nil {
				return fmt.Errorf("rank %d: set %s: %w", e.Rank, k, err)
			}
		}
	}

	nets := Networks{Topology: cfg.Topology, Override: cfg.Network, Picker: cfg.picker()}
	var ln net.Listener
	if listens(e) {
		ip, err := nets.Listen(ctx, e)
		if err != nil {
			return err
		}
		port := e.Port
		if cfg.MPI != nil {
			port = 0
		}
		if ln, err = net.Listen("tcp", netip.AddrPortFrom(ip, uint16(port)).String()); err != nil {
			return fmt.Errorf("rank %d (%s on %s): listen: %w", e.Rank, e.Roles, e.Host, err)
		}
		defer ln.Close()
	}
	parent := ""
	if cfg.MPI != nil {
		if parent, err = mpiParent(cfg.MPI, e, ln); err != nil {
			return err
		}
	} else if e.Parent >= 0 {
		ap, err := nets.Parent(ctx, e)
		if err != nil {
			return err
		}
		parent = ap.String()
	}
	if j := cfg.Join; j != nil {
		// The new allocation's ranks take numbers of their own; its top
		// rank manages its nodes under the running server.
		e.Rank += j.RankBase
		if e.Parent >= 0 {
			e.Parent += j.RankBase
		} else {
			e.Roles = e.Roles&^topology.RoleServer | topology.RoleManager
			e.Parent, e.ParentHost, parent = 0, "(the running server)", j.Server
		}
		log = cfg.Node.Logger.With("rank", e.Rank, "host", e.Host, "role", e.Roles.String(), "alloc", info.JobID)
	}
	node := cfg.Node
	node.Rank, node.Host, node.Parent, node.Alloc = e.Rank, e.Host, parent, info.JobID
	monitor := node.Monitor
	node.Monitor = nil // the server rank's alone
	if cfg.Started != nil {
		cfg.Started(e)
	}
	log.Info("starting", "parent", e.Parent, "parent_addr", parent, "cpus", e.CPUs, "listen", addrOf(ln),
		"network", nets.of(e.Roles))

	var expect []launcher.PlannedRank
	if e.Roles.Has(topology.RoleServer) {
		if expect, err = Expected(cfg.Topology, info); err != nil {
			return err
		}
	}
	started = true
	switch {
	case e.Roles.Has(topology.RoleServer):
		total := 0
		for _, n := range info.TasksPerNode {
			total += n
		}
		addrFile := cfg.Topology.Runtime.AddressPath(cfg.Getenv)
		node.Monitor = monitor
		err = launcher.RunServer(ctx, launcher.ServerConfig{
			NodeConfig: node, Listener: ln, ExpectRanks: total,
			AddressFile: addrFile, Address: ln.Addr().String(),
			Owner: launcher.AddressOwner{Job: info.JobID, SecretFile: cfg.SecretFile},
			Plan:  expect, Ready: cfg.Ready,
		})
	case e.Roles.Has(topology.RoleManager):
		err = launcher.RunManager(ctx, launcher.ManagerConfig{NodeConfig: node, Listeners: []net.Listener{ln}})
	default:
		err = launcher.RunWorker(ctx, launcher.WorkerConfig{NodeConfig: node, Slots: e.Workers})
	}
	switch {
	case err == nil, errors.Is(err, launcher.ErrShutdown), errors.Is(err, context.Canceled) && ctx.Err() != nil:
		log.Info("stopped")
		return nil
	case errors.Is(err, context.DeadlineExceeded) && e.Parent >= 0:
		return &ParentError{Rank: e.Rank, Role: e.Roles, Host: e.Host, Parent: e.Parent, ParentHost: e.ParentHost,
			Addr: parent, Timeout: cfg.Node.Link.DialTimeout, Err: err}
	default:
		return fmt.Errorf("rank %d (%s on %s): %w", e.Rank, e.Roles, e.Host, err)
	}
}

// Expected returns every rank of the job's plan as the server expects it
// (its status replies name the ranks that did not join, with their hosts).
func Expected(t *topology.Topology, info rank.Info) ([]launcher.PlannedRank, error) {
	p, err := t.Plan(info.NodeList, info.TasksPerNode)
	if err != nil {
		return nil, fmt.Errorf("plan: %w", err)
	}
	out := make([]launcher.PlannedRank, len(p.Ranks))
	for i, r := range p.Ranks {
		out[i] = launcher.PlannedRank{Rank: r.Rank, Parent: r.Parent, Host: r.Host, Role: r.Roles.String()}
	}
	return out, nil
}

// listens reports whether rank e has a listener: server and manager ranks.
func listens(e topology.Rank) bool {
	return e.Roles.Has(topology.RoleServer) || e.Roles.Has(topology.RoleManager)
}

func (c Config) picker() netpick.Picker {
	p := netpick.Picker{Interfaces: c.Interfaces}
	if c.Resolve != nil {
		resolve := c.Resolve
		p.LookupHost = func(_ context.Context, host string) ([]string, error) {
			a, err := resolve(host)
			if err != nil {
				return nil, err
			}
			return []string{a}, nil
		}
	}
	return p
}

// resolveTimeout bounds a node name lookup.
const resolveTimeout = 10 * time.Second

// Networks turns the networks of a topology into the addresses of ranks.
type Networks struct {
	Topology *topology.Topology
	// Override, when not "", replaces the topology's network of every role.
	Override string
	Picker   netpick.Picker
}

func (n Networks) of(roles topology.Role) string {
	if n.Override != "" {
		return n.Override
	}
	return string(n.Topology.NetworkOf(roles))
}

func (n Networks) parentOf(e topology.Rank) string {
	if n.Override != "" {
		return n.Override
	}
	return string(n.Topology.ParentNetwork(e))
}

// Listen returns the address rank e (a server or manager rank) listens on,
// on this node: its node's address on the network of its roles.
func (n Networks) Listen(ctx context.Context, e topology.Rank) (netip.Addr, error) {
	spec, err := netpick.Parse(n.of(e.Roles))
	if err != nil {
		return netip.Addr{}, fmt.Errorf("rank %d (%s on %s): %w", e.Rank, e.Roles, e.Host, err)
	}
	ctx, cancel := context.WithTimeout(ctx, resolveTimeout)
	defer cancel()
	a, err := n.Picker.Local(ctx, spec, e.Host)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("rank %d (%s on %s): listen address: %w", e.Rank, e.Roles, e.Host, err)
	}
	return a, nil
}

// Parent returns the address rank e dials to reach its parent: the
// parent's node name resolved on the parent's network, with the plan's
// port.
func (n Networks) Parent(ctx context.Context, e topology.Rank) (netip.AddrPort, error) {
	spec, err := netpick.Parse(n.parentOf(e))
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("rank %d (%s on %s): %w", e.Rank, e.Roles, e.Host, err)
	}
	ctx, cancel := context.WithTimeout(ctx, resolveTimeout)
	defer cancel()
	a, err := n.Picker.Remote(ctx, spec, e.ParentHost)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("rank %d: parent rank %d: %w", e.Rank, e.Parent, err)
	}
	return netip.AddrPortFrom(a, uint16(e.ParentPort)), nil
}

func addrOf(ln net.Listener) string {
	if ln == nil {
		return ""
	}
	return ln.Addr().String()
}

func mapKeys(m map[string]string) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// recordSize is the fixed size of a record exchanged by Allgather.
const recordSize = 320

// gather sends s (at most recordSize-1 bytes) and returns every rank's, in
// MPI rank order.
func gather(m *rank.MPI, s string) ([]string, error) {
	if len(s) >= recordSize {
		return nil, fmt.Errorf("mpi: record %q longer than %d bytes", s, recordSize-1)
	}
	rec := make([]byte, recordSize)
	copy(rec, s)
	all, err := m.Allgather(rec)
	if err != nil {
		return nil, err
	}
	out := make([]string, m.Size())
	for i := range out {
		out[i] = string(bytes.TrimRight(all[i*recordSize:(i+1)*recordSize], "\x00"))
	}
	return out, nil
}

// mpiLayout checks the MPI world against the launcher and replaces the
// layout by the true one: which node every rank is on, nodes in the order
// their first rank appears, each rank's local rank its position among its
// node's ranks.
func mpiLayout(m *rank.MPI, info rank.Info) (rank.Info, error) {
	if err := rank.CheckMPISize(info, m.Size(), m.Library()); err != nil {
		return info, err
	}
	if m.Rank() != info.Rank {
		return info, fmt.Errorf("MPI rank %d differs from the %s launcher's rank %d", m.Rank(), info.Launcher, info.Rank)
	}
	nodes, err := gather(m, info.Node)
	if err != nil {
		return info, fmt.Errorf("exchange node names: %w", err)
	}
	info.NodeList, info.TasksPerNode = nil, nil
	index := map[string]int{}
	for r, n := range nodes {
		i, ok := index[n]
		if !ok {
			i = len(info.NodeList)
			index[n] = i
			info.NodeList = append(info.NodeList, n)
			info.TasksPerNode = append(info.TasksPerNode, 0)
		}
		if r == info.Rank {
			info.NodeIndex, info.LocalRank = i, info.TasksPerNode[i]
		}
		info.TasksPerNode[i]++
	}
	info.LocalSize = info.TasksPerNode[info.NodeIndex]
	return info, nil
}

// mpiParent exchanges every rank's plan rank and listen address and
// returns the parent's address ("" for the server).
func mpiParent(m *rank.MPI, e topology.Rank, ln net.Listener) (string, error) {
	recs, err := gather(m, strconv.Itoa(e.Rank)+" "+addrOf(ln))
	if err != nil {
		return "", fmt.Errorf("exchange addresses: %w", err)
	}
	if e.Parent < 0 {
		return "", nil
	}
	for _, r := range recs {
		var pr int
		var addr string
		if n, _ := fmt.Sscan(r, &pr, &addr); n == 2 && pr == e.Parent {
			return addr, nil
		}
	}
	return "", fmt.Errorf("rank %d: parent rank %d sent no listen address", e.Rank, e.Parent)
}
