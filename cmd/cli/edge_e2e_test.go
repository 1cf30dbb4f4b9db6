package cli

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/qlaunch/qlaunch/kernels"
	"github.com/qlaunch/qlaunch/launcher"
	"github.com/qlaunch/qlaunch/launcher/client"
	"github.com/qlaunch/qlaunch/launcher/wire"
)

// e2eParent is the test acting as the manager of a real worker rank
// process: it accepts the rank's connection and drives it frame by frame.
type e2eParent struct {
	t  *testing.T
	nc net.Conn
	fc *wire.Conn
}

// startRankProcess starts `qlaunch worker 1` dialling a listener of the
// test and returns the parent's end of its link once it joined.
func startRankProcess(t *testing.T) (*e2eParent, *e2eProc) {
	t.Helper()
	dir := t.TempDir()
	secretFile := filepath.Join(dir, "secret")
	sec, err := wire.EnsureSecretFile(secretFile)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	proc := e2eStart(t, []string{"QLAUNCH_SECRET_FILE=" + secretFile}, "worker", "1", "--manager", ln.Addr().String(), "--rank", "5")
	_ = ln.(*net.TCPListener).SetDeadline(time.Now().Add(20 * time.Second))
	nc, err := ln.Accept()
	if err != nil {
		t.Fatalf("the worker rank did not connect: %v\n%s", err, proc.stderr)
	}
	t.Cleanup(func() { nc.Close() })
	fc := wire.NewConn(nc, wire.Options{})
	if _, err := wire.ServerHandshake(fc, sec, wire.Hello{Role: "manager", Rank: 0, Host: "test"}); err != nil {
		t.Fatal(err)
	}
	p := &e2eParent{t: t, nc: nc, fc: fc}
	if k, _ := p.next(); k != wire.KindJoin {
		t.Fatalf("first frame %v, want a join", k)
	}
	return p, proc
}

func (p *e2eParent) next() (wire.Kind, []byte) {
	p.t.Helper()
	_ = p.nc.SetReadDeadline(time.Now().Add(20 * time.Second))
	k, b, err := p.fc.ReadFrame()
	if err != nil {
		p.t.Fatalf("reading from the rank: %v", err)
	}
	return k, b
}

func (p *e2eParent) send(k wire.Kind, b []byte) {
	p.t.Helper()
	err := p.fc.WriteFrame(k, b)
	if err == nil {
		err = p.fc.Flush()
	}
	if err != nil {
		p.t.Fatal(err)
	}
}

// result reads frames until the result of task id arrives.
func (p *e2eParent) result(id uint64) wire.Result {
	p.t.Helper()
	for range 1000 {
		k, b := p.next()
		if k != wire.KindResult {
			continue
		}
		recs := wire.NewRecords(b)
		for {
			rid, body, ok := recs.Next()
			if !ok {
				break
			}
			var r wire.Result
			if err := wire.DecodeResult(body, &r); err != nil {
				p.t.Fatal(err)
			}
			if rid == id {
				return r
			}
		}
	}
	p.t.Fatalf("no result for task %d in 1000 frames", id)
	return wire.Result{}
}

// TestRankProcessSurvivesPoisonRecord: a task record with a missing
// argument fails its task with an error result; the next task on the same
// rank process succeeds, and the rank exits 0 when told to shut down.
func TestRankProcessSurvivesPoisonRecord(t *testing.T) {
	p, proc := startRankProcess(t)
	var poison []byte
	poison = binary.AppendVarint(poison, 0)
	poison = binary.AppendVarint(poison, -1)
	poison = binary.AppendUvarint(poison, 4)
	poison = append(poison, "echo"...)
	poison = binary.AppendUvarint(poison, 2) // two arguments …
	poison = binary.AppendUvarint(poison, 1) // … of which one is sent
	poison = append(poison, 'x')
	p.send(wire.KindSubmit, wire.AppendRecord(nil, 1, poison))
	if r := p.result(1); r.Status != wire.ResultError || r.Rank != 5 || !strings.Contains(r.Message, "task record refused by worker rank 5") {
		t.Fatalf("poison record: %+v, want an error result from rank 5", r)
	}
	p.send(wire.KindSubmit, wire.AppendRecord(nil, 2, wire.AppendTask(nil, &wire.Task{Kernel: "echo", Args: []string{"still", "here"}})))
	if r := p.result(2); r.Status != wire.ResultOK || string(r.Value) != "still here" {
		t.Fatalf("next task on the rank: %+v\n%s", r, proc.stderr)
	}
	p.send(wire.KindShutdown, nil)
	proc.wait(t, "worker rank")
	if proc.err != nil || !strings.Contains(proc.stderr.String(), "malformed task records failed") {
		t.Fatalf("worker rank: exit %v, stderr:\n%s", proc.err, proc.stderr)
	}
}

// TestResultsStreamProcesses: on a real tree with one worker slot, 20
// exec tasks that each sleep and then write the time they finished reach
// the client within 100 ms of finishing, although the rank takes them in
// batches (held to the batch's end, 14 of 20 came 200 to 500 ms late).
// The time between a command's last write and its result reaching the
// client also holds the exit of three processes and two hops; on a busy
// machine one or two of them were seen to take up to 180 ms, so as many
// as maxLate results may come later than bound, none after hardBound.
func TestResultsStreamProcesses(t *testing.T) {
	const n, bound, maxLate, hardBound = 20, 100 * time.Millisecond, 2, 300 * time.Millisecond
	dir := t.TempDir()
	secret := filepath.Join(dir, "secret")
	env := []string{"QLAUNCH_SECRET_FILE=" + secret, "QLAUNCH_ADDR=", "QLAUNCH_ADDRESS_FILE=" + filepath.Join(dir, "addr")}
	mport, wport, sport := e2eFreePort(t), e2eFreePort(t), e2eFreePort(t)
	manager := e2eStart(t, env, "manager", "-n", "1", "-p", strconv.Itoa(mport), "-w", strconv.Itoa(wport), "-i", "127.0.0.1")
	server := e2eStart(t, env, "server", "-p", strconv.Itoa(sport), "-i", "127.0.0.1", "--ranks", "3", "127.0.0.1:"+strconv.Itoa(mport))
	if r := e2eRun(t, env, "", "wait", "--ranks", "3", "--timeout", "20s"); r.code != 0 {
		t.Fatalf("wait: %+v\nserver:\n%s\nmanager:\n%s", r, server.stderr, manager.stderr)
	}
	sec, err := wire.LoadSecretFile(secret)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, "127.0.0.1:"+strconv.Itoa(sport), client.Options{Secret: sec})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ts := make([]kernels.Task, n)
	for i := range ts {
		out := filepath.Join(dir, "done-"+strconv.Itoa(i))
		ts[i] = kernels.Task{Kernel: "exec", Args: []string{"--", "sh", "-c", "sleep 0.05; date +%s%N > " + out}}
	}
	f, err := c.Map(ctx, ts)
	if err != nil {
		t.Fatal(err)
	}
	arrived := make([]time.Time, n)
	for got := 0; got < n; {
		rs, err := c.Next(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		now := time.Now()
		for _, r := range rs {
			if r.Err != nil {
				t.Fatalf("task %d: %v", r.Index, r.Err)
			}
			arrived[r.Index] = now
			got++
		}
	}
	late, worst := 0, time.Duration(0)
	for i := range n {
		b, err := os.ReadFile(filepath.Join(dir, "done-"+strconv.Itoa(i)))
		if err != nil {
			t.Fatal(err)
		}
		ns, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
		if err != nil {
			t.Fatalf("task %d wrote %q: %v", i, b, err)
		}
		d := arrived[i].Sub(time.Unix(0, ns))
		worst = max(worst, d)
		if d > bound {
			late++
			t.Logf("task %d: result arrived %v after the command finished", i, d.Round(time.Millisecond))
		}
	}
	t.Logf("latest result: %v after its command finished", worst.Round(time.Millisecond))
	if late > maxLate || worst > hardBound {
		t.Errorf("%d of %d results arrived more than %v after their command finished (at most %d may), the latest %v (at most %v)",
			late, n, bound, maxLate, worst.Round(time.Millisecond), hardBound)
	}
	if late > 0 {
		t.Logf("server:\n%s\nmanager:\n%s", server.stderr, manager.stderr)
	}
}

// TestJobsOfOneUserIsolated: two jobs of one user started in one folder
// each get their own secret (.qlaunch/job-<id>/secret, in a directory of
// mode 0700), never the user's long-lived one, so a client of one job
// cannot use the other job's runtime.
func TestJobsOfOneUserIsolated(t *testing.T) {
	dir := t.TempDir()
	home := filepath.Join(dir, "home")
	base := []string{"HOME=" + home, "XDG_CONFIG_HOME=", "QLAUNCH_SECRET_FILE=", "QLAUNCH_ADDR=", "QLAUNCH_ADDRESS_FILE=", "PBS_JOBID="}
	jobEnv := func(id string) []string { return append(append([]string(nil), base...), "SLURM_JOB_ID="+id) }
	start := func(id string) string {
		port := e2eFreePort(t)
		p := &e2eProc{cmd: exec.Command(qlaunchBin, "server", "-p", strconv.Itoa(port), "-i", "127.0.0.1", "--ranks", "1"), stderr: &procOutput{}, done: make(chan struct{})}
		p.cmd.Dir, p.cmd.Env, p.cmd.Stderr = dir, append(os.Environ(), jobEnv(id)...), p.stderr
		if err := p.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go func() { p.err = p.cmd.Wait(); close(p.done) }()
		t.Cleanup(func() { p.cmd.Process.Kill(); <-p.done })
		return "127.0.0.1:" + strconv.Itoa(port)
	}
	// wait (which retries until the server is up) for a job's own runtime,
	// status (one attempt) for the other's.
	status := func(id, addr string, own bool) e2eResult {
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		defer cancel()
		args := []string{"status", "--ip", addr}
		if own {
			args = []string{"wait", "--ip", addr, "--ranks", "1", "--timeout", "20s"}
		}
		cmd := exec.CommandContext(ctx, qlaunchBin, args...)
		cmd.Dir, cmd.Env = dir, append(os.Environ(), jobEnv(id)...)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		r := e2eResult{stdout: out.String(), stderr: errb.String()}
		if ee, ok := err.(*exec.ExitError); ok {
			r.code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return r
	}
	a, b := start("101"), start("102")
	for _, tc := range []struct {
		job, addr string
		ok        bool
	}{{"101", a, true}, {"102", b, true}, {"101", b, false}, {"102", a, false}} {
		r := status(tc.job, tc.addr, tc.ok)
		if tc.ok && r.code != 0 {
			t.Errorf("job %s's client to its own runtime: %+v", tc.job, r)
		}
		if !tc.ok && (r.code == 0 || !strings.Contains(r.stderr, "authentication failed")) {
			t.Errorf("job %s's client to the other job's runtime at %s: %+v, want refused (authentication failed)", tc.job, tc.addr, r)
		}
	}
	// Both wrote the folder's address file, .qlaunch/addr; a client of
	// the job that wrote it last finds its runtime there, a client of the
	// other job is refused, although the file names the writer's secret.
	rec, err := launcher.ReadAddressRecord(filepath.Join(dir, ".qlaunch", "addr"))
	if err != nil || (rec.Job != "101" && rec.Job != "102") {
		t.Fatalf("address file: %+v, %v; want one of the two jobs'", rec, err)
	}
	other := map[string]string{"101": "102", "102": "101"}[rec.Job]
	for _, tc := range []struct {
		job string
		ok  bool
	}{{rec.Job, true}, {other, false}} {
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		cmd := exec.CommandContext(ctx, qlaunchBin, "status")
		cmd.Dir, cmd.Env = dir, append(os.Environ(), jobEnv(tc.job)...)
		out, err := cmd.CombinedOutput()
		cancel()
		if tc.ok && err != nil {
			t.Errorf("job %s's client through the address file its runtime wrote: %v\n%s", tc.job, err, out)
		}
		if !tc.ok && (err == nil || !strings.Contains(string(out), "authentication failed")) {
			t.Errorf("job %s's client through the address file of job %s: %v\n%s; want refused (authentication failed)", tc.job, rec.Job, err, out)
		}
	}
	for _, id := range []string{"101", "102"} {
		jd := filepath.Join(dir, ".qlaunch", "job-"+id)
		fi, err := os.Stat(jd)
		if err != nil || fi.Mode().Perm() != 0o700 {
			t.Errorf("job directory %s: %v, %v; want mode 0700", jd, fi, err)
		}
		if fi, err := os.Stat(filepath.Join(jd, "secret")); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("job secret in %s: %v, %v; want mode 0600", jd, fi, err)
		}
	}
	if _, err := os.Stat(filepath.Join(home, ".config", "qlaunch", "secret")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the user's long-lived secret was created or used under a scheduler: %v", err)
	}
}

// TestSetsidChildEndsAtShutdown: a process an exec task started that left
// its group and session (setsid) is gone once the runtime was stopped.
func TestSetsidChildEndsAtShutdown(t *testing.T) {
	dir := t.TempDir()
	secret := filepath.Join(dir, "secret")
	env := []string{"QLAUNCH_SECRET_FILE=" + secret, "QLAUNCH_ADDR=", "QLAUNCH_ADDRESS_FILE=" + filepath.Join(dir, "addr")}
	mport, wport, sport := e2eFreePort(t), e2eFreePort(t), e2eFreePort(t)
	manager := e2eStart(t, env, "manager", "-n", "1", "-p", strconv.Itoa(mport), "-w", strconv.Itoa(wport), "-i", "127.0.0.1")
	server := e2eStart(t, env, "server", "-p", strconv.Itoa(sport), "-i", "127.0.0.1", "--ranks", "3", "127.0.0.1:"+strconv.Itoa(mport))
	if r := e2eRun(t, env, "", "wait", "--ranks", "3", "--timeout", "20s"); r.code != 0 {
		t.Fatalf("wait: %+v\nserver:\n%s\nmanager:\n%s", r, server.stderr, manager.stderr)
	}
	sec, err := wire.LoadSecretFile(secret)
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.Dial(t.Context(), "127.0.0.1:"+strconv.Itoa(sport), client.Options{Secret: sec})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	pidFile := filepath.Join(dir, "pid")
	if _, err := c.Submit(t.Context(), kernels.Task{Kernel: "exec", Args: []string{"--", "sh", "-c",
		`setsid sh -c 'echo $$ > "$1"; exec sleep 100' sh "$1" & wait`, "sh", pidFile}}); err != nil {
		t.Fatal(err)
	}
	var pid int
	deadline := time.Now().Add(20 * time.Second)
	for pid == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the task never reported its setsid child\nmanager:\n%s", manager.stderr)
		}
		if b, err := os.ReadFile(pidFile); err == nil && strings.HasSuffix(string(b), "\n") {
			pid, _ = strconv.Atoi(strings.TrimSpace(string(b)))
		}
		time.Sleep(10 * time.Millisecond) // polling a file another process writes
	}
	if sid := procSession(pid); sid != pid {
		t.Fatalf("child %d: session %d; want a session of its own", pid, sid)
	}
	server.cmd.Process.Signal(syscall.SIGINT)
	server.wait(t, "server")
	manager.wait(t, "manager")
	for end := time.Now().Add(10 * time.Second); processAlive(pid); {
		if time.Now().After(end) {
			syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("the setsid child %d of an exec task outlived the runtime's shutdown", pid)
		}
		time.Sleep(10 * time.Millisecond) // polling another process's state
	}
}

// processAlive reports whether pid runs (a zombie does not).
func processAlive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(b, ')')
	return i >= 0 && i+2 < len(b) && b[i+2] != 'Z'
}

// procSession returns the session of pid (0 if not found).
func procSession(pid int) int {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 4 {
		return 0
	}
	sid, _ := strconv.Atoi(f[3])
	return sid
}

// TestManagerWorkerPortLoopback: a manual-mode manager started without
// -i listens for its parent on every interface, and for worker ranks
// (which run on its host) on loopback only.
func TestManagerWorkerPortLoopback(t *testing.T) {
	dir := t.TempDir()
	env := []string{"QLAUNCH_SECRET_FILE=" + filepath.Join(dir, "secret"), "QLAUNCH_ADDR=", "QLAUNCH_ADDRESS_FILE=" + filepath.Join(dir, "addr")}
	mport, wport, sport := e2eFreePort(t), e2eFreePort(t), e2eFreePort(t)
	manager := e2eStart(t, env, "manager", "-n", "1", "-p", strconv.Itoa(mport), "-w", strconv.Itoa(wport))
	server := e2eStart(t, env, "server", "-p", strconv.Itoa(sport), "-i", "127.0.0.1", "--ranks", "3", "127.0.0.1:"+strconv.Itoa(mport))
	if r := e2eRun(t, env, "", "wait", "--ranks", "3", "--timeout", "20s"); r.code != 0 {
		t.Fatalf("wait: %+v\nserver:\n%s\nmanager:\n%s", r, server.stderr, manager.stderr)
	}
	if local := listenAddrs(t, wport); len(local) != 1 || local[0] != "0100007F" {
		t.Errorf("worker port %d listens on %v (hex, /proc/net/tcp), want 127.0.0.1 (0100007F) only", wport, local)
	}
	if local := listenAddrs(t, mport); len(local) != 1 || local[0] == "0100007F" {
		t.Errorf("parent port %d listens on %v, want every interface", mport, local)
	}
}

// listenAddrs returns the local IPv4 addresses (as /proc/net/tcp writes
// them) of the sockets listening on port; IPv6 ones are listed as "v6".
func listenAddrs(t *testing.T, port int) []string {
	t.Helper()
	var out []string
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			fs := strings.Fields(line)
			if len(fs) < 4 || fs[3] != "0A" { // LISTEN
				continue
			}
			ip, p, _ := strings.Cut(fs[1], ":")
			if n, err := strconv.ParseInt(p, 16, 32); err != nil || int(n) != port {
				continue
			}
			if f == "/proc/net/tcp6" {
				ip = "v6"
			}
			out = append(out, ip)
		}
	}
	return out
}
