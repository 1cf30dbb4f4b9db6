package reliability_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/qlaunch/qlaunch/kernels"
	"github.com/qlaunch/qlaunch/launcher/client"
	"github.com/qlaunch/qlaunch/launcher/wire"
	"github.com/qlaunch/qlaunch/reliability"
)

// Bounds of every wait in this package.
const (
	startBound = 30 * time.Second // a tree to join, a task to start
	exitBound  = 15 * time.Second // processes to exit on their own after a fault
)

// record is a test's row of the report, written when the test ends.
type record struct{ reliability.Row }

func newRecord(t *testing.T, name string) *record {
	r := &record{reliability.Row{Test: name, Detection: "-", Left: "-", Memory: "-"}}
	path := os.Getenv("QLAUNCH_RELIABILITY_REPORT")
	t.Cleanup(func() {
		switch {
		case t.Failed():
			r.Outcome = "FAIL"
		case t.Skipped():
			r.Outcome = "skip"
		default:
			r.Outcome = "pass"
		}
		t.Logf("report: %s | %s | detection %s | left %s | memory %s | %s", r.Test, r.Outcome, r.Detection, r.Left, r.Memory, r.Note)
		if path != "" {
			if err := reliability.AppendRow(path, r.Row); err != nil {
				t.Errorf("report: %v", err)
			}
		}
	})
	return r
}

func ms(d time.Duration) string {
	return strconv.FormatFloat(float64(d.Microseconds())/1000, 'f', 1, 64) + " ms"
}

// lockedBuffer collects a process's output.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// proc is a process started by a test; it is killed and waited for when
// the test ends.
type proc struct {
	name string
	cmd  *exec.Cmd
	out  *lockedBuffer
	done chan struct{}
	err  error
}

func startProc(t *testing.T, env []string, name, bin string, args ...string) *proc {
	t.Helper()
	return startProcIn(t, "", env, name, bin, args...)
}

// startProcIn is startProc with dir as the process's working directory
// ("" the test's).
func startProcIn(t *testing.T, dir string, env []string, name, bin string, args ...string) *proc {
	t.Helper()
	p := &proc{name: name, cmd: exec.Command(bin, args...), out: &lockedBuffer{}, done: make(chan struct{})}
	p.cmd.Dir, p.cmd.Env = dir, append(os.Environ(), env...)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			p.cmd.Process.Signal(syscall.SIGCONT)
			p.cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

// exited waits up to d for p to exit.
func (p *proc) exited(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-p.done:
		return true
	case <-t.C:
		return false
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func hostPort(p int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(p)) }

// tree is a detached qlaunch tree of real processes started by a test.
// Every process it starts names r.dir on its command line (the secret
// file), which is how leftovers are found.
type tree struct {
	t          *testing.T
	dir        string
	secretPath string
	secret     wire.Secret
	env        []string
	procs      []*proc
	server     *proc
	serverAddr string
	ranks      int // of the whole tree, the server included
	// linkArgs are flags given to every rank started after they are set
	// (--heartbeat, --max-handshakes …).
	linkArgs []string
}

func newTree(t *testing.T) *tree {
	t.Helper()
	dir := t.TempDir()
	r := &tree{t: t, dir: dir, secretPath: filepath.Join(dir, "secret")}
	s, err := wire.EnsureSecretFile(r.secretPath)
	if err != nil {
		t.Fatal(err)
	}
	r.secret = s
	r.env = []string{"QLAUNCH_ADDR=", "QLAUNCH_SECRET_FILE=" + r.secretPath, "QLAUNCH_ADDRESS_FILE=" + filepath.Join(dir, "addr")}
	// Whatever a test leaves, nothing of its tree outlives it.
	t.Cleanup(func() {
		for _, p := range reliability.Processes(reliability.CmdlineContains(dir)) {
			syscall.Kill(p.PID, syscall.SIGKILL)
		}
	})
	return r
}

// qlaunch starts a qlaunch process of the tree.
func (r *tree) qlaunch(name string, args ...string) *proc {
	head := append([]string{args[0], "--secret-file", r.secretPath}, r.linkArgs...)
	p := startProc(r.t, r.env, name, qlaunchBin, append(head, args[1:]...)...)
	r.procs = append(r.procs, p)
	return p
}

// manager starts "qlaunch manager" with its rank number; extra are more
// flags (-n 1, -x, -m ADDR). It returns the process and its parent port.
func (r *tree) manager(rank int, extra ...string) (*proc, int) {
	port := freePort(r.t)
	args := append([]string{"manager", "-p", strconv.Itoa(port), "-w", strconv.Itoa(freePort(r.t)), "-i", "127.0.0.1", "--rank", strconv.Itoa(rank)}, extra...)
	return r.qlaunch("manager-"+strconv.Itoa(rank), args...), port
}

// startServer starts the server dialling managers and waits (qlaunch
// wait) until ranks ranks joined.
func (r *tree) startServer(ranks int, managers ...string) {
	r.t.Helper()
	port := freePort(r.t)
	r.serverAddr = hostPort(port)
	r.ranks = ranks
	args := append([]string{"server", "-p", strconv.Itoa(port), "-i", "127.0.0.1", "--ranks", strconv.Itoa(ranks),
		"--address-file", filepath.Join(r.dir, "addr")}, managers...)
	r.server = r.qlaunch("server", args...)
	r.waitReady()
}

func (r *tree) waitReady() {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(r.t.Context(), startBound)
	defer cancel()
	cmd := exec.CommandContext(ctx, qlaunchBin, "wait", "--ip", r.serverAddr, "--secret-file", r.secretPath,
		"--ranks", strconv.Itoa(r.ranks), "--timeout", "25s")
	cmd.Env = append(os.Environ(), r.env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		r.t.Fatalf("qlaunch wait: %v\n%s\n%s", err, out, r.logs())
	}
}

func (r *tree) logs() string {
	var b strings.Builder
	for _, p := range r.procs {
		fmt.Fprintf(&b, "--- %s (pid %d):\n%s", p.name, p.pid(), p.out)
	}
	return b.String()
}

func (r *tree) client() *client.Client {
	r.t.Helper()
	c, err := client.Dial(r.t.Context(), r.serverAddr, client.Options{Secret: r.secret, Host: "reliability-test"})
	if err != nil {
		r.t.Fatal(err)
	}
	r.t.Cleanup(func() { c.Close() })
	return c
}

// flat starts a manager waiting for worker ranks (-x), n worker ranks of
// one slot each (ranks 2 … n+1) and the server; it returns the workers by
// rank.
func (r *tree) flat(n int) map[int]*proc {
	r.t.Helper()
	m, mport := r.manager(1, "-x")
	workers := r.workers(m, 2, slices.Repeat([]int{1}, n)...)
	r.startServer(n+2, hostPort(mport))
	return workers
}

// workers starts worker ranks below manager m (started with -x), one per
// element of slots with that many slots, ranked first, first+1 …; it
// returns them by rank.
func (r *tree) workers(m *proc, first int, slots ...int) map[int]*proc {
	r.t.Helper()
	var wport string
	for i, a := range m.cmd.Args {
		if a == "-w" {
			wport = m.cmd.Args[i+1]
		}
	}
	workers := map[int]*proc{}
	for i, n := range slots {
		rank := first + i
		workers[rank] = r.qlaunch("worker-"+strconv.Itoa(rank), "worker", strconv.Itoa(n), "--manager", "127.0.0.1:"+wport, "--rank", strconv.Itoa(rank))
	}
	return workers
}

// leftover waits up to bound for every process naming the tree's
// directory to exit, but those keep selects; it returns those still alive.
func (r *tree) leftover(bound time.Duration, keep func(reliability.Process) bool) []reliability.Process {
	deadline := time.Now().Add(bound)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		left := reliability.Processes(func(p reliability.Process) bool {
			return strings.Contains(p.Cmdline, r.dir) && (keep == nil || !keep(p))
		})
		if len(left) == 0 || time.Now().After(deadline) {
			return left
		}
		<-tick.C
	}
}

// shutdown stops the tree with SIGINT to the server and checks that every
// process exits and none is left.
func (r *tree) shutdown() []reliability.Process {
	r.t.Helper()
	if r.server != nil {
		r.server.cmd.Process.Signal(syscall.SIGINT)
	}
	for _, p := range r.procs {
		if !p.exited(exitBound) {
			r.t.Errorf("%s still running %v after SIGINT to the server", p.name, exitBound)
		}
	}
	left := r.leftover(exitBound, nil)
	if len(left) > 0 {
		r.t.Errorf("processes left after the shutdown: %v", left)
	}
	return left
}

// gates drives GatedTasks: it reads their ready lines and releases them.
type gates struct {
	t     *testing.T
	dir   string
	lines chan readyLine
	mu    sync.Mutex
	open  []*os.File
}

type readyLine struct{ index, ppid, pid int }

func newGates(t *testing.T, dir string, n int) *gates {
	t.Helper()
	g := &gates{t: t, dir: dir, lines: make(chan readyLine, 64)}
	for i := -1; i < n; i++ {
		path := reliability.ReadyFIFO(dir)
		if i >= 0 {
			path = reliability.GateFIFO(dir, i)
		}
		if err := syscall.Mkfifo(path, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// Opened read-write: neither this open nor the tasks' opens block.
	f, err := os.OpenFile(reliability.ReadyFIFO(dir), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	g.open = append(g.open, f)
	go func() {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			var l readyLine
			if _, err := fmt.Sscan(sc.Text(), &l.index, &l.ppid, &l.pid); err == nil {
				g.lines <- l
			}
		}
	}()
	t.Cleanup(func() {
		g.mu.Lock()
		defer g.mu.Unlock()
		for _, f := range g.open {
			f.Close()
		}
	})
	return g
}

// next returns the next task's ready line.
func (g *gates) next() readyLine {
	g.t.Helper()
	select {
	case l := <-g.lines:
		return l
	case <-time.After(startBound):
		g.t.Fatalf("no gated task started within %v", startBound)
		return readyLine{}
	}
}

// release lets task i finish. The FIFO stays open (read-write) until the
// test ends, so the line waits for the task whenever it opens its end.
func (g *gates) release(i int) {
	g.t.Helper()
	f, err := os.OpenFile(reliability.GateFIFO(g.dir, i), os.O_RDWR, 0)
	if err != nil {
		g.t.Fatal(err)
	}
	g.mu.Lock()
	g.open = append(g.open, f)
	g.mu.Unlock()
	if _, err := io.WriteString(f, "go\n"); err != nil {
		g.t.Fatal(err)
	}
}

// rankOf returns the --rank of process pid: a worker rank, or the exec
// guard under which a rank runs an exec task's command (the guard's parent
// is the rank).
func rankOf(t *testing.T, pid int) int {
	t.Helper()
	p, ok := reliability.FindProcess(pid)
	if ok && strings.Contains(p.Cmdline, " "+kernels.ExecGuardArg+" ") {
		p, ok = reliability.FindProcess(p.PPID)
	}
	f := strings.Fields(p.Cmdline)
	for i := 0; ok && i+1 < len(f); i++ {
		if f[i] == "--rank" {
			n, _ := strconv.Atoi(f[i+1])
			return n
		}
	}
	t.Fatalf("process %d (%q) has no --rank", pid, p.Cmdline)
	return 0
}

// hostname is what ranks report as their host.
func hostname(t *testing.T) string {
	h, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// lostError checks that err is the client's error for a task lost with
// rank on this host.
func lostError(t *testing.T, err error, rank int) {
	t.Helper()
	var te *client.TaskError
	if !errors.As(err, &te) || !errors.Is(err, client.ErrRankLost) || te.Rank != rank || te.Host != hostname(t) {
		t.Fatalf("got %v (%+v), want a lost-rank error naming rank %d on %s", err, te, rank, hostname(t))
	}
	if want := fmt.Sprintf("rank %d on %s lost", rank, hostname(t)); !strings.Contains(err.Error(), want) {
		t.Fatalf("error %q does not say %q", err, want)
	}
}
