package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/qlaunch/qlaunch/kernels"
	"github.com/qlaunch/qlaunch/launcher/bench"
	"github.com/qlaunch/qlaunch/launcher/client"
	"github.com/qlaunch/qlaunch/launcher/wire"
)

// qlaunchBin is the qlaunch binary built once by TestMain for the tests
// that run real processes.
var qlaunchBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "qlaunch-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	qlaunchBin = filepath.Join(dir, "qlaunch")
	out, err := exec.Command("go", "build", "-o", qlaunchBin, "../qlaunch").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "building qlaunch: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// e2eFreePort returns a TCP port free at the time of the call.
func e2eFreePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// procOutput is a background process's output, read while it writes.
type procOutput struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (o *procOutput) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.Write(p)
}

func (o *procOutput) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.String()
}

// e2eProc is a background qlaunch process.
type e2eProc struct {
	cmd    *exec.Cmd
	stderr *procOutput
	done   chan struct{}
	err    error
}

func e2eStart(t *testing.T, env []string, args ...string) *e2eProc {
	t.Helper()
	p := &e2eProc{cmd: exec.Command(qlaunchBin, args...), stderr: &procOutput{}, done: make(chan struct{})}
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stderr = p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			p.cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

func (p *e2eProc) wait(t *testing.T, what string) {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(20 * time.Second):
		t.Fatalf("%s still running after 20 s; stderr:\n%s", what, p.stderr)
	}
}

// e2eResult runs qlaunch to completion.
type e2eResult struct {
	code           int
	stdout, stderr string
}

func e2eRun(t *testing.T, env []string, stdin string, args ...string) e2eResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, qlaunchBin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := e2eResult{stdout: out.String(), stderr: errb.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("qlaunch %v: %v", args, err)
	}
	return r
}

// e2eProcesses lists the live processes running the test's binary.
func e2eProcesses(bin string) []string {
	var out []string
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		exe, err := os.Readlink(filepath.Join("/proc", e.Name(), "exe"))
		if err != nil || exe != bin {
			continue
		}
		stat, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if f := strings.Fields(string(stat)); len(f) > 2 && f[2] == "Z" {
			continue
		}
		cmdline, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		out = append(out, e.Name()+": "+strings.ReplaceAll(string(cmdline), "\x00", " "))
	}
	return out
}

// TestDetachedTree runs a real detached runtime, BQSKit style: a manager
// spawning a worker rank with 2 slots, a server dialling it, clients.
func TestDetachedTree(t *testing.T) {
	dir := t.TempDir()
	secret := filepath.Join(dir, "secret")
	addrFile := filepath.Join(dir, "addr")
	env := []string{"QLAUNCH_SECRET_FILE=" + secret, "QLAUNCH_ADDR=", "QLAUNCH_ADDRESS_FILE=" + addrFile}
	mport, wport, sport := e2eFreePort(t), e2eFreePort(t), e2eFreePort(t)
	manager := e2eStart(t, env, "manager", "-n", "2", "-p", strconv.Itoa(mport), "-w", strconv.Itoa(wport), "-i", "127.0.0.1")
	server := e2eStart(t, env, "server", "-p", strconv.Itoa(sport), "-i", "127.0.0.1", "--ranks", "3", "127.0.0.1:"+strconv.Itoa(mport))
	if r := e2eRun(t, env, "", "wait", "--ranks", "3", "--timeout", "20s"); r.code != 0 {
		t.Fatalf("wait: %+v\nserver:\n%s\nmanager:\n%s", r, server.stderr, manager.stderr)
	}
	for _, tc := range []struct {
		name   string
		stdin  string
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{"echo", "", []string{"submit", "echo", "hello", "world"}, 0, "hello world\n", ""},
		{"fanout", "", []string{"submit", "fanout", "10", "2"}, 0, "100\n", ""},
		{"fail", "", []string{"submit", "fail", "Boo!"}, 1, "", "Boo! (rank 2, host "},
		{"exec", "abc", []string{"submit", "--input", "-", "exec", "--", "tr", "a-z", "A-Z"}, 0, "ABC\n", ""},
		{"exec-fails", "", []string{"submit", "exec", "--", "sh", "-c", "echo bad >&2; exit 3"}, 1, "", "bad"},
		{"ip-flag", "", []string{"submit", "--ip", "127.0.0.1:" + strconv.Itoa(sport), "echo", "x"}, 0, "x\n", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e2eRun(t, env, tc.stdin, tc.args...)
			if r.code != tc.code || r.stdout != tc.stdout || !strings.Contains(r.stderr, tc.stderr) {
				t.Fatalf("qlaunch %v: got exit %d stdout %q stderr %q; want exit %d stdout %q stderr containing %q",
					tc.args, r.code, r.stdout, r.stderr, tc.code, tc.stdout, tc.stderr)
			}
		})
	}
	// The Go client against the real tree: identity map in order, next
	// without repeats, cancel of a 1 s sleep, two jobs at once.
	t.Run("client", func(t *testing.T) {
		sec, err := wire.LoadSecretFile(secret)
		if err != nil {
			t.Fatal(err)
		}
		ctx := t.Context()
		c, err := client.Dial(ctx, "127.0.0.1:"+strconv.Itoa(sport), client.Options{Secret: sec})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		ts := make([]kernels.Task, 10)
		for i := range ts {
			ts[i] = kernels.Task{Kernel: "echo", Args: []string{strconv.Itoa(i)}}
		}
		f1, _ := c.Map(ctx, ts)
		f2, _ := c.Map(ctx, ts)
		vals, err := c.Wait(ctx, f1)
		if err != nil {
			t.Fatal(err)
		}
		for i, v := range vals {
			if string(v) != strconv.Itoa(i) {
				t.Fatalf("map: result %d = %q", i, v)
			}
		}
		seen := map[int]bool{}
		for len(seen) < 10 {
			rs, err := c.Next(ctx, f2)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range rs {
				if seen[r.Index] || string(r.Value) != strconv.Itoa(r.Index) {
					t.Fatalf("next: %d %q", r.Index, r.Value)
				}
				seen[r.Index] = true
			}
		}
		if _, err := c.Next(ctx, f2); !errors.Is(err, kernels.ErrNoMoreResults) {
			t.Fatalf("next after all: %v", err)
		}
		f3, _ := c.Submit(ctx, kernels.Task{Kernel: "sleep", Args: []string{"1000"}})
		c.Cancel(f3)
		if _, err := c.Wait(ctx, f3); !errors.Is(err, kernels.ErrCancelled) {
			t.Fatalf("cancelled sleep: %v", err)
		}
	})
	// Waiting for more ranks than joined times out naming the missing.
	if r := e2eRun(t, env, "", "wait", "--ranks", "5", "--timeout", "300ms"); r.code != 1 || !strings.Contains(r.stderr, "3 of 5 ranks joined; missing:\n  rank(s) 3, 4: never connected") {
		t.Fatalf("wait for 5 ranks: %+v", r)
	}
	// The status lists the three ranks.
	r := e2eRun(t, env, "", "status", "--format", "json")
	if r.code != 0 || strings.Count(r.stdout, `"rank"`) != 3 || !strings.Contains(r.stdout, `"role": "worker"`) || !strings.Contains(r.stdout, `"slots": 2`) {
		t.Fatalf("status: %+v", r)
	}
	// A client without the secret is refused.
	other := filepath.Join(dir, "other-secret")
	r = e2eRun(t, []string{"QLAUNCH_SECRET_FILE=" + other, "QLAUNCH_ADDRESS_FILE=" + addrFile}, "", "submit", "echo", "x")
	if r.code != 1 || !strings.Contains(r.stderr, "") || r.stdout != "" {
		t.Fatalf("client with another secret: %+v", r)
	}
	os.WriteFile(other, []byte("0123456789abcdef0123456789abcdef0123456789abcdef"), 0o600)
	r = e2eRun(t, []string{"QLAUNCH_SECRET_FILE=" + other, "QLAUNCH_ADDRESS_FILE=" + addrFile}, "", "submit", "echo", "x")
	if r.code != 1 || !strings.Contains(r.stderr, "authentication failed") {
		t.Fatalf("client with another secret: %+v", r)
	}
	// Garbage on the server port changes nothing.
	nc, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(sport))
	if err != nil {
		t.Fatal(err)
	}
	nc.Write(bytes.Repeat([]byte{0xff, 0x00, 0x13}, 1000))
	nc.Close()
	if r := e2eRun(t, env, "", "submit", "fanout", "3", "3"); r.code != 0 || r.stdout != "27\n" {
		t.Fatalf("after garbage: %+v", r)
	}
	// SIGINT to the server stops the whole tree: every process exits 0.
	server.cmd.Process.Signal(syscall.SIGINT)
	server.wait(t, "server")
	manager.wait(t, "manager")
	if server.err != nil || manager.err != nil {
		t.Fatalf("exit: server %v, manager %v\nserver:\n%s\nmanager:\n%s", server.err, manager.err, server.stderr, manager.stderr)
	}
	if left := e2eProcesses(qlaunchBin); len(left) > 0 {
		t.Fatalf("processes left after SIGINT to the server: %v", left)
	}
}

// TestAttachedRun is the README's main command on the shipped topology.
func TestAttachedRun(t *testing.T) {
	topo, err := filepath.Abs("../../configs/local.toml")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	env := []string{"QLAUNCH_ADDRESS_FILE=" + filepath.Join(dir, "addr"), "QLAUNCH_SECRET_FILE=", "QLAUNCH_ADDR="}
	r := e2eRun(t, env, "", "run", topo, "--", qlaunchBin, "submit", "fanout", "10", "2")
	if r.code != 0 || r.stdout != "100\n" {
		t.Fatalf("qlaunch run … submit fanout 10 2: %+v", r)
	}
	// CMD's exit status is qlaunch run's, and a failing task is exit 1.
	r = e2eRun(t, env, "", "run", topo, "--", qlaunchBin, "submit", "fail", "Boo!")
	if r.code != 1 || !strings.Contains(r.stderr, "Boo!") {
		t.Fatalf("qlaunch run … submit fail Boo!: %+v", r)
	}
	r = e2eRun(t, env, "", "run", topo, "--", "sh", "-c", "exit 7")
	if r.code != 7 {
		t.Fatalf("qlaunch run … exit 7: %+v", r)
	}
	if left := e2eProcesses(qlaunchBin); len(left) > 0 {
		t.Fatalf("processes left after qlaunch run: %v", left)
	}
}

// TestAttachedInterrupted sends SIGINT to qlaunch run while its command
// runs: the command is interrupted, the runtime stops, nothing is left.
func TestAttachedInterrupted(t *testing.T) {
	topo, _ := filepath.Abs("../../configs/local.toml")
	dir := t.TempDir()
	cmd := exec.Command(qlaunchBin, "run", topo, "--", "sh", "-c", "echo started; exec "+qlaunchBin+" submit sleep 60000")
	cmd.Env = append(os.Environ(), "QLAUNCH_ADDRESS_FILE="+filepath.Join(dir, "addr"), "QLAUNCH_SECRET_FILE=", "QLAUNCH_ADDR=")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	line := make([]byte, len("started\n"))
	if _, err := io.ReadFull(out, line); err != nil || string(line) != "started\n" {
		cmd.Process.Kill()
		t.Fatalf("command did not start: %q %v", line, err)
	}
	go func() { done <- cmd.Wait() }()
	cmd.Process.Signal(syscall.SIGINT)
	select {
	case err := <-done:
		// The command was interrupted; qlaunch run passes its status on.
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() == 0 {
			t.Fatalf("qlaunch run after SIGINT: %v, want the interrupted command's non-zero status", err)
		}
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		t.Fatal("qlaunch run still running 20 s after SIGINT")
	}
	if left := e2eProcesses(qlaunchBin); len(left) > 0 {
		t.Fatalf("processes left after SIGINT to qlaunch run: %v", left)
	}
}

// TestBenchChain runs the chain workload as users do: qlaunch bench
// starts its relay and echo processes from its own binary (the hidden
// bench-hop subcommand), measures through them and leaves none behind.
func TestBenchChain(t *testing.T) {
	r := e2eRun(t, nil, "", "bench", "--workload", "chain", "--repeat", "1", "--format", "json")
	if r.code != 0 {
		t.Fatalf("qlaunch bench --workload chain: %+v", r)
	}
	lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
	want := []struct{ variant, figure string }{{"round-trip", "median_us"}, {"bulk", "MB_per_s"}}
	if len(lines) != 1+len(want) {
		t.Fatalf("%d lines, want a header and %d:\n%s", len(lines), len(want), r.stdout)
	}
	for i, w := range want {
		var m map[string]any
		if err := json.Unmarshal([]byte(lines[i+1]), &m); err != nil {
			t.Fatalf("line %d: %v: %s", i+1, err, lines[i+1])
		}
		if v, ok := m[w.figure].(float64); m["workload"] != "chain" || m["variant"] != w.variant || !ok || v <= 0 {
			t.Errorf("line %s, want chain/%s with a positive %s", lines[i+1], w.variant, w.figure)
		}
	}
	if left := e2eProcesses(qlaunchBin); len(left) > 0 {
		t.Fatalf("processes left after qlaunch bench: %v", left)
	}
	if r := e2eRun(t, nil, "", bench.HopArg, "warp"); r.code != 2 || !strings.Contains(r.stderr, "want echo or relay ADDR") {
		t.Errorf("qlaunch bench-hop warp: %+v, want exit 2 naming the usage", r)
	}
}
