package launcher

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"

	"github.com/qlaunch/qlaunch/kernels"
)

// Default ports, as BQSKit users know them.
const (
	DefaultServerPort  = 7472 // clients connect to the server here
	DefaultManagerPort = 7473 // a manager waits here for its parent
	DefaultWorkerPort  = 7474 // a manager waits here for its worker ranks
)

// ServerConfig configures the server: the top of the tree, which clients
// connect to.
type ServerConfig struct {
	Rank int
	Host string
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
	Ready       chan struct{}
	// HoldClients: see NodeConfig.
	HoldClients bool
	// Registry, if set, marks retryable kernels (see NodeConfig).
	Registry *kernels.Registry
	Link     LinkConfig
	Logger   *slog.Logger
	// Alloc labels the rank's status rows with its allocation (job id).
	Alloc string
	// Plan, if set, lists every rank of the job (from its topology plan):
	// status replies then name each rank not in the tree, with its host
	// and why (never connected, lost when and why).
	Plan []PlannedRank
	// Monitor, if set, reads the server's counters while it runs (the
	// metrics endpoint).
	Monitor *Monitor
	// Supervisor, if set, started worker ranks of this server and starts
	// them again when they die (see NodeConfig).
	Supervisor *Supervisor
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
	err := RunNode(ctx, NodeConfig{
		Server: true, Rank: cfg.Rank, Host: cfg.Host, Listeners: []net.Listener{ln},
		Children: cfg.Managers, ExpectRanks: cfg.ExpectRanks, AddressFile: cfg.AddressFile,
		Address: cfg.Address, Owner: cfg.Owner, Ready: cfg.Ready, HoldClients: cfg.HoldClients, Registry: cfg.Registry, Link: cfg.Link, Logger: cfg.Logger,
		Plan: cfg.Plan, Monitor: cfg.Monitor, Supervisor: cfg.Supervisor, Alloc: cfg.Alloc,
	})
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
// server or a higher manager) and its children (worker ranks or lower
// managers).
type ManagerConfig struct {
	Rank int
	Host string
	// Listeners accept the parent (when it dials) and children that dial
	// up; nil means listening on Listen (":7473") and WorkerListen
	// (":7474").
	Listeners    []net.Listener
	Listen       string
	WorkerListen string
	// Parent, if set, is dialled (with retries) instead of waiting for the
	// parent to dial in.
	Parent string
	// Managers are lower managers to dial (qlaunch manager -m ADDR…).
	Managers []string
	// Registry, if set, marks retryable kernels (see NodeConfig).
	Registry *kernels.Registry
	Link     LinkConfig
	Logger   *slog.Logger
	// Supervisor, if set, started worker ranks of this manager and
	// starts them again when they die (see NodeConfig).
	Supervisor *Supervisor
	// Alloc labels the rank's status rows with its allocation (job id).
	Alloc string
	// Drain, when closed, drains the manager (see NodeConfig.Drain).
	Drain <-chan struct{}
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
	err = RunNode(ctx, NodeConfig{
		Rank: cfg.Rank, Host: cfg.Host, Listeners: lns, Parent: cfg.Parent,
		Children: cfg.Managers, Registry: cfg.Registry, Link: cfg.Link, Logger: cfg.Logger,
		Supervisor: cfg.Supervisor, Alloc: cfg.Alloc, Drain: cfg.Drain,
	})
	if errors.Is(err, context.Canceled) {
		return ErrShutdown
	}
	return err
}
