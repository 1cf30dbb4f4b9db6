package cli

import (
	"encoding/json"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/qlaunch/qlaunch/launcher/wire"
)

// TestStatusRestartsRealRank kills -9 the worker-rank process a real
// manager supervises (--restarts 1): status shows the replacement joined
// with 1 restart; killed again, the rank is lost for good and its lost
// row keeps the count, in the text table (RESTARTS) and in JSON.
func TestStatusRestartsRealRank(t *testing.T) {
	dir := t.TempDir()
	secret := dir + "/secret"
	env := []string{"QLAUNCH_SECRET_FILE=" + secret, "QLAUNCH_ADDR=", "QLAUNCH_ADDRESS_FILE=" + dir + "/addr"}
	if _, err := wire.EnsureSecretFile(secret); err != nil {
		t.Fatal(err)
	}
	mport, wport, sport := e2eFreePort(t), e2eFreePort(t), e2eFreePort(t)
	manager := e2eStart(t, env, "manager", "-n", "1", "--restarts", "1", "-p", strconv.Itoa(mport), "-w", strconv.Itoa(wport), "-i", "127.0.0.1")
	server := e2eStart(t, env, "server", "-p", strconv.Itoa(sport), "-i", "127.0.0.1", "--ranks", "3", "127.0.0.1:"+strconv.Itoa(mport))
	if r := e2eRun(t, env, "", "wait", "--ranks", "3", "--timeout", "20s"); r.code != 0 {
		t.Fatalf("wait: %+v\nserver:\n%s\nmanager:\n%s", r, server.stderr, manager.stderr)
	}
	// The worker-rank process the manager started: "qlaunch worker 1
	// --manager 127.0.0.1:WPORT …".
	workerPID := func(not int) int {
		t.Helper()
		for _, p := range e2eProcesses(qlaunchBin) {
			pid, cmdline, _ := strings.Cut(p, ": ")
			n, _ := strconv.Atoi(pid)
			if n != not && strings.Contains(cmdline, " worker ") && strings.Contains(cmdline, "127.0.0.1:"+strconv.Itoa(wport)) {
				return n
			}
		}
		t.Fatalf("no worker-rank process of the manager (other than %d) runs", not)
		return 0
	}
	first := workerPID(0)
	if err := syscall.Kill(first, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	// The only worker slot is the replacement's: a task's result says it
	// joined (the manager counted the restart before starting it).
	if r := e2eRun(t, env, "", "submit", "echo", "back"); r.code != 0 || r.stdout != "back\n" {
		t.Fatalf("a task after the restart: %+v\nmanager:\n%s", r, manager.stderr)
	}
	rows := statusJSON(t, env)
	if w := workerRows(rows); len(w) != 1 || w[0].State != "joined" || w[0].Restarts != 1 {
		t.Fatalf("the restarted worker rank's rows: %+v, want one joined row with 1 restart", w)
	}
	for _, r := range rows {
		if r.Role != "worker" && r.Restarts != 0 {
			t.Errorf("rank %d (%s) shows %d restarts, want 0", r.Rank, r.Role, r.Restarts)
		}
	}
	r := e2eRun(t, env, "", "status")
	if r.code != 0 || !strings.Contains(r.stdout, "RESTARTS") || !statusCell(r.stdout, "worker", "joined", "RESTARTS", "1") {
		t.Fatalf("status text after the restart:\n%s%s", r.stdout, r.stderr)
	}

	// No restart left: killed again, the rank is lost for good; a task
	// fails once the manager knows, and the lost row keeps the count.
	if err := syscall.Kill(workerPID(first), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if r := e2eRun(t, env, "", "submit", "echo", "late"); r.code != 1 || !strings.Contains(r.stderr, "no worker slot is left") {
		t.Fatalf("a task with no restart left: %+v, want it failed naming the lost rank", r)
	}
	w := workerRows(statusJSON(t, env))
	if len(w) == 0 {
		t.Fatal("no row for the lost worker rank")
	}
	for _, l := range w {
		if l.State != "lost" || l.Restarts != 1 {
			t.Errorf("worker rank row after its last loss: %+v, want lost with 1 restart", l)
		}
	}
	if r := e2eRun(t, env, "", "status"); r.code != 0 || !statusCell(r.stdout, "worker", "lost", "RESTARTS", "1") {
		t.Fatalf("status text after the last loss:\n%s%s", r.stdout, r.stderr)
	}
}

// statusJSON runs qlaunch status --format json and returns its rows.
func statusJSON(t *testing.T, env []string) []statusRank {
	t.Helper()
	r := e2eRun(t, env, "", "status", "--format", "json")
	var snap statusSnapshot
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &snap) != nil {
		t.Fatalf("status --format json: %+v", r)
	}
	return snap.Ranks
}

func workerRows(rows []statusRank) []statusRank {
	var w []statusRank
	for _, r := range rows {
		if r.Role == "worker" {
			w = append(w, r)
		}
	}
	return w
}

// statusCell reports whether a line of the status table out with role and
// state has value in the column headed column. A lost row's reason spans
// the HEARTBEAT column with spaces: its later columns are counted from the
// end of the line.
func statusCell(out, role, state, column, value string) bool {
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	head := strings.Fields(lines[0])
	col := -1
	for i, h := range head {
		if h == column {
			col = i
		}
	}
	if col < 0 {
		return false
	}
	fromEnd := len(head) - col
	for _, l := range lines[1:] {
		f := strings.Fields(l)
		if len(f) >= len(head)-1 && f[1] == role && f[3] == state && len(f) >= fromEnd && f[len(f)-fromEnd] == value {
			return true
		}
	}
	return false
}
