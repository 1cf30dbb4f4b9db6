package cli

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/qlaunch/qlaunch/launcher/netpick"
)

// slurmRank is the environment srun gives rank procid of a step with
// ntasks ranks on one node.
func slurmRank(node string, procid, ntasks int) map[string]string {
	n := strconv.Itoa(ntasks)
	return map[string]string{
		"SLURM_JOB_ID": "34", "SLURM_STEP_ID": "0", "SLURMD_NODENAME": node, "SLURM_NODEID": "0",
		"SLURM_PROCID": strconv.Itoa(procid), "SLURM_LOCALID": strconv.Itoa(procid),
		"SLURM_NTASKS": n, "SLURM_STEP_NUM_TASKS": n, "SLURM_STEP_NODELIST": node, "SLURM_JOB_NODELIST": node,
		"SLURM_STEP_TASKS_PER_NODE": n, "SLURM_TASKS_PER_NODE": n,
	}
}

// topologyOnPort writes a topology whose server listens on port.
func topologyOnPort(t *testing.T, port int) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "t.toml")
	if err := os.WriteFile(path, []byte(fmt.Sprintf("[runtime]\nport = %d\n", port)), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// freePort returns a port nothing listens on now.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func TestPlanCheck(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	open := ln.Addr().(*net.TCPAddr).Port
	closed := freePort(t)
	at := func(port int) string { return fmt.Sprintf("%-23s", "127.0.0.1:"+strconv.Itoa(port)) }

	const noListen = " (without --listen no rank listens: add --listen to check every edge as the runtime will use it)"
	tests := []struct {
		name   string
		node   string
		port   int
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{name: "reachable", node: "localhost", port: open, code: 0,
			stdout: "1     localhost         worker          -                       0       " + at(open) + " yes  connected\n"},
		{name: "refused", node: "localhost", port: closed, code: 1,
			stdout: "1     localhost         worker          -                       0       " + at(closed) + " no   refused: the host answers but nothing listens on the port" + noListen + "\n",
			stderr: "qlaunch: plan --check: rank 1 on localhost cannot reach parent rank 0 on localhost at 127.0.0.1:" + strconv.Itoa(closed) +
				": refused: the host answers but nothing listens on the port" + noListen + "\n"},
		{name: "name does not resolve", node: "no!such!node", port: open, code: 1,
			stdout: "1     no!such!node      worker          -                       0       -                       no   name does not resolve: no!such!node\n",
			stderr: "qlaunch: plan --check: rank 1 on no!such!node cannot reach parent rank 0 on no!such!node at -: name does not resolve: no!such!node\n"},
		{name: "not on the network", node: "127.0.0.1", port: open, args: []string{"--network", "192.0.2.0/24"}, code: 1,
			stdout: "1     127.0.0.1         worker          -                       0       -                       no   network 192.0.2.0/24: no address: node 127.0.0.1 resolves to 127.0.0.1, none in 192.0.2.0/24\n",
			stderr: "qlaunch: plan --check: rank 1 on 127.0.0.1 cannot reach parent rank 0 on 127.0.0.1 at -: network 192.0.2.0/24: no address: node 127.0.0.1 resolves to 127.0.0.1, none in 192.0.2.0/24\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"plan", topologyOnPort(t, tt.port), "--check", "--cpus", "2"}, tt.args...)
			code, stdout, stderr := runQlaunch(t, slurmRank(tt.node, 1, 2), args...)
			if code != tt.code || stdout != tt.stdout || stderr != tt.stderr {
				t.Fatalf("exit %d, stdout:\n%q\nstderr:\n%q\nwant exit %d, stdout:\n%q\nstderr:\n%q", code, stdout, stderr, tt.code, tt.stdout, tt.stderr)
			}
		})
	}
}

// TestPlanCheckListen runs both ranks of a job with --listen: the server
// rank listens on its planned address and the worker rank reaches it; both
// end once that edge is proven, long before --duration.
func TestPlanCheckListen(t *testing.T) {
	port := freePort(t)
	path := topologyOnPort(t, port)
	type result struct {
		code           int
		stdout, stderr string
	}
	var results [2]result
	var wg sync.WaitGroup
	start := time.Now()
	for r := range 2 {
		wg.Go(func() {
			code, stdout, stderr := runQlaunch(t, slurmRank("localhost", r, 2), "plan", path, "--check", "--listen", "--duration", "5m", "--cpus", "2")
			results[r] = result{code, stdout, stderr}
		})
	}
	wg.Wait()
	if took := time.Since(start); took > time.Minute {
		t.Errorf("plan --check --listen took %v once its one edge was proven", took)
	}
	addr := fmt.Sprintf("%-23s", "127.0.0.1:"+strconv.Itoa(port))
	want := [2]result{
		{0, checkHeader + "0     localhost         server+manager  " + addr + " -       -                       yes  server: no parent\n", ""},
		{0, "1     localhost         worker          -                       0       " + addr + " yes  connected\n", ""},
	}
	if results != want {
		t.Fatalf("results:\n%#v\nwant:\n%#v", results, want)
	}
}

func TestPlanCheckUsage(t *testing.T) {
	for _, c := range []struct {
		args   []string
		stderr string
	}{
		{[]string{"--listen"}, "qlaunch: plan: --listen goes with --check\n"},
		{[]string{"--check", "--check-timeout", "0s"}, "qlaunch: plan: --check-timeout 0s: want a positive duration\n"},
		{[]string{"--check", "--listen", "--duration", "1h"}, "qlaunch: plan: --duration 1h0m0s: want a positive duration of at most 10m0s\n"},
		{[]string{"--check", "--network", "a b"}, "qlaunch: plan: --network: network \"a b\": not auto, a CIDR, an address or an interface name (character ' ')\n"},
		{[]string{"--check", "--nodelist", "n1"}, "qlaunch: plan: --check takes the node list from the job each rank runs in, not from --nodelist, --nodefile or --ntasks-per-node\n"},
	} {
		code, stdout, stderr := runQlaunch(t, nil, append([]string{"plan", "../../configs/local.toml"}, c.args...)...)
		if code != 2 || stdout != "" || stderr != c.stderr+"see \"qlaunch plan --help\"\n" {
			t.Errorf("plan %q: exit %d, %q, %q; want exit 2, stderr %q", c.args, code, stdout, stderr, c.stderr)
		}
	}
}

func TestClassify(t *testing.T) {
	op := func(err error) error {
		return &net.OpError{Op: "dial", Net: "tcp", Err: &os.SyscallError{Syscall: "connect", Err: err}}
	}
	for _, c := range []struct {
		err  error
		want string
	}{
		{op(syscall.ECONNREFUSED), "refused: the host answers but nothing listens on the port"},
		{op(syscall.EHOSTUNREACH), "no route to host"},
		{op(syscall.ENETUNREACH), "no route: network unreachable"},
		{op(syscall.EADDRINUSE), "address in use (another job on this node?)"},
		{op(syscall.EADDRNOTAVAIL), "address not local to this node"},
		{&net.OpError{Op: "dial", Net: "tcp", Err: os.ErrDeadlineExceeded}, "timeout: no answer (a firewall dropping packets, or the host is down)"},
		{fmt.Errorf("resolve node n9: %w", &net.DNSError{Err: "no such host", Name: "n9", IsNotFound: true}), "name does not resolve: n9"},
		{&net.DNSError{Err: "i/o timeout", Name: "n9", IsTimeout: true}, "name lookup timed out: n9"},
		{fmt.Errorf("rank 1: parent rank 0: %w", &netpick.AddressError{Spec: "ib0", Reason: "no interface ib0 here"}), "network ib0: no address: no interface ib0 here"},
		{errors.New("something else"), "something else"},
	} {
		if got := classify(c.err); got != c.want {
			t.Errorf("classify(%v) = %q, want %q", c.err, got, c.want)
		}
	}
}
