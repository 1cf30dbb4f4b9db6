package launcher

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"time"

	"github.com/qlaunch/qlaunch/kernels"
	"github.com/qlaunch/qlaunch/topology"
)

// Default ports, as BQSKit users know them (topology holds them, with
// every other default of a rank).
const (
	DefaultServerPort  = topology.DefaultPort        // clients connect to the server here
	DefaultManagerPort = topology.DefaultManagerPort // a manager waits here for its parent
	DefaultWorkerPort  = topology.DefaultWorkerPort  // a manager waits here for its worker ranks
)

// NodeConfig describes one rank of the runtime, whatever its role: who it
// is, whom it dials, how it links and what it runs. The role commands
// build it from the topology and their shared role flags (cmd/cli's
// roleFlags.node), package boot from the job's plan; ServerConfig,
// ManagerConfig and WorkerConfig hold it with their role's own part, and
// AttachedConfig with the runtime it starts.
type NodeConfig struct {
	Rank int
	Host string
	// Parent is the address of the parent to dial: a worker rank's
	// manager (or server), a manager's parent. Empty for the server, and
	// for a manager that waits for its parent to dial it.
	Parent string
	// Alloc labels the rank's status rows with its allocation (job id).
	Alloc string
	// Registry holds the kernels a worker rank runs; a relay (server,
	// manager) learns from it which kernels are retryable: their tasks
	// are placed again when the child running them is lost.
	Registry *kernels.Registry
	Link     LinkConfig
	Logger   *slog.Logger
	// Drain, when closed, drains a manager or worker rank (as qlaunch
	// drain would): it tells its parent, hands back or finishes its
	// tasks and leaves last. The server ignores it.
	Drain <-chan struct{}
	// ShutdownWait bounds how long a stopping rank waits: a relay for its
	// children to leave (zero: topology.DefaultRelayShutdownWait), a
	// worker rank for its cancelled kernels to return (zero:
	// topology.DefaultWorkerShutdownWait).
	ShutdownWait time.Duration
	// Monitor, if set, reads a relay's counters while it runs (the
	// metrics endpoint). A worker rank ignores it.
	Monitor *Monitor
	// Supervisor, if set, started some of a relay's worker ranks and
	// starts them again when they die: the relay learns of a death from
	// it at once, keeps the rank's slots for its replacement and has it
	// kill a rank it found hung (see Supervisor). A worker rank ignores
	// it.
	Supervisor *Supervisor
}

// withDefaults fills what the node left zero; relay says which of the
// role defaults apply.
func (c NodeConfig) withDefaults(relay bool) NodeConfig {
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.ShutdownWait <= 0 {
		c.ShutdownWait = topology.DefaultWorkerShutdownWait
		if relay {
			c.ShutdownWait = topology.DefaultRelayShutdownWait
		}
	}
	c.Link = c.Link.withDefaults()
	return c
}

// ServerConfig configures the server: the top of the tree, which clients
// connect to. Its NodeConfig has no Parent.
type ServerConfig struct {
	NodeConfig
	// Listener accepts clients and children that dial up; nil means
	// listening on Listen (default ":7472").
	Listener net.Listener
	Listen   string
	// Managers are the addresses of the managers to dial (qlaunch server
	// ADDR…).
	Managers []string
	// ExpectRanks is the number of ranks of the whole tree, the server
	// included; readiness waits for them (zero: for every dialled manager
	// to have worker slots below it).
	ExpectRanks int
	// AddressFile receives the client address once ready, with this
	// process, its host and Owner (see AddressRecord); Address is the
	// address written (default: the listener's address). RunServer
	// removes the file when it returns, unless another server replaced it.
	AddressFile string
	Address     string
	Owner       AddressOwner
	// Ready, if set, is closed once ready.
	Ready chan struct{}
	// HoldClients adopts a client that connects before the server is
	// ready only once it is: its handshake is answered at once, its
	// frames are read once every expected rank has joined, so its first
	// task and status see the whole tree. The address file is then
	// written when the server starts, not the starting file then the
	// address file once ready. Attached mode starts its command while
	// the worker ranks start (LaunchAttached), and the command's client
	// may connect first.
	HoldClients bool
	// Plan, if set, lists every rank of the job (from its topology plan):
	// status replies then name each rank not in the tree, with its host
	// and why (never connected, lost when and why).
	Plan []PlannedRank
}

// RunServer runs the server until ctx ends; a clean stop returns
// ErrShutdown once the tree below has been told to stop and has left.
func RunServer(ctx context.Context, cfg ServerConfig) error {
	ln := cfg.Listener
	if ln == nil {
		addr := cfg.Listen
		if addr == "" {
			addr = ":" + strconv.Itoa(DefaultServerPort)
		}
		var err error
		if ln, err = net.Listen("tcp", addr); err != nil {
			return fmt.Errorf("server: %w", err)
		}
	}
	if cfg.Address == "" {
		cfg.Address = advertised(ln.Addr(), cfg.Host)
	}
	cfg.Parent = ""
	err := runRelay(ctx, relayConfig{NodeConfig: cfg.NodeConfig, Listeners: []net.Listener{ln},
		Children: cfg.Managers, Server: &cfg})
	if cfg.AddressFile != "" {
		// The runtime is gone: a client must not find its address.
		if rerr := removeOwnAddressFile(cfg.AddressFile, cfg.Address); rerr != nil && cfg.Logger != nil {
			cfg.Logger.Error("removing the address file", "err", rerr)
		}
	}
	return err
}

// advertised turns a listener address into one a client can dial: an
// unspecified IP becomes host (or loopback).
func advertised(a net.Addr, host string) string {
	ta, ok := a.(*net.TCPAddr)
	if !ok || !ta.IP.IsUnspecified() {
		return a.String()
	}
	if host == "" {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, strconv.Itoa(ta.Port))
}

// ManagerConfig configures a manager: a relay between its parent (the
// server or a higher manager; NodeConfig.Parent when it dials it) and its
// children (worker ranks or lower managers).
type ManagerConfig struct {
	NodeConfig
	// Listeners accept the parent (when it dials) and children that dial
	// up; nil means listening on Listen (":7473") and WorkerListen
	// (":7474").
	Listeners    []net.Listener
	Listen       string
	WorkerListen string
	// Managers are lower managers to dial (qlaunch manager -m ADDR…).
	Managers []string
}

// ManagerListeners opens the manager's listeners as cfg says; callers that
// must know the worker port before starting worker ranks call it first and
// pass the result in cfg.Listeners.
func ManagerListeners(cfg ManagerConfig) ([]net.Listener, error) {
	if cfg.Listeners != nil {
		return cfg.Listeners, nil
	}
	addrs := []string{cfg.Listen, cfg.WorkerListen}
	if addrs[0] == "" {
		addrs[0] = ":" + strconv.Itoa(DefaultManagerPort)
	}
	if addrs[1] == "" {
		addrs[1] = ":" + strconv.Itoa(DefaultWorkerPort)
	}
	var lns []net.Listener
	for _, a := range addrs {
		ln, err := net.Listen("tcp", a)
		if err != nil {
			for _, l := range lns {
				l.Close()
			}
			return nil, fmt.Errorf("manager: %w", err)
		}
		lns = append(lns, ln)
	}
	return lns, nil
}

// RunManager runs a manager until its parent tells it to stop
// (ErrShutdown), its parent is lost (ErrParentLost) or ctx ends.
func RunManager(ctx context.Context, cfg ManagerConfig) error {
	lns, err := ManagerListeners(cfg)
	if err != nil {
		return err
	}
	err = runRelay(ctx, relayConfig{NodeConfig: cfg.NodeConfig, Listeners: lns, Children: cfg.Managers})
	if errors.Is(err, context.Canceled) {
		return ErrShutdown
	}
	return err
}
