package cli

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestWaitFailsFastOnRankError: every rank of a job fails at start (its
// network names no interface); each records its error in the rank error
// file, and qlaunch wait, given 60 s, fails within seconds quoting the
// first one. With --pid naming the ranks' launcher, it fails as soon as
// that process is gone, quoting the first rank's error too.
func TestWaitFailsFastOnRankError(t *testing.T) {
	dir := t.TempDir()
	topo := filepath.Join(dir, "job.toml")
	text := fmt.Sprintf("[runtime]\nport = %d\nnetwork = \"qlnone0\"\n[workers]\nranks_per_node = 2\nslots_per_rank = 1\npin = \"none\"\n", e2eFreePort(t))
	if err := os.WriteFile(topo, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	errFile := filepath.Join(dir, "errors")
	env := []string{"QLAUNCH_SECRET_FILE=" + filepath.Join(dir, "secret"), "QLAUNCH_ADDRESS_FILE=" + filepath.Join(dir, "addr"),
		"QLAUNCH_ADDR=", "QLAUNCH_MPI=0", errorFileEnv + "=" + errFile}
	var ranks []*e2eProc
	for procid := range 3 {
		renv := append([]string(nil), env...)
		for k, v := range slurmRank("localhost", procid, 3) {
			renv = append(renv, k+"="+v)
		}
		ranks = append(ranks, e2eStart(t, renv, topo))
	}
	start := time.Now()
	r := e2eRun(t, env, "", "wait", "--timeout", "60s")
	took := time.Since(start)
	if r.code != 1 || !strings.HasPrefix(r.stderr, "qlaunch: wait: a rank failed before every rank joined; first rank error: rank ") ||
		!strings.Contains(r.stderr, "no interface qlnone0") || took > 10*time.Second {
		t.Fatalf("wait after every rank failed: exit %d after %v, stderr %q", r.code, took, r.stderr)
	}
	for _, p := range ranks {
		<-p.done
	}
	b, err := os.ReadFile(errFile)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	if len(lines) != 3 {
		t.Fatalf("%d lines in the rank error file, want one per rank:\n%s", len(lines), b)
	}
	for procid := range 3 {
		want := fmt.Sprintf("rank %d on localhost", procid)
		found := false
		for _, l := range lines {
			found = found || strings.HasPrefix(l, want+": ") || strings.HasPrefix(l, want+" (")
		}
		if !found {
			t.Errorf("no line of rank %d (%q…) in the rank error file:\n%s", procid, want, b)
		}
	}
	if !strings.Contains(r.stderr, lines[0]) {
		t.Errorf("wait does not quote the first line %q: %q", lines[0], r.stderr)
	}

	// --pid: the launcher is gone, the error file still names the first
	// error.
	launcher := exec.Command("sh", "-c", "exit 3")
	if err := launcher.Run(); err == nil {
		t.Fatal("sh -c 'exit 3' succeeded")
	}
	pid := launcher.Process.Pid
	r = e2eRun(t, env, "", "wait", "--timeout", "60s", "--pid", strconv.Itoa(pid))
	want := fmt.Sprintf("qlaunch: wait: the runtime (pid %d) exited before every rank joined; first rank error: %s\n", pid, lines[0])
	if r.code != 1 || r.stderr != want {
		t.Fatalf("wait --pid of an exited launcher: exit %d, stderr %q; want 1, %q", r.code, r.stderr, want)
	}
	// Without any rank error, it says where to look.
	r = e2eRun(t, append(env, errorFileEnv+"="+filepath.Join(dir, "none")), "", "wait", "--timeout", "60s", "--pid", strconv.Itoa(pid))
	want = fmt.Sprintf("qlaunch: wait: the runtime (pid %d) exited before every rank joined; no rank recorded an error: see its output\n", pid)
	if r.code != 1 || r.stderr != want {
		t.Fatalf("wait --pid, no rank error: exit %d, stderr %q; want 1, %q", r.code, r.stderr, want)
	}
}

// TestFirstRankError: the first line, whatever follows; nothing from a
// missing or empty file.
func TestFirstRankError(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct{ content, want string }{
		{"rank 1 on n1: boom\nrank 2 on n2: echo\n", "rank 1 on n1: boom"},
		{"rank 1 on n1: no newline", "rank 1 on n1: no newline"},
		{"", ""},
		{strings.Repeat("x", 2*maxErrorLine), strings.Repeat("x", maxErrorLine)},
	} {
		p := filepath.Join(dir, "f")
		if err := os.WriteFile(p, []byte(c.content), 0o600); err != nil {
			t.Fatal(err)
		}
		if got := firstRankError(p); got != c.want {
			t.Errorf("firstRankError(%.20q…) = %.20q…, want %.20q…", c.content, got, c.want)
		}
	}
	if got := firstRankError(filepath.Join(dir, "missing")); got != "" {
		t.Errorf("missing file: %q", got)
	}
	if got := firstRankError(""); got != "" {
		t.Errorf("no file: %q", got)
	}
}

// TestProcessGone: a live process is not gone; one that exited is, while
// a zombie its parent has not reaped and after.
func TestProcessGone(t *testing.T) {
	if processGone(os.Getpid()) {
		t.Fatal("this process is gone")
	}
	c := exec.Command("sh", "-c", "exit 0")
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	// Wait for the exit without reaping (WNOWAIT): the child is a zombie.
	var info unix.Siginfo
	if err := unix.Waitid(unix.P_PID, c.Process.Pid, &info, unix.WEXITED|unix.WNOWAIT, nil); err != nil {
		t.Fatal(err)
	}
	if !processGone(c.Process.Pid) {
		t.Error("a zombie is not gone")
	}
	if err := c.Wait(); err != nil {
		t.Fatal(err)
	}
	if !processGone(c.Process.Pid) {
		t.Error("a reaped process is not gone")
	}
}

// TestWaitIgnoresAnEarlierRuntimesAddressFile: with --pid, an address file
// written before that process started is an earlier runtime's: wait does
// not take it for ready; one written since is.
func TestWaitIgnoresAnEarlierRuntimesAddressFile(t *testing.T) {
	launcher := exec.Command("sleep", "60")
	if err := launcher.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { launcher.Process.Kill(); launcher.Wait() })
	pid := strconv.Itoa(launcher.Process.Pid)
	if st := processStart(launcher.Process.Pid); st.IsZero() || time.Since(st) > time.Minute || time.Until(st) > 2*time.Second {
		t.Fatalf("processStart of a process started just now: %v", st)
	}
	addr := filepath.Join(t.TempDir(), "addr")
	if err := os.WriteFile(addr, []byte("127.0.0.1:1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-time.Hour)
	if err := os.Chtimes(addr, old, old); err != nil {
		t.Fatal(err)
	}
	r := e2eRun(t, []string{"QLAUNCH_ADDR=", errorFileEnv + "="}, "", "wait", "--address-file", addr, "--pid", pid, "--timeout", "1s")
	if r.code != 1 || !strings.Contains(r.stderr, "is older than the runtime: an earlier runtime's") {
		t.Fatalf("wait --pid with an hour-old address file: exit %d, stderr %q", r.code, r.stderr)
	}
	now := time.Now()
	if err := os.Chtimes(addr, now, now); err != nil {
		t.Fatal(err)
	}
	// Written since: taken as this runtime's, so wait dials the server it
	// names (here nothing listens: the file says the runtime is gone).
	r = e2eRun(t, []string{"QLAUNCH_ADDR=", errorFileEnv + "="}, "", "wait", "--address-file", addr, "--pid", pid, "--timeout", "1s")
	if r.code != 1 || strings.Contains(r.stderr, "older than the runtime") || !strings.Contains(r.stderr, "127.0.0.1:1") {
		t.Fatalf("wait --pid with an address file written since: exit %d, stderr %q", r.code, r.stderr)
	}
}
