package cli

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/qlaunch/qlaunch/launcher"
	"github.com/qlaunch/qlaunch/launcher/alloc"
	"github.com/qlaunch/qlaunch/launcher/alloc/decide"
	"github.com/qlaunch/qlaunch/launcher/wire"
)

// queueScheduler stands for SLURM: every job it takes stays pending.
type queueScheduler struct{}

func (queueScheduler) Name() string { return "slurm" }
func (queueScheduler) Submit(context.Context, string, []string) (string, error) {
	return "901", nil
}
func (queueScheduler) Jobs(context.Context, []string) (map[string]decide.Job, error) {
	return map[string]decide.Job{}, nil
}
func (queueScheduler) Cancel(context.Context, []string) error { return nil }

// unreadyTree stands for the allocator's view of the server: it never
// answers, so the allocator acts only on requests.
type unreadyTree struct{}

func (unreadyTree) Stats() (launcher.Stats, error) { return launcher.Stats{}, errors.New("not ready") }
func (unreadyTree) Status(context.Context) ([]wire.RankStatus, error) {
	return nil, errors.New("not ready")
}
func (unreadyTree) Drain([]int) error { return nil }

// TestWaitShowsAllocations: qlaunch wait --ranks N that times out while
// the server's allocator has an allocation pending lists the allocations
// after the missing ranks, as qlaunch status does. The server, qlaunch
// alloc add and qlaunch wait are real processes; the allocator serves its
// control link on loopback as a server with an [alloc] table does, with a
// scheduler that keeps every job pending.
func TestWaitShowsAllocations(t *testing.T) {
	dir := t.TempDir()
	secretFile, addrFile := filepath.Join(dir, "secret"), filepath.Join(dir, "addr")
	env := []string{"QLAUNCH_SECRET_FILE=" + secretFile, "QLAUNCH_ADDR=", "QLAUNCH_ADDRESS_FILE=" + addrFile}
	secret, err := wire.EnsureSecretFile(secretFile)
	if err != nil {
		t.Fatal(err)
	}
	sport := e2eFreePort(t)
	server := e2eStart(t, env, "server", "-p", strconv.Itoa(sport), "-i", "127.0.0.1", "--ranks", "1")
	if r := e2eRun(t, env, "", "wait", "--timeout", "20s"); r.code != 0 {
		t.Fatalf("wait for the server: %+v\nserver:\n%s", r, server.stderr)
	}
	// Before the allocator runs, wait says nothing of allocations.
	r := e2eRun(t, env, "", "wait", "--ranks", "2", "--timeout", "300ms")
	if r.code != 1 || strings.Contains(r.stderr, "scheduler") || strings.Contains(r.stderr, "allocations") {
		t.Fatalf("wait with no allocator: %+v, want the missing ranks only", r)
	}

	ctx, cancel := context.WithCancel(t.Context())
	a := alloc.New(alloc.Config{Scheduler: queueScheduler{}, Tree: unreadyTree{}, Script: filepath.Join(dir, "job.sbatch")})
	ran := make(chan error, 1)
	go func() { ran <- a.Run(ctx) }()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan struct{})
	go func() { alloc.Serve(ctx, ln, secret, "127.0.0.1", a, nil); close(served) }()
	defer func() {
		cancel()
		<-served
		if err := <-ran; err != nil {
			t.Errorf("allocator: %v", err)
		}
	}()
	host, _ := os.Hostname()
	if err := launcher.WriteAddressRecord(alloc.ControlFile(addrFile), launcher.AddressRecord{
		Addr: ln.Addr().String(), PID: os.Getpid(), Host: host, SecretFile: secretFile,
	}); err != nil {
		t.Fatal(err)
	}
	if r := e2eRun(t, env, "", "alloc", "add"); r.code != 0 || !strings.Contains(r.stdout, "901") {
		t.Fatalf("alloc add: %+v", r)
	}
	r = e2eRun(t, env, "", "wait", "--ranks", "2", "--timeout", "300ms")
	head, table, found := strings.Cut(r.stderr, "\nscheduler slurm, backlog 0 tasks\n")
	if r.code != 1 || !found || !strings.HasPrefix(head, "qlaunch: wait: timed out after 300ms: 1 of 2 ranks joined; missing:") ||
		!strings.HasPrefix(table, "JOB ") || !regexpLine(table, "901", "pending") || r.stdout != "" {
		t.Fatalf("wait with an allocation pending: exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	// Asked at an address (--ip), wait does not look for the allocator.
	r = e2eRun(t, env, "", "wait", "--ip", "127.0.0.1:"+strconv.Itoa(sport), "--ranks", "2", "--timeout", "300ms")
	if r.code != 1 || strings.Contains(r.stderr, "901") {
		t.Fatalf("wait --ip: %+v, want the missing ranks only", r)
	}
}
