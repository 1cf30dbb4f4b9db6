package launcher_test

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/qlaunch/qlaunch/kernels"
	"github.com/qlaunch/qlaunch/launcher"
	"github.com/qlaunch/qlaunch/launcher/transport"
	"github.com/qlaunch/qlaunch/launcher/wire"
)

// TestHoldClientsUntilReady: a client that connects and asks for the
// tree's status before its worker rank even started is answered once the
// rank joined, with the whole tree.
func TestHoldClientsUntilReady(t *testing.T) {
	reg, err := kernels.NewRegistry(kernels.Builtin()...)
	if err != nil {
		t.Fatal(err)
	}
	secret := testSecret(t)
	link := launcher.LinkConfig{Secret: secret}
	ln := localListener(t)
	addr := ln.Addr().String()
	ready := make(chan struct{})
	served := make(chan error, 1)
	go func() {
		served <- launcher.RunServer(t.Context(), launcher.ServerConfig{
			NodeConfig: launcher.NodeConfig{Host: "here", Registry: reg, Link: link},
			Listener:   ln, ExpectRanks: 2, Ready: ready, HoldClients: true,
		})
	}()
	c, err := transport.Dial(t.Context(), addr, transport.Config{Secret: secret, FailFast: true},
		wire.Hello{Role: "client", Rank: -1, Host: "here"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.NC.Close()
	// The request is in the server's socket before the worker rank exists.
	if err := c.FC.WriteFrame(wire.KindStatus, wire.AppendStatus(nil, &wire.Status{ID: 1})); err != nil {
		t.Fatal(err)
	}
	if err := c.FC.Flush(); err != nil {
		t.Fatal(err)
	}
	worked := make(chan error, 1)
	go func() {
		worked <- launcher.RunWorker(t.Context(), launcher.WorkerConfig{NodeConfig: launcher.NodeConfig{Rank: 1, Host: "here", Parent: addr, Registry: reg, Link: link}})
	}()
	for {
		k, b, err := c.FC.ReadFrame()
		if err != nil {
			t.Fatalf("reading the status reply: %v", err)
		}
		if k != wire.KindStatus {
			continue // a heartbeat
		}
		var s wire.Status
		if err := wire.DecodeStatus(b, &s); err != nil {
			t.Fatal(err)
		}
		if len(s.Ranks) != 2 || s.Ranks[1].Role != "worker" {
			t.Fatalf("status %+v, want the server and its worker rank", s.Ranks)
		}
		break
	}
	select {
	case <-ready:
	default:
		t.Fatal("status answered, server not ready")
	}
}

// TestLaunchAttachedRankFails: LaunchAttached returns before the ranks
// joined; WaitReady reports a rank whose process ended first.
func TestLaunchAttachedRankFails(t *testing.T) {
	a, err := launcher.LaunchAttached(launcher.AttachedConfig{
		NodeConfig: launcher.NodeConfig{Host: "here"}, Workers: []launcher.WorkerSpec{{Rank: 1, Slots: 1}}, Restarts: -1,
		Command: func(launcher.WorkerSpec, string, string) *exec.Cmd { return exec.Command("/bin/false") },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if a.Addr == "" || a.SecretFile == "" {
		t.Fatalf("launched without an address or secret: %+v", a)
	}
	err = a.WaitReady(t.Context())
	if err == nil || !strings.Contains(err.Error(), "worker rank 1") || !strings.Contains(err.Error(), "before the runtime was ready") {
		t.Fatalf("WaitReady = %v, want worker rank 1 … before the runtime was ready", err)
	}
}
