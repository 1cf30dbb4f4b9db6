package reliability_test

import (
	"net"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/qlaunch/qlaunch/launcher/wire"
)

// rawClient is a client speaking the wire protocol directly, so that it
// sees every result frame (the Go client drops a duplicate result without
// saying so).
type rawClient struct {
	t  *testing.T
	nc net.Conn
	fc *wire.Conn
}

func dialRaw(t *testing.T, addr string, s wire.Secret) *rawClient {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	fc := wire.NewConn(nc, wire.Options{})
	nc.SetDeadline(time.Now().Add(startBound))
	if _, err := wire.ClientHandshake(fc, s, wire.Hello{Role: "client", Rank: -1, Host: "raw"}); err != nil {
		t.Fatal(err)
	}
	return &rawClient{t: t, nc: nc, fc: fc}
}

func (c *rawClient) submit(ids []uint64, task func(id uint64) wire.Task) {
	c.t.Helper()
	var batch, body []byte
	for _, id := range ids {
		wt := task(id)
		wt.LogDepth = -1
		body = wire.AppendTask(body[:0], &wt)
		batch = wire.AppendRecord(batch, id, body)
	}
	if err := c.fc.WriteFrame(wire.KindSubmit, batch); err != nil {
		c.t.Fatal(err)
	}
	if err := c.fc.Flush(); err != nil {
		c.t.Fatal(err)
	}
}

// results reads frames, answering heartbeats, and calls fn for each result
// until fn returns false.
func (c *rawClient) results(fn func(id uint64, r *wire.Result) bool) {
	c.t.Helper()
	var r wire.Result
	for {
		k, b, err := c.fc.ReadFrame()
		if err != nil {
			c.t.Fatalf("reading results: %v", err)
		}
		switch k {
		case wire.KindHeartbeat:
			c.fc.WriteFrame(wire.KindHeartbeat, nil)
			c.fc.Flush()
			continue
		case wire.KindResult:
		default:
			continue
		}
		recs := wire.NewRecords(b)
		for {
			id, body, ok := recs.Next()
			if !ok {
				break
			}
			if err := wire.DecodeResult(body, &r); err != nil {
				c.t.Fatal(err)
			}
			if !fn(id, &r) {
				return
			}
		}
		if err := recs.Err(); err != nil {
			c.t.Fatal(err)
		}
	}
}

// TestExactlyOnce maps N retryable tasks returning their index with one
// worker rank frozen, so it holds its share undone; kills it -9 once the
// other rank's results flow; and counts every result at the wire: each
// index exactly once, none missing, none duplicated, none failed.
func TestExactlyOnce(t *testing.T) {
	t.Parallel()
	rec := newRecord(t, "exactly-once across a killed rank")
	const n = 2000
	r := newTree(t)
	workers := r.flat(2)
	victim, victimRank := workers[2], 2
	victim.cmd.Process.Signal(syscall.SIGSTOP)
	c := dialRaw(t, r.serverAddr, r.secret)
	ids := make([]uint64, n)
	for i := range ids {
		ids[i] = uint64(i)
	}
	c.submit(ids, func(id uint64) wire.Task {
		return wire.Task{Kernel: "echo", Args: []string{strconv.FormatUint(id, 10)}}
	})
	count := make([]int, n+1)
	distinct, afterKill, byVictim := 0, 0, 0
	var t0 time.Time
	c.results(func(id uint64, res *wire.Result) bool {
		if id > n {
			t.Fatalf("result for unknown id %d", id)
		}
		if id == n { // the sentinel, submitted once all N were in
			return false
		}
		if res.Status != wire.ResultOK || string(res.Value) != strconv.FormatUint(id, 10) {
			t.Fatalf("task %d: status %v value %q message %q (rank %d)", id, res.Status, res.Value, res.Message, res.Rank)
		}
		if res.Rank == victimRank {
			byVictim++
		}
		count[id]++
		if count[id] == 1 {
			distinct++
		}
		if t0.IsZero() {
			t0 = time.Now()
			victim.cmd.Process.Kill()
		} else {
			afterKill++
		}
		if distinct == n {
			// A duplicate would come before the answer to a later task.
			c.submit([]uint64{n}, func(uint64) wire.Task { return wire.Task{Kernel: "echo", Args: []string{"end"}} })
		}
		return true
	})
	var dup, missing int
	for _, k := range count[:n] {
		switch {
		case k == 0:
			missing++
		case k > 1:
			dup += k - 1
		}
	}
	if dup != 0 || missing != 0 || byVictim != 0 {
		t.Fatalf("%d results duplicated, %d missing, %d from the frozen rank", dup, missing, byVictim)
	}
	rec.Detection = ms(time.Since(t0)) + " to all"
	rec.Note = strconv.Itoa(n) + " retryable echo tasks, frozen rank killed at the first result: each index once, " + strconv.Itoa(afterKill) + " after the kill"
	rec.Left = strconv.Itoa(len(r.leftover(exitBound, keepPIDs(r.server, r.procs[0], workers[3]))))
	if rec.Left != "0" {
		t.Errorf("processes left: %s", rec.Left)
	}
	r.shutdown()
}
