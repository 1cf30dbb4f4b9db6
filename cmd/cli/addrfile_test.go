package cli

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/qlaunch/qlaunch/launcher"
)

// TestAddressFileOwner runs qlaunch run (real processes): while it runs,
// its address file records the server's pid, host, job and secret file,
// and a client started without QLAUNCH_ADDR or QLAUNCH_SECRET_FILE (as in
// another shell) finds the runtime, its secret included, through the file
// alone; a file of the first format (the address alone) still works;
// when qlaunch run ends, the file is gone.
func TestAddressFileOwner(t *testing.T) {
	topo, err := filepath.Abs("../../configs/local.toml")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	addrFile := filepath.Join(dir, "addr")
	oldFile := filepath.Join(dir, "old-addr")
	env := []string{"QLAUNCH_ADDRESS_FILE=" + addrFile, "QLAUNCH_SECRET_FILE=", "QLAUNCH_ADDR=", "SLURM_JOB_ID=4242"}
	gone := exec.Command("true")
	if err := gone.Run(); err != nil {
		t.Fatal(err)
	}
	host, _ := os.Hostname()
	// The third file names a process gone from this host, but its address
	// answers (containers sharing a hostname, not their process ids): the
	// runtime is not taken as gone.
	script := `cat "$QLAUNCH_ADDRESS_FILE" && head -n 1 "$QLAUNCH_ADDRESS_FILE" >"$1" && ` +
		`env -u QLAUNCH_ADDR -u QLAUNCH_SECRET_FILE "$0" submit echo other shell && ` +
		`env -u QLAUNCH_ADDR "$0" submit --address-file "$1" echo first format && ` +
		`{ head -n 1 "$1"; echo "pid=$2"; echo "host=$3"; } >"$1.pid" && ` +
		`env -u QLAUNCH_ADDR "$0" submit --address-file "$1.pid" echo answers`
	r := e2eRun(t, env, "", "run", topo, "--", "sh", "-c", script, qlaunchBin, oldFile, strconv.Itoa(gone.Process.Pid), host)
	if r.code != 0 {
		t.Fatalf("qlaunch run: %+v", r)
	}
	lines := strings.Split(r.stdout, "\n")
	rec, err := launcher.ParseAddressRecord([]byte(strings.Join(lines[:5], "\n")))
	if err != nil || rec.PID <= 0 || rec.Host != host || rec.Job != "4242" || rec.SecretFile == "" {
		t.Fatalf("address file while running: %+v, %v (stdout %q)", rec, err, r.stdout)
	}
	if got := strings.Join(lines[5:], "\n"); got != "other shell\nfirst format\nanswers\n" {
		t.Errorf("clients through the file: %q", got)
	}
	if _, err := os.Stat(addrFile); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("qlaunch run left its address file: %v", err)
	}
}

// TestStaleAddressFile checks what client commands say when the address
// file names a runtime that is gone, and when there is none at all:
// submit, status and wait fail (wait used to succeed at once on any
// file), naming the file, the job and the pid, and how to start one.
func TestStaleAddressFile(t *testing.T) {
	host, _ := os.Hostname()
	gone := exec.Command("true")
	if err := gone.Run(); err != nil {
		t.Fatal(err)
	}
	deadPID := gone.Process.Pid
	refused := e2eFreePort(t) // nothing listens there once the test has it
	dir := t.TempDir()
	addrFile := filepath.Join(dir, "addr")
	env := []string{"QLAUNCH_ADDRESS_FILE=" + addrFile, "QLAUNCH_ADDR=", "QLAUNCH_SECRET_FILE=" + filepath.Join(dir, "no-secret")}
	const hint = `start one with "qlaunch run TOPOLOGY.toml -- CMD…" (this machine), "srun qlaunch TOPOLOGY.toml &" then "qlaunch wait" (under SLURM)`
	for _, c := range []struct {
		name string
		rec  *launcher.AddressRecord
		want string
	}{
		{"dead pid on this host", &launcher.AddressRecord{Addr: "127.0.0.1:" + strconv.Itoa(refused), PID: deadPID, Host: host, Job: "42"},
			"the runtime recorded in " + addrFile + " (job 42, pid " + strconv.Itoa(deadPID) + " on " + host + ") is gone (no process " + strconv.Itoa(deadPID) + " on this host); " + hint},
		{"refused, another host", &launcher.AddressRecord{Addr: "127.0.0.1:" + strconv.Itoa(refused), PID: 1234, Host: host + "-elsewhere", Job: "42"},
			"the runtime recorded in " + addrFile + " (job 42, pid 1234 on " + host + "-elsewhere) is gone (127.0.0.1:" + strconv.Itoa(refused) + " refused the connection); " + hint},
		{"first format, refused", &launcher.AddressRecord{Addr: "127.0.0.1:" + strconv.Itoa(refused)},
			"the runtime recorded in " + addrFile + " is gone (127.0.0.1:" + strconv.Itoa(refused) + " refused the connection); " + hint},
		// wait says the server has not written the file (it may be starting).
		{"no file", nil, "no runtime found: "},
	} {
		t.Run(c.name, func(t *testing.T) {
			os.Remove(addrFile)
			if c.rec != nil {
				if err := launcher.WriteAddressRecord(addrFile, *c.rec); err != nil {
					t.Fatal(err)
				}
			}
			for _, args := range [][]string{{"submit", "echo", "x"}, {"status"}, {"wait", "--timeout", "300ms"}} {
				r := e2eRun(t, env, "", args...)
				if r.code != 1 || !strings.Contains(r.stderr, c.want) || !strings.Contains(r.stderr, addrFile) || !strings.Contains(r.stderr, hint) {
					t.Errorf("qlaunch %v: exit %d, stderr %q; want exit 1 and %q", args, r.code, r.stderr, c.want)
				}
			}
		})
	}
}

// TestWaitPastAStaleFile: the address file names a runtime of another
// host that is gone while a new server waits for its tree (its starting
// file): qlaunch wait asks the new server and reports its missing ranks,
// not the old runtime.
func TestWaitPastAStaleFile(t *testing.T) {
	host, _ := os.Hostname()
	dir := t.TempDir()
	addrFile := filepath.Join(dir, "addr")
	env := []string{"QLAUNCH_ADDRESS_FILE=" + addrFile, "QLAUNCH_ADDR=", "QLAUNCH_SECRET_FILE=" + filepath.Join(dir, "secret")}
	stale := launcher.AddressRecord{Addr: "127.0.0.1:" + strconv.Itoa(e2eFreePort(t)), PID: 1234, Host: host + "-elsewhere", Job: "41"}
	if err := launcher.WriteAddressRecord(addrFile, stale); err != nil {
		t.Fatal(err)
	}
	sport := e2eFreePort(t)
	server := e2eStart(t, env, "server", "-p", strconv.Itoa(sport), "-i", "127.0.0.1", "--ranks", "3")
	r := e2eRun(t, env, "", "wait", "--timeout", "5s")
	if r.code != 1 || !strings.Contains(r.stderr, "the server at 127.0.0.1:"+strconv.Itoa(sport)+" is not ready: 1 rank joined so far") || strings.Contains(r.stderr, "is gone") {
		t.Errorf("wait: exit %d, stderr %q; want exit 1 and the new server's 1 of 3 ranks", r.code, r.stderr)
	}
	server.cmd.Process.Signal(syscall.SIGINT)
	server.wait(t, "server")
}
