package cli

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestUsageErrorIsOneLine checks that a usage error prints its one line and
// where to read the usage, not the flag list.
func TestUsageErrorIsOneLine(t *testing.T) {
	for _, c := range []struct {
		args   []string
		stderr string
	}{
		{[]string{"submit", "--bogus"}, "qlaunch: flag provided but not defined: -bogus\nsee \"qlaunch submit --help\"\n"},
		{[]string{"submit"}, "qlaunch: submit: no kernel given\nsee \"qlaunch submit --help\"\n"},
		{[]string{"run", "x.toml"}, "qlaunch: run: want a topology file and a command\nsee \"qlaunch run --help\"\n"},
		{[]string{"wait", "--timeout", "x"}, "qlaunch: invalid value \"x\" for flag -timeout: parse error\nsee \"qlaunch wait --help\"\n"},
		{[]string{"frobnicate"}, "qlaunch: unknown subcommand \"frobnicate\"\nsee \"qlaunch help\"\n"},
		{[]string{"help", "frobnicate"}, "qlaunch: help: unknown subcommand \"frobnicate\"\nsee \"qlaunch help\"\n"},
		{[]string{"version", "x"}, "qlaunch: version: unexpected arguments [\"x\"]\nsee \"qlaunch version --help\"\n"},
	} {
		code, stdout, stderr := runQlaunch(t, nil, c.args...)
		if code != 2 || stderr != c.stderr || stdout != "" {
			t.Errorf("qlaunch %q: exit %d, stdout %q, stderr %q; want exit 2 and stderr %q", c.args, code, stdout, stderr, c.stderr)
		}
	}
}

// TestHelpCommand checks that "qlaunch help CMD" prints what "qlaunch CMD
// --help" does, for every subcommand.
func TestHelpCommand(t *testing.T) {
	for _, c := range commands() {
		code, stdout, stderr := runQlaunch(t, nil, "help", c.name)
		code2, stdout2, _ := runQlaunch(t, nil, c.name, "--help")
		if code != 0 || code2 != 0 || stdout != stdout2 || !strings.HasPrefix(stdout, "usage: qlaunch "+c.name) {
			t.Errorf("qlaunch help %s: exit %d, %q (stderr %q); qlaunch %s --help: exit %d, %q", c.name, code, stdout, stderr, c.name, code2, stdout2)
		}
	}
	if code, stdout, _ := runQlaunch(t, nil, "help"); code != 0 || !strings.Contains(stdout, `"qlaunch help SUBCOMMAND"`) {
		t.Errorf("qlaunch help: exit %d\n%s", code, stdout)
	}
}

func TestVersion(t *testing.T) {
	code, stdout, _ := runQlaunch(t, nil, "version")
	if code != 0 || !strings.HasPrefix(stdout, "qlaunch ") || !strings.HasSuffix(stdout, runtime.Version()+" "+runtime.GOOS+"/"+runtime.GOARCH+"\n") {
		t.Errorf("qlaunch version: exit %d, %q", code, stdout)
	}
	bi := &debug.BuildInfo{Path: "github.com/qlaunch/qlaunch/cmd/qlaunch", Main: debug.Module{Path: "github.com/qlaunch/qlaunch", Version: "(devel)"},
		Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "5a96113c0ffee5a96113"}, {Key: "vcs.time", Value: "2026-12-02T09:00:00Z"}, {Key: "vcs.modified", Value: "true"}}}
	tail := ", " + runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH
	for _, c := range []struct {
		bi     *debug.BuildInfo
		linked string
		want   string
	}{
		{bi, "", "qlaunch (devel), revision 5a96113c0ffe (2026-12-02T09:00:00Z, modified)" + tail},
		{bi, "v1.2.3", "qlaunch v1.2.3, revision 5a96113c0ffe (2026-12-02T09:00:00Z, modified)" + tail},
		{&debug.BuildInfo{Path: "example.com/mine", Main: debug.Module{Path: "example.com/mine", Version: "v0.1.0"}}, "", "qlaunch (example.com/mine) v0.1.0" + tail},
		{nil, "", "qlaunch (devel)" + tail},
	} {
		if got := versionLine(c.bi, c.linked); got != c.want {
			t.Errorf("versionLine = %q, want %q", got, c.want)
		}
	}
}

// TestRankContext checks the grace of a rank below the server: an
// interrupt reaches it only after the grace, or at once for the server,
// and not at all once its role returned.
func TestRankContext(t *testing.T) {
	parent, interrupt := context.WithCancel(t.Context())
	defer interrupt()
	below, stopBelow := rankContext(parent, time.Hour, never)
	defer stopBelow()
	top, stopTop := rankContext(parent, time.Hour, func() bool { return true })
	defer stopTop()
	graced, stopGraced := rankContext(parent, time.Millisecond, never)
	defer stopGraced()
	interrupt()
	<-top.Done()
	<-graced.Done()
	if below.Err() != nil {
		t.Fatalf("a rank below the server left at once: %v", below.Err())
	}
	stopBelow()
	if below.Err() == nil {
		t.Fatal("stop did not end the rank's context")
	}
}

// TestCleanShutdownNoWarnings runs a manual-mode tree (a manager spawning a
// worker rank, a server) and interrupts it as scancel does, one process
// after another from the bottom: the worker rank first, then the manager,
// then the server. Every process exits 0, and nothing logs a warning; the
// server, the manager and the worker rank each log one ready line.
func TestCleanShutdownNoWarnings(t *testing.T) {
	dir := t.TempDir()
	env := []string{"QLAUNCH_SECRET_FILE=" + dir + "/secret", "QLAUNCH_ADDR=", "QLAUNCH_ADDRESS_FILE=" + dir + "/addr"}
	mport, wport, sport := e2eFreePort(t), e2eFreePort(t), e2eFreePort(t)
	manager := e2eStart(t, env, "manager", "-n", "1", "-p", strconv.Itoa(mport), "-w", strconv.Itoa(wport), "-i", "127.0.0.1")
	server := e2eStart(t, env, "server", "-p", strconv.Itoa(sport), "-i", "127.0.0.1", "127.0.0.1:"+strconv.Itoa(mport))
	if r := e2eRun(t, env, "", "wait", "--timeout", "20s"); r.code != 0 {
		t.Fatalf("wait: %+v\nserver:\n%s\nmanager:\n%s", r, server.stderr, manager.stderr)
	}
	if r := e2eRun(t, env, "", "submit", "fanout", "3", "2"); r.code != 0 || r.stdout != "9\n" {
		t.Fatalf("submit: %+v", r)
	}
	worker := childOf(t, manager.cmd.Process.Pid)
	// The skew between the signals is the scenario under test (scancel
	// reaches the nodes one after another), not a synchronisation.
	syscall.Kill(worker, syscall.SIGINT)
	time.Sleep(300 * time.Millisecond)
	manager.cmd.Process.Signal(syscall.SIGINT)
	time.Sleep(300 * time.Millisecond)
	server.cmd.Process.Signal(syscall.SIGINT)
	server.wait(t, "server")
	manager.wait(t, "manager")
	if server.err != nil || manager.err != nil {
		t.Fatalf("exit: server %v, manager %v\nserver:\n%s\nmanager:\n%s", server.err, manager.err, server.stderr, manager.stderr)
	}
	for _, p := range []struct {
		name string
		log  string
	}{{"server", server.stderr.String()}, {"manager", manager.stderr.String()}} {
		if strings.Contains(p.log, "level=WARN") || strings.Contains(p.log, "level=ERROR") {
			t.Errorf("the %s logged a warning in a clean shutdown:\n%s", p.name, p.log)
		}
		if n := strings.Count(p.log, "msg=ready role="+p.name); n != 1 {
			t.Errorf("the %s logged %d ready lines, want 1:\n%s", p.name, n, p.log)
		}
	}
	// The manager's worker rank logs to the manager's stderr.
	if n := strings.Count(manager.stderr.String(), "msg=ready role=worker"); n != 1 {
		t.Errorf("the worker rank logged %d ready lines, want 1:\n%s", n, manager.stderr)
	}
}

// childOf returns the one child process of pid (any of its threads may
// have started it).
func childOf(t *testing.T, pid int) int {
	t.Helper()
	tasks, err := filepath.Glob("/proc/" + strconv.Itoa(pid) + "/task/*/children")
	if err != nil {
		t.Fatal(err)
	}
	var kids []string
	for _, f := range tasks {
		b, _ := os.ReadFile(f)
		kids = append(kids, strings.Fields(string(b))...)
	}
	if len(kids) != 1 {
		t.Fatalf("children of %d: %q, want one", pid, kids)
	}
	child, err := strconv.Atoi(kids[0])
	if err != nil {
		t.Fatal(err)
	}
	return child
}

// TestClientMisdials points qlaunch submit at ports that are not the
// server's (real processes): the metrics port of a runtime (HTTP) and the
// two ports of a manager. Each error names what answered.
func TestClientMisdials(t *testing.T) {
	topo, err := filepath.Abs("../../configs/local.toml")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	env := []string{"QLAUNCH_SECRET_FILE=" + dir + "/secret", "QLAUNCH_ADDR=", "QLAUNCH_ADDRESS_FILE=" + dir + "/addr"}
	metrics := "127.0.0.1:" + strconv.Itoa(e2eFreePort(t))
	r := e2eRun(t, env, "", "run", "--metrics", metrics, topo, "--", qlaunchBin, "submit", "--ip", metrics, "echo", "x")
	// The command runs while the ranks start: their log lines may follow
	// its error.
	if want := "qlaunch: client: " + metrics + " is not a qlaunch server (it answered HTTP)\n"; r.code != 1 || !strings.Contains(r.stderr, want) {
		t.Errorf("submit to the metrics port: exit %d, stderr %q; want exit 1 and %q", r.code, r.stderr, want)
	}
	mport, wport := e2eFreePort(t), e2eFreePort(t)
	stop := startUntilReady(t, env, "manager", "-n", "1", "-p", strconv.Itoa(mport), "-w", strconv.Itoa(wport), "-i", "127.0.0.1")
	defer stop()
	for _, port := range []int{mport, wport} {
		addr := "127.0.0.1:" + strconv.Itoa(port)
		r := e2eRun(t, env, "", "submit", "--ip", addr, "echo", "x")
		want := "qlaunch: client: " + addr + " is a qlaunch manager (rank 1 on "
		if r.code != 1 || !strings.HasPrefix(r.stderr, want) || !strings.Contains(r.stderr, "not a qlaunch server: clients dial the server") {
			t.Errorf("submit to a manager port: exit %d, stderr %q; want exit 1 and %q…", r.code, r.stderr, want)
		}
	}
}

// startUntilReady starts qlaunch with args and returns once it logged its
// ready line (it listens by then); stop interrupts it and waits for it.
func startUntilReady(t *testing.T, env []string, args ...string) (stop func()) {
	t.Helper()
	cmd := exec.Command(qlaunchBin, args...)
	cmd.Env = append(os.Environ(), env...)
	pipe, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(pipe)
		found := false
		for sc.Scan() {
			if !found && strings.Contains(sc.Text(), "msg=ready") {
				found = true
				ready <- true
			}
		}
		if !found {
			ready <- false
		}
	}()
	timer := time.NewTimer(20 * time.Second)
	defer timer.Stop()
	select {
	case ok := <-ready:
		if !ok {
			cmd.Wait()
			t.Fatalf("qlaunch %v exited without a ready line", args)
		}
	case <-timer.C:
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("qlaunch %v: no ready line after 20 s", args)
	}
	return func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	}
}
