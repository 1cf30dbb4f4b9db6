package cli

import (
	"encoding/binary"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

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
