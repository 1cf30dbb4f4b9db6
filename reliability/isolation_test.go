package reliability_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/qlaunch/qlaunch/kernels"
	"github.com/qlaunch/qlaunch/launcher/wire"
	"github.com/qlaunch/qlaunch/reliability"
)

// stalledTasks is the stalled client's map: 10^6 tasks in the long lane
// (QLAUNCH_SOAK=1, make reliability-long), 40,000 otherwise.
func stalledTasks() int {
	if os.Getenv("QLAUNCH_SOAK") == "1" {
		return 1_000_000
	}
	return 40_000
}

// TestStalledClient: a client maps 40,000 tasks (10^6 in the long lane) with 1 KiB results and
// never reads its socket. The server bounds what it holds for it
// (outbox_bytes), drops it with a log line and cancels its tasks, and
// another client is served throughout, each of its tasks within a bound.
func TestStalledClient(t *testing.T) {
	t.Parallel()
	n := stalledTasks()
	rec := newRecord(t, fmt.Sprintf("client that never reads (%d x 1 KiB results)", n))
	const outboxBytes = 2 << 20
	a := startAttached(t, "", fmt.Sprintf("[runtime]\noutbox_bytes = %d\noutbox_stall = \"1s\"\n"+
		// Long silence bound: the client sends nothing once its map is
		// written, and the outbox bounds, not the silence, must drop it.
		// Plain links: the race detector slows compression.
		"heartbeat_timeout = \"60s\"\ncompression = \"none\"\n"+
		// Echo is retryable: the server keeps its bodies until answered,
		// 1 KiB each; admission bounds them (10^6 in the long lane).
		"max_client_bytes = %d\n", outboxBytes, 64<<20))
	// Random bytes: the links compress, and a repeated byte would make
	// 40 MB of results a few kilobytes on the wire. Built before the
	// client connects: at 10^6 tasks it takes a while, and a connected
	// client that sends nothing meanwhile is rightly dropped as silent.
	rng := rand.New(rand.NewPCG(1, 2))
	batch := make([]byte, 0, n*(len("echo")+1040))
	payload := make([]byte, 1024)
	for i := range n {
		for j := 0; j < len(payload); j += 8 {
			binary.LittleEndian.PutUint64(payload[j:], rng.Uint64())
		}
		batch = wire.AppendTaskRecord(batch, uint64(i+1), &wire.Task{Kernel: "echo", Payload: payload})
	}
	c := a.client()
	nc, err := net.Dial("tcp", a.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	_ = nc.(*net.TCPConn).SetReadBuffer(64 << 10)
	fc := wire.NewConn(nc, wire.Options{})
	if _, err := wire.ClientHandshake(fc, a.secret, wire.Hello{Role: "client", Rank: -1, Host: "stalled"}); err != nil {
		t.Fatal(err)
	}
	// Written from the side: the server may drop this client before the
	// whole map is written (its results pile up meanwhile), which ends
	// the write with an error.
	wrote := make(chan error, 1)
	go func() {
		err := wire.WriteBatch(fc, wire.KindSubmit, batch)
		if err == nil {
			err = fc.Flush()
		}
		wrote <- err
	}()
	defer func() { nc.Close(); <-wrote }()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	t0 := time.Now()
	// The other client is served while the stalled one is held, dropped
	// and after; each task within a bound.
	const each = 2 * time.Second
	var worst time.Duration
	dropped := false
	for i := 0; !dropped; i++ {
		if time.Since(t0) > startBound {
			break
		}
		s := time.Now()
		ctx, cancel := context.WithTimeout(t.Context(), each)
		f, err := c.Submit(ctx, kernels.Task{Kernel: "echo", Args: []string{"ok"}})
		if err == nil {
			var vs [][]byte
			vs, err = c.Wait(ctx, f)
			if err == nil && string(vs[0]) != "ok" {
				err = fmt.Errorf("result %q", vs[0])
			}
		}
		cancel()
		if err != nil {
			t.Fatalf("task %d of the other client: %v (after %v)\n%s", i, err, time.Since(s), a.run.out)
		}
		worst = max(worst, time.Since(s))
		dropped = strings.Contains(a.run.out.String(), "peer does not read, dropping it")
		if !dropped {
			<-tick.C
		}
	}
	if !dropped {
		t.Fatalf("the stalled client was not dropped:\n%s", a.run.out)
	}
	took := time.Since(t0)
	mem, err := reliability.ReadMem(a.run.pid())
	if err != nil {
		t.Fatal(err)
	}
	// The server holds at most outbox_bytes for the stalled client, plus
	// its own working set.
	if mem.RSSKiB > 512<<10 {
		t.Errorf("qlaunch run's resident memory %d KiB, want under 512 MiB", mem.RSSKiB)
	}
	rec.Detection = ms(took)
	rec.Memory = fmt.Sprintf("%d MiB", mem.RSSKiB>>10)
	rec.Note = fmt.Sprintf("outbox_bytes 2 MiB, outbox_stall 1s: dropped with a log line; other client's slowest task %v", worst.Round(time.Millisecond))
	stillServesC := func() {
		ctx, cancel := context.WithTimeout(t.Context(), startBound)
		defer cancel()
		f, err := c.Submit(ctx, kernels.Task{Kernel: "echo", Args: []string{"after"}})
		if err == nil {
			_, err = c.Wait(ctx, f)
		}
		if err != nil {
			t.Fatalf("after the drop: %v", err)
		}
	}
	stillServesC()
	a.shutdown()
}

// TestOversizedResult: a result over [runtime] max_result_bytes fails its
// task with an error giving its size and the limit; the rank lives on and
// runs the next task.
func TestOversizedResult(t *testing.T) {
	t.Parallel()
	rec := newRecord(t, "oversized result (2 MiB, max_result_bytes 1 MiB)")
	a := startAttached(t, "", "[runtime]\nmax_result_bytes = 1048576\n")
	c := a.client()
	pid := workerPID(t, a.dir, 1, 0)
	ctx, cancel := context.WithTimeout(t.Context(), startBound)
	defer cancel()
	f, err := c.Submit(ctx, kernels.Task{Kernel: "echo", Payload: make([]byte, 2<<20)})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Wait(ctx, f)
	if err == nil || !strings.Contains(err.Error(), "result of 2097152 bytes is larger than the limit of 1048576 bytes") {
		t.Fatalf("oversized result: %v, want its size and the limit", err)
	}
	t.Logf("error: %v", err)
	v, err := resultOf(t, c, submit(t, c, kernels.Task{Kernel: "echo", Args: []string{"after"}}), startBound)
	if err != nil || string(v) != "after" {
		t.Fatalf("a task after the oversized result: %q, %v", v, err)
	}
	if now := workerPID(t, a.dir, 1, 0); now != pid {
		t.Errorf("the worker rank was replaced (pid %d, now %d), want it unharmed", pid, now)
	}
	rec.Note = "the task failed naming size and limit; the rank lived and ran the next task"
	a.shutdown()
}
