package relay

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/qlaunch/qlaunch/launcher/wire"
)

// TestStartReady: a server that expects no rank and dialled no child is
// ready at its start; one that expects ranks is not.
func TestStartReady(t *testing.T) {
	c := New(Config{Server: true})
	got := c.Start(0)
	if len(got) != 2 || got[0].Type != WriteAddress || got[1].Type != Ready {
		t.Fatalf("Start of a server expecting nothing: %v, want write-address, ready", got)
	}
	c = New(Config{Server: true, ExpectRanks: 2})
	if got := c.Start(0); len(got) != 0 {
		t.Fatalf("Start of a server expecting 2 ranks: %v, want nothing", got)
	}
}

// fuzzModel drives a server core with events decoded from the fuzzer's
// bytes and checks, after every step, that the actions are well formed
// and that each client task gets at most one result; at the end it
// settles every task and checks that each one of a connected client got
// exactly one.
type fuzzModel struct {
	t    *testing.T
	core *Core
	now  int64
	next Peer
	// kinds of the peers the core knows (after the last step).
	kinds map[Peer]PeerKind
	ranks map[Peer]int
	// outstanding holds each connected client's tasks without a result.
	outstanding map[Peer]map[uint64]bool
	nextTask    uint64
	// held holds, per child, the local ids sent to it without a result.
	held map[Peer][]uint64
	log  []string // the events so far, for the failure message
	// trace is every action so far, formatted: two runs of the same input
	// must give the same trace.
	trace []string
}

func newFuzzModel(t *testing.T) *fuzzModel {
	cfg := Config{Server: true, Rank: 0, Host: "h0", HeartbeatTimeout: 10 * time.Second,
		OutboxStall: 10 * time.Second, KillGrace: 100 * time.Millisecond, ExitWait: 2 * time.Second,
		Retryable: map[string]bool{"idem": true}}
	m := &fuzzModel{t: t, core: New(cfg), kinds: map[Peer]PeerKind{}, ranks: map[Peer]int{},
		outstanding: map[Peer]map[uint64]bool{}, held: map[Peer][]uint64{}}
	m.check(m.core.Start(0))
	return m
}

func (m *fuzzModel) step(ev Event) {
	m.now += int64(time.Millisecond)
	if ev.Now == 0 {
		ev.Now = m.now
	}
	m.log = append(m.log, fmt.Sprintf("%v peer=%d kind=%v frame=%v body=%x more=%v rank=%d restart=%v timer=%v",
		ev.Type, ev.Peer, ev.Kind, ev.Frame, ev.Body, ev.More, ev.Rank, ev.Restart, ev.Timer))
	if ev.Type == PeerUp {
		m.kinds[ev.Peer], m.ranks[ev.Peer] = ev.Kind, ev.Hello.Rank
		if ev.Kind == Client {
			m.outstanding[ev.Peer] = map[uint64]bool{}
		}
	}
	m.check(m.core.Step(ev))
}

func (m *fuzzModel) fail(format string, args ...any) {
	m.t.Helper()
	m.t.Fatalf("%s\nevents:\n%s", fmt.Sprintf(format, args...), joinLines(m.log))
}

func joinLines(l []string) string {
	s := ""
	for _, x := range l {
		s += "  " + x + "\n"
	}
	return s
}

// check verifies one step's actions and updates the model.
func (m *fuzzModel) check(actions []Action) {
	m.t.Helper()
	sends := false
	lastPeer := Peer(-1)
	for _, a := range actions {
		m.trace = append(m.trace, formatAction(a))
		if a.Type == Drop {
			delete(m.kinds, a.Peer)
			delete(m.outstanding, a.Peer)
			delete(m.held, a.Peer)
		}
	}
	for _, a := range actions {
		switch a.Type {
		case Send:
			if _, ok := m.kinds[a.Peer]; !ok || !m.core.Known(a.Peer) {
				m.fail("send to peer %d, which the core does not know", a.Peer)
			}
			if a.Peer < lastPeer {
				m.fail("sends out of peer order: %d after %d", a.Peer, lastPeer)
			}
			sends, lastPeer = true, a.Peer
			m.sent(a)
		case Close:
			if !m.core.Known(a.Peer) {
				m.fail("close of unknown peer %d", a.Peer)
			}
			fallthrough
		default:
			if sends {
				m.fail("%v after the sends", a.Type)
			}
		}
	}
}

// sent records a frame the core sends.
func (m *fuzzModel) sent(a Action) {
	body := a.Body
	if a.Head != nil {
		body = append(append([]byte(nil), a.Head...), a.Body...)
	}
	if a.Frame != wire.KindSubmit && a.Frame != wire.KindResult {
		return
	}
	recs := wire.NewRecords(body)
	for {
		id, _, ok := recs.Next()
		if !ok {
			break
		}
		switch {
		case a.Frame == wire.KindSubmit && m.kinds[a.Peer] == Child:
			if slices.Contains(m.held[a.Peer], id) {
				m.fail("task %d sent twice to child %d", id, a.Peer)
			}
			m.held[a.Peer] = append(m.held[a.Peer], id)
		case a.Frame == wire.KindResult && m.kinds[a.Peer] == Client:
			if !m.outstanding[a.Peer][id] {
				m.fail("result for task %d of client %d, which has no such task waiting (duplicate or unknown)", id, a.Peer)
			}
			delete(m.outstanding[a.Peer], id)
		}
	}
	if recs.Err() != nil {
		m.fail("malformed %v batch sent: %v", a.Frame, recs.Err())
	}
}

func (m *fuzzModel) peers(kind PeerKind) []Peer {
	var out []Peer
	for p, k := range m.kinds {
		if k == kind {
			out = append(out, p)
		}
	}
	slices.Sort(out)
	return out
}

func pick[T any](s []T, b byte) (T, bool) {
	var zero T
	if len(s) == 0 {
		return zero, false
	}
	return s[int(b)%len(s)], true
}

// run decodes and applies one operation from three bytes.
func (m *fuzzModel) run(op, x, y byte) {
	switch op % 14 {
	case 0:
		m.next++
		m.step(Event{Type: PeerUp, Peer: m.next, Kind: Client, Hello: wire.Hello{Role: "client", Rank: -1}})
	case 1:
		m.next++
		m.step(Event{Type: PeerUp, Peer: m.next, Kind: Child, Supervised: x&1 == 1,
			Hello: wire.Hello{Role: "worker:child", Rank: 1 + int(y%4), Host: "n"}})
	case 2:
		if p, ok := pick(m.peers(Child), x); ok {
			m.step(Event{Type: Frame, Peer: p, Frame: wire.KindJoin, Body: wire.AppendJoin(nil, &wire.Join{Ranks: 1, Slots: int(y % 4)})})
		}
	case 3:
		if p, ok := pick(m.peers(Client), x); ok {
			var b []byte
			for i := range 1 + int(y%3) {
				m.nextTask++
				kernel := "add"
				if (y>>2+byte(i))&1 == 1 {
					kernel = "idem"
				}
				if y>>4 == 15 && i == 0 {
					b = wire.AppendRecord(b, m.nextTask, []byte{0xff}) // malformed: an error result
				} else {
					b = wire.AppendTaskRecord(b, m.nextTask, &wire.Task{Kernel: kernel})
				}
				m.outstanding[p][m.nextTask] = true
			}
			m.step(Event{Type: Frame, Peer: p, Frame: wire.KindSubmit, Body: b})
		}
	case 4, 5:
		if p, ok := pick(m.peers(Child), x); ok {
			m.resultFrom(p, y, op%14 == 5) // 5: within a burst (Event.More)
		}
	case 6:
		if p, ok := pick(m.peers(Client), x); ok {
			var ids []uint64
			for id := range m.outstanding[p] {
				if byte(id)%4 == y%4 {
					ids = append(ids, id)
				}
			}
			slices.Sort(ids)
			m.step(Event{Type: Frame, Peer: p, Frame: wire.KindCancel, Body: wire.AppendCancel(nil, ids)})
		}
	case 7:
		all := append(m.peers(Client), m.peers(Child)...)
		if p, ok := pick(all, x); ok {
			m.step(Event{Type: PeerDown, Peer: p})
		}
	case 8:
		m.now += int64(y) * int64(100*time.Millisecond)
		var clocks []Clock
		if p, ok := pick(m.peers(Child), x); ok && y&1 == 1 {
			clocks = append(clocks, Clock{Peer: p, Writing: true})
		}
		m.step(Event{Type: Tick, Clocks: clocks})
	case 9:
		if p, ok := pick(m.peers(Child), x); ok {
			m.step(Event{Type: Frame, Peer: p, Frame: wire.KindLoad, Body: wire.AppendLoad(nil, &wire.Load{Idle: int(y % 3), Queued: int(y / 3 % 5)})})
		}
	case 10:
		m.step(Event{Type: RankExited, Rank: 1 + int(x%4), Slots: int(y % 3), Reason: "killed", Restart: y&128 != 0})
	case 11:
		if p, ok := pick(m.peers(Child), x); ok {
			m.step(Event{Type: Timeout, Peer: p, Timer: Timer(1 + y%2)})
		}
	case 12:
		if p, ok := pick(m.peers(Client), x); ok {
			m.step(Event{Type: Frame, Peer: p, Frame: wire.KindDrain, Body: wire.AppendDrain(nil, &wire.Drain{Ranks: []int{1 + int(y%4)}})})
		}
	case 13:
		all := append(m.peers(Client), m.peers(Child)...)
		if p, ok := pick(all, x); ok {
			switch y % 4 {
			case 0:
				m.step(Event{Type: Stalled, Peer: p, Reason: "not reading"})
			case 1:
				m.step(Event{Type: Frame, Peer: p, Frame: wire.KindStatus, Body: wire.AppendStatus(nil, &wire.Status{ID: 1})})
			case 2:
				m.step(Event{Type: Frame, Peer: p, Frame: wire.Kind(y % 16), Body: []byte{x, y}})
			case 3:
				m.step(Event{Type: Frame, Peer: p, Frame: wire.KindHeartbeat})
			}
		}
	}
}

// resultFrom has child p return one task it holds (which one: b), with
// more as the shell's Event.More.
func (m *fuzzModel) resultFrom(p Peer, b byte, more bool) {
	id, ok := pick(m.held[p], b)
	if !ok {
		return
	}
	m.held[p] = slices.DeleteFunc(m.held[p], func(x uint64) bool { return x == id })
	body := wire.AppendResult(nil, &wire.Result{Status: wire.ResultOK, Value: []byte("v")})
	m.step(Event{Type: Frame, Peer: p, Frame: wire.KindResult, Body: wire.AppendRecord(nil, id, body), More: more})
}

// settle ends the run: every supervised rank's death is final, a fresh
// child with slots joins, and every child returns every task it holds
// until none is left; then each connected client must have all its
// results and the task table must be empty.
func (m *fuzzModel) settle() {
	for r := 1; r <= 4; r++ {
		m.step(Event{Type: RankExited, Rank: r, Reason: "final"})
	}
	m.next++
	m.step(Event{Type: PeerUp, Peer: m.next, Kind: Child, Hello: wire.Hello{Role: "worker:child", Rank: 9, Host: "n9"}})
	m.step(Event{Type: Frame, Peer: m.next, Frame: wire.KindJoin, Body: wire.AppendJoin(nil, &wire.Join{Ranks: 1, Slots: 1})})
	for range 10000 {
		progress := false
		for _, p := range m.peers(Child) {
			if len(m.held[p]) > 0 {
				m.resultFrom(p, 0, false)
				progress = true
			}
		}
		if !progress {
			break
		}
	}
	for p, ids := range m.outstanding {
		if len(ids) > 0 && !m.core.Stopping() {
			m.fail("client %d: %d tasks never got a result: %v", p, len(ids), ids)
		}
	}
	if n := m.core.Sched().Pending(); n != 0 && !m.core.Stopping() {
		m.fail("%d tasks left in the table", n)
	}
}

func FuzzStep(f *testing.F) {
	f.Add([]byte{0, 0, 0, 1, 0, 0, 2, 0, 2, 3, 0, 7, 4, 0, 0, 7, 1, 0})
	f.Add([]byte{0, 0, 0, 1, 1, 1, 2, 0, 3, 3, 0, 4, 7, 1, 0, 10, 1, 128, 1, 1, 1, 2, 2, 3, 5, 0, 0})
	f.Add([]byte{1, 0, 0, 2, 0, 1, 0, 0, 0, 3, 0, 15, 8, 0, 200, 8, 0, 201, 6, 0, 0, 12, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		m := newFuzzModel(t)
		for i := 0; i+2 < len(data) && i < 3*400; i += 3 {
			m.run(data[i], data[i+1], data[i+2])
		}
		trace := slices.Clone(m.trace)
		m.settle()
		// The same events give the same actions: run them again.
		m2 := newFuzzModel(t)
		for i := 0; i+2 < len(data) && i < 3*400; i += 3 {
			m2.run(data[i], data[i+1], data[i+2])
		}
		if !slices.Equal(trace, m2.trace) {
			t.Fatalf("the same input drove two cores differently")
		}
	})
}
