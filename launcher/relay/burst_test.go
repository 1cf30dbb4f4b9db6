package relay

import (
	"testing"

	"github.com/qlaunch/qlaunch/launcher/wire"
)

// TestBurstBound: a burst holds at most about burstMax result bytes for a
// client; the frame that passes the bound sends them, more or not.
func TestBurstBound(t *testing.T) {
	c := New(Config{Server: true, ExpectRanks: 2})
	c.Start(0)
	c.Step(Event{Type: PeerUp, Peer: 1, Kind: Client, Hello: wire.Hello{Role: "client", Rank: -1}})
	c.Step(Event{Type: PeerUp, Peer: 2, Kind: Child, Hello: wire.Hello{Role: "worker:child", Rank: 1}})
	c.Step(Event{Type: Frame, Peer: 2, Frame: wire.KindJoin, Body: wire.AppendJoin(nil, &wire.Join{Ranks: 1, Slots: 1})})
	const n, size = 64, 16 << 10 // 1 MiB of results in frames of 16 KiB
	var tasks []byte
	for id := range uint64(n) {
		tasks = wire.AppendTaskRecord(tasks, id+1, &wire.Task{Kernel: "add"})
	}
	c.Step(Event{Type: Frame, Peer: 1, Frame: wire.KindSubmit, Body: tasks})
	sent, held, frames := 0, 0, 0
	for id := range uint64(n) {
		res := wire.AppendResult(nil, &wire.Result{Status: wire.ResultOK, Value: make([]byte, size)})
		held++
		for _, a := range c.Step(Event{Type: Frame, Peer: 2, Frame: wire.KindResult, Body: wire.AppendRecord(nil, id+1, res), More: true}) {
			if a.Type != Send || a.Peer != 1 || a.Frame != wire.KindResult {
				continue
			}
			frames++
			recs := wire.NewRecords(a.Body)
			for _, _, ok := recs.Next(); ok; _, _, ok = recs.Next() {
				sent++
			}
			if len(a.Body) > burstMax+size+64 {
				t.Fatalf("a burst sent %d bytes of results in one frame, bound %d", len(a.Body), burstMax)
			}
			held = 0
		}
		if held*size > burstMax+size {
			t.Fatalf("%d results (%d bytes) held in a burst, bound %d bytes", held, held*size, burstMax)
		}
	}
	if frames < n*size/(burstMax+size) || sent == 0 {
		t.Fatalf("%d results in %d frames during the burst: want about %d frames", sent, frames, n*size/burstMax)
	}
	// The burst ends: the rest goes.
	for _, a := range c.Step(Event{Type: Tick, Now: 1}) {
		if a.Type == Send && a.Peer == 1 && a.Frame == wire.KindResult {
			recs := wire.NewRecords(a.Body)
			for _, _, ok := recs.Next(); ok; _, _, ok = recs.Next() {
				sent++
			}
		}
	}
	if sent != n {
		t.Fatalf("%d results reached the client, want %d", sent, n)
	}
}
