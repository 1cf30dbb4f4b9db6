package cli

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/qlaunch/qlaunch/kernels"
	"github.com/qlaunch/qlaunch/launcher/client"
	"github.com/qlaunch/qlaunch/launcher/wire"
)

// TestDrainRealRank drains one of two real worker-rank processes in the
// middle of a map: every task runs exactly once and succeeds, the drained
// process exits 0, status shows it drained and the other rank serving.
func TestDrainRealRank(t *testing.T) {
	dir := t.TempDir()
	secret := filepath.Join(dir, "secret")
	runs := filepath.Join(dir, "runs")
	env := []string{"QLAUNCH_SECRET_FILE=" + secret, "QLAUNCH_ADDR=", "QLAUNCH_ADDRESS_FILE=" + filepath.Join(dir, "addr")}
	if _, err := wire.EnsureSecretFile(secret); err != nil {
		t.Fatal(err)
	}
	mport, wport, sport := e2eFreePort(t), e2eFreePort(t), e2eFreePort(t)
	manager := e2eStart(t, env, "manager", "-x", "-p", strconv.Itoa(mport), "-w", strconv.Itoa(wport), "-i", "127.0.0.1")
	w2 := e2eStart(t, env, "worker", "1", "--rank", "2", "-p", strconv.Itoa(wport))
	w3 := e2eStart(t, env, "worker", "1", "--rank", "3", "-p", strconv.Itoa(wport))
	server := e2eStart(t, env, "server", "-p", strconv.Itoa(sport), "-i", "127.0.0.1", "--ranks", "4", "127.0.0.1:"+strconv.Itoa(mport))
	if r := e2eRun(t, env, "", "wait", "--ranks", "4", "--timeout", "20s"); r.code != 0 {
		t.Fatalf("wait: %+v\nserver:\n%s\nmanager:\n%s", r, server.stderr, manager.stderr)
	}
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
	// Each task notes its run in a file, then takes a while.
	const n = 16
	script := `read i; echo "$i" >> ` + runs + `; sleep 0.2; echo "$i"`
	ts := make([]kernels.Task, n)
	for i := range ts {
		ts[i] = kernels.Task{Kernel: "exec", Args: []string{"--", "sh", "-c", script}, Payload: []byte(strconv.Itoa(i) + "\n")}
	}
	f, err := c.Map(ctx, ts)
	if err != nil {
		t.Fatal(err)
	}
	first, err := c.Next(ctx, f)
	if err != nil || len(first) == 0 {
		t.Fatalf("first results: %v %v", first, err)
	}
	if r := e2eRun(t, env, "", "drain", "2"); r.code != 0 || r.stdout != "drained ranks 2\n" {
		t.Fatalf("drain 2: %+v\nmanager:\n%s\nworker 2:\n%s", r, manager.stderr, w2.stderr)
	}
	w2.wait(t, "the drained worker rank")
	if w2.err != nil {
		t.Fatalf("the drained worker rank exited with %v, want 0; stderr:\n%s", w2.err, w2.stderr)
	}
	got := len(first)
	for _, r := range first {
		if r.Err != nil {
			t.Fatalf("task %d: %v", r.Index, r.Err)
		}
	}
	for got < n {
		rs, err := c.Next(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rs {
			if r.Err != nil {
				t.Fatalf("task %d failed after the drain: %v", r.Index, r.Err)
			}
		}
		got += len(rs)
	}
	b, err := os.ReadFile(runs)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Fields(string(b))
	slices.SortFunc(lines, func(a, b string) int { x, _ := strconv.Atoi(a); y, _ := strconv.Atoi(b); return x - y })
	want := make([]string, n)
	for i := range want {
		want[i] = strconv.Itoa(i)
	}
	if !slices.Equal(lines, want) {
		t.Fatalf("task runs %v, want each of 0..%d exactly once", lines, n-1)
	}
	r := e2eRun(t, env, "", "status")
	if r.code != 0 || !regexpLine(r.stdout, "2", "drained") || !regexpLine(r.stdout, "3", "joined") {
		t.Fatalf("status after the drain:\n%s%s", r.stdout, r.stderr)
	}
	if r := e2eRun(t, env, "", "drain", "2"); r.code != 2 || !strings.Contains(r.stderr, "rank 2 is not in the tree") {
		t.Fatalf("drain of a drained rank: %+v, want exit 2 naming it", r)
	}
	select {
	case <-w3.done:
		t.Fatalf("worker rank 3 exited: %v\n%s", w3.err, w3.stderr)
	default:
	}
}

// regexpLine reports whether a line of out starts (after indentation) with
// the field first and has a field equal to word.
func regexpLine(out, first, word string) bool {
	for l := range strings.SplitSeq(out, "\n") {
		f := strings.Fields(l)
		if len(f) > 0 && f[0] == first && slices.Contains(f, word) {
			return true
		}
	}
	return false
}

// TestDrainHostSupervised drains a host whose manager spawned (and
// supervises) its worker rank: the worker rank is not started again, the
// manager leaves after it and shows as drained, the manager exits 0 and
// no process of theirs is left; the server goes on.
func TestDrainHostSupervised(t *testing.T) {
	dir := t.TempDir()
	env := []string{"QLAUNCH_SECRET_FILE=" + filepath.Join(dir, "secret"), "QLAUNCH_ADDR=", "QLAUNCH_ADDRESS_FILE=" + filepath.Join(dir, "addr")}
	if _, err := wire.EnsureSecretFile(filepath.Join(dir, "secret")); err != nil {
		t.Fatal(err)
	}
	mport, wport, sport := e2eFreePort(t), e2eFreePort(t), e2eFreePort(t)
	manager := e2eStart(t, env, "manager", "-n", "1", "-p", strconv.Itoa(mport), "-w", strconv.Itoa(wport), "-i", "127.0.0.1")
	server := e2eStart(t, env, "server", "-p", strconv.Itoa(sport), "-i", "127.0.0.1", "--ranks", "3", "127.0.0.1:"+strconv.Itoa(mport))
	if r := e2eRun(t, env, "", "wait", "--ranks", "3", "--timeout", "20s"); r.code != 0 {
		t.Fatalf("wait: %+v", r)
	}
	host, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	r := e2eRun(t, env, "", "drain", host)
	if r.code != 0 || !strings.HasPrefix(r.stdout, "drained ranks ") {
		t.Fatalf("drain %s: %+v", host, r)
	}
	manager.wait(t, "the drained manager")
	if manager.err != nil {
		t.Fatalf("the drained manager exited with %v, want 0; stderr:\n%s", manager.err, manager.stderr)
	}
	if strings.Contains(manager.stderr.String(), "restarted") {
		t.Fatalf("the drained worker rank was started again:\n%s", manager.stderr)
	}
	for _, p := range e2eProcesses(qlaunchBin) {
		if strings.Contains(p, strconv.Itoa(wport)) || strings.Contains(p, strconv.Itoa(mport)) && !strings.Contains(p, "server") {
			t.Fatalf("a process of the drained host is left: %s", p)
		}
	}
	st := e2eRun(t, env, "", "status", "--format", "json")
	// The server sees its child, the manager, drained (the worker rank's
	// row left with the manager).
	if st.code != 0 || strings.Count(st.stdout, `"state": "drained"`) != 1 || strings.Contains(st.stdout, `"lost"`) {
		t.Fatalf("status after draining the host:\n%s%s", st.stdout, st.stderr)
	}
	select {
	case <-server.done:
		t.Fatalf("the server exited: %v\n%s", server.err, server.stderr)
	default:
	}
}
