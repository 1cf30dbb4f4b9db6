package launcher_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/qlaunch/qlaunch/kernels"
	"github.com/qlaunch/qlaunch/launcher"
	"github.com/qlaunch/qlaunch/launcher/executor"
	"github.com/qlaunch/qlaunch/launcher/transport"
	"github.com/qlaunch/qlaunch/launcher/wire"
)

// TestWorkerCoalescesResults: while the link to its parent is busy (here
// the parent reads nothing until all but a runner batch of the kernels
// returned, so the rank's writes block on full socket buffers), a worker
// rank's results wait in one pending batch, not in one frame per runner
// batch: once the parent reads, frames carry the results of more runner
// batches than one per slot (one frame per batch, as before, carried at
// most slots × executor.MaxBatch: 127 of 128 here), and every result
// arrives exactly once. (A runner blocked writing holds the batch it took next.)
func TestWorkerCoalescesResults(t *testing.T) {
	const n, size, slots = 20000, 2 << 10, 2 // 40 MB of results, more than loopback's socket buffers
	var ran atomic.Int64
	allRan := make(chan struct{})
	value := make([]byte, size)
	reg, err := kernels.NewRegistry(kernel("blob", func(context.Context, kernels.Runtime, []string, []byte) ([]byte, error) {
		if ran.Add(1) == n-executor.MaxBatch {
			close(allRan)
		}
		return value, nil
	}))
	if err != nil {
		t.Fatal(err)
	}
	secret := testSecret(t)
	link := launcher.LinkConfig{Secret: secret, Heartbeat: time.Hour, HeartbeatTimeout: 2 * time.Hour}
	ln := localListener(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go launcher.RunWorker(ctx, launcher.WorkerConfig{Slots: slots, NodeConfig: launcher.NodeConfig{
		Rank: 1, Host: "here", Parent: ln.Addr().String(), Registry: reg, Link: link}})
	nc, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	parent, err := transport.Handshake(nc, transport.Config(link), wire.Hello{Role: "server:parent", Rank: 0, Host: "here"}, false)
	if err != nil {
		t.Fatal(err)
	}
	var tasks []byte
	for id := range uint64(n) {
		tasks = wire.AppendTaskRecord(tasks, id+1, &wire.Task{Kernel: "blob"})
	}
	if err := parent.FC.WriteFrame(wire.KindSubmit, tasks); err != nil {
		t.Fatal(err)
	}
	if err := parent.FC.Flush(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-allRan:
	case <-ctx.Done():
		t.Fatal("the kernels did not run")
	case <-time.After(60 * time.Second):
		t.Fatalf("%d of %d kernels ran in 60 s", ran.Load(), n)
	}
	got, most, frames := make(map[uint64]bool, n), 0, 0
	nc.SetReadDeadline(time.Now().Add(30 * time.Second))
	for len(got) < n {
		k, b, err := parent.FC.ReadFrame()
		if err != nil {
			t.Fatalf("after %d results: %v", len(got), err)
		}
		if k != wire.KindResult {
			continue
		}
		frames++
		recs, inFrame := wire.NewRecords(b), 0
		for id, _, ok := recs.Next(); ok; id, _, ok = recs.Next() {
			if got[id] {
				t.Fatalf("result %d twice", id)
			}
			got[id] = true
			inFrame++
		}
		most = max(most, inFrame)
	}
	t.Logf("%d results in %d frames, at most %d in one", n, frames, most)
	if most <= slots*executor.MaxBatch {
		t.Errorf("at most %d results in a frame, no more than a runner batch per slot (%d): results were not coalesced while the link was busy", most, slots*executor.MaxBatch)
	}
}
