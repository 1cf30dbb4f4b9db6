package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/qlaunch/qlaunch/launcher/wire"
)

// plannedTree is a job of real processes started from a topology, as srun
// starts one: three ranks on node localhost (rank 0 the server and the
// node's manager, ranks 1 and 2 worker ranks of one slot).
type plannedTree struct {
	topo, addrFile string
	env            []string // shared by every rank and client
	port           int
}

func newPlannedTree(t *testing.T) *plannedTree {
	t.Helper()
	dir := t.TempDir()
	p := &plannedTree{topo: filepath.Join(dir, "job.toml"), addrFile: filepath.Join(dir, "addr"), port: e2eFreePort(t)}
	text := fmt.Sprintf("[runtime]\nport = %d\n[workers]\nranks_per_node = 2\nslots_per_rank = 1\npin = \"none\"\n", p.port)
	if err := os.WriteFile(p.topo, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	secret := filepath.Join(dir, "secret")
	if _, err := wire.EnsureSecretFile(secret); err != nil {
		t.Fatal(err)
	}
	p.env = []string{"QLAUNCH_SECRET_FILE=" + secret, "QLAUNCH_ADDRESS_FILE=" + p.addrFile, "QLAUNCH_ADDR=", "QLAUNCH_MPI=0"}
	return p
}

// start starts plan rank procid as srun would.
func (p *plannedTree) start(t *testing.T, procid int) *e2eProc {
	env := append([]string(nil), p.env...)
	for k, v := range slurmRank("localhost", procid, 3) {
		env = append(env, k+"="+v)
	}
	return e2eStart(t, env, p.topo)
}

// TestWaitPlannedTree: qlaunch wait on a job started from a plan names
// the rank that never started with its host (exit 1), returns 0 once it
// has joined, and names it again, lost, when its process dies. Between,
// qlaunch status --format json shows the tree with exact done counts.
func TestWaitPlannedTree(t *testing.T) {
	p := newPlannedTree(t)
	server := p.start(t, 0)
	p.start(t, 1)
	r := e2eRun(t, p.env, "", "wait", "--address-file", p.addrFile, "--timeout", "3s")
	want := "qlaunch: wait: timed out after 3s: 2 of 3 ranks joined; missing:\n  rank 2 (worker) on localhost: never connected\n"
	if r.code != 1 || r.stderr != want {
		t.Fatalf("wait with rank 2 not started: exit %d, stderr %q; want exit 1, %q\nserver:\n%s", r.code, r.stderr, want, server.stderr)
	}

	third := p.start(t, 2)
	if r := e2eRun(t, p.env, "", "wait", "--address-file", p.addrFile, "--timeout", "20s"); r.code != 0 || r.stderr != "" {
		t.Fatalf("wait with every rank started: %+v\nserver:\n%s", r, server.stderr)
	}
	if r := e2eRun(t, p.env, "", "submit", "fanout", "3", "2"); r.code != 0 || r.stdout != "9\n" {
		t.Fatalf("fanout 3 2: %+v", r)
	}
	r = e2eRun(t, p.env, "", "status", "--format", "json")
	var snap statusSnapshot
	if err := json.Unmarshal([]byte(r.stdout), &snap); r.code != 0 || err != nil {
		t.Fatalf("status: %+v: %v", r, err)
	}
	type line struct {
		rank, parent int
		role, state  string
		slots, idle  int
	}
	var got []line
	var done uint64
	for _, l := range snap.Ranks {
		got = append(got, line{l.Rank, l.Parent, l.Role, l.State, l.Slots, l.Idle})
		if l.Host != "localhost" || l.Busy != 0 || l.Queued != 0 || l.Running != 0 || l.HeartbeatAge < 0 || l.HeartbeatAge > 10 {
			t.Errorf("rank %d: %+v", l.Rank, l)
		}
		if l.Role == "worker" {
			done += l.Done
		}
	}
	// Workers answer in any order, after the server.
	if len(got) != 3 || got[0] != (line{0, -1, "server", "joined", 2, 2}) ||
		!(got[1] == line{1, 0, "worker", "joined", 1, 1} && got[2] == line{2, 0, "worker", "joined", 1, 1} ||
			got[1] == line{2, 0, "worker", "joined", 1, 1} && got[2] == line{1, 0, "worker", "joined", 1, 1}) {
		t.Fatalf("status lines %+v", got)
	}
	if done != 13 { // fanout 3 2: 1 + 3 + 9 tasks
		t.Fatalf("workers report %d tasks done, want 13: %s", done, r.stdout)
	}

	// --watch, piped: one JSON object a line; from the second on, each
	// joined rank has a rate. SIGINT ends it with status 0.
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	watch := exec.CommandContext(ctx, qlaunchBin, "status", "--watch=100ms", "--format", "json")
	watch.Env = append(os.Environ(), p.env...)
	out, err := watch.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := watch.Start(); err != nil {
		t.Fatal(err)
	}
	lines := bufio.NewScanner(out)
	for i := range 2 {
		if !lines.Scan() {
			t.Fatalf("status --watch: line %d missing: %v", i, lines.Err())
		}
		var snap statusSnapshot
		if err := json.Unmarshal(lines.Bytes(), &snap); err != nil || len(snap.Ranks) != 3 {
			t.Fatalf("status --watch line %d: %v: %s", i, err, lines.Bytes())
		}
		for _, l := range snap.Ranks {
			if (l.TasksPerSecond != nil) != (i == 1) || l.TasksPerSecond != nil && *l.TasksPerSecond != 0 {
				t.Fatalf("status --watch line %d: rank %d: %v tasks/s", i, l.Rank, l.TasksPerSecond)
			}
		}
	}
	watch.Process.Signal(syscall.SIGINT)
	if err := watch.Wait(); err != nil {
		t.Fatalf("status --watch after SIGINT: %v", err)
	}

	third.cmd.Process.Kill()
	third.wait(t, "rank 2")
	addr := "127.0.0.1:" + strconv.Itoa(p.port)
	r = e2eRun(t, p.env, "", "wait", "--ip", addr, "--timeout", "3s")
	lost := regexp.MustCompile(`^qlaunch: wait: timed out after 3s: 2 of 3 ranks joined; missing:\n` +
		`  rank 2 \(worker\) on localhost: lost at \d\d:\d\d:\d\d\.\d\d\d \([0-9.]+m?s ago\): connection lost: .+\n$`)
	if r.code != 1 || !lost.MatchString(r.stderr) {
		t.Fatalf("wait after rank 2 died: exit %d, stderr %q", r.code, r.stderr)
	}

	server.cmd.Process.Signal(syscall.SIGINT)
	server.wait(t, "the server")
	if _, err := os.Stat(p.addrFile + ".starting"); !os.IsNotExist(err) {
		t.Errorf("starting file left behind: %v", err)
	}
}

// TestWaitManual: without a plan --ranks N still works; a server that
// never started is reported as such.
func TestWaitManual(t *testing.T) {
	dir := t.TempDir()
	env := []string{"QLAUNCH_SECRET_FILE=" + filepath.Join(dir, "secret"), "QLAUNCH_ADDR=", "QLAUNCH_ADDRESS_FILE=" + filepath.Join(dir, "addr")}
	r := e2eRun(t, env, "", "wait", "--timeout", "300ms")
	if r.code != 1 || !strings.HasPrefix(r.stderr, "qlaunch: wait: timed out after 300ms: no runtime found: the server has not written "+filepath.Join(dir, "addr")+" (not ready), nor "+filepath.Join(dir, "addr")+".starting (not started)") {
		t.Fatalf("wait with no runtime: %+v", r)
	}
	sport := e2eFreePort(t)
	e2eStart(t, env, "server", "-p", strconv.Itoa(sport), "-i", "127.0.0.1", "--ranks", "2")
	addr := "127.0.0.1:" + strconv.Itoa(sport)
	r = e2eRun(t, env, "", "wait", "--ip", addr, "--ranks", "3", "--timeout", "1s")
	want := "qlaunch: wait: timed out after 1s: 1 of 3 ranks joined; missing:\n  rank(s) 1, 2: never connected (host unknown: the server was started without a plan)\n"
	if r.code != 1 || r.stderr != want {
		t.Fatalf("wait --ranks 3: exit %d stderr %q, want %q", r.code, r.stderr, want)
	}
	if r := e2eRun(t, env, "", "wait", "--ip", addr, "--ranks", "1", "--timeout", "10s"); r.code != 0 {
		t.Fatalf("wait --ranks 1: %+v", r)
	}
}
