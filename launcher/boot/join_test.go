package boot

import (
	"context"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/qlaunch/qlaunch/kernels"
	"github.com/qlaunch/qlaunch/launcher"
	"github.com/qlaunch/qlaunch/launcher/client"
	"github.com/qlaunch/qlaunch/launcher/launchertest"
	"github.com/qlaunch/qlaunch/launcher/wire"
	"github.com/qlaunch/qlaunch/rank"
	"github.com/qlaunch/qlaunch/topology"
)

func TestJoinRankBase(t *testing.T) {
	for _, tc := range []struct {
		job  string
		want int
	}{{"57", 57000}, {"", 1000}, {"123.pbs01", 123000}, {"2000001", 1000}, {"x", 1000}} {
		if got := JoinRankBase(tc.job); got != tc.want {
			t.Errorf("JoinRankBase(%q) = %d, want %d", tc.job, got, tc.want)
		}
	}
}

// TestJoinRunningTree: the two ranks of a second allocation (a manager
// node with one worker rank) join a running tree under its server, with
// numbers from the rank base and their job id; a map then runs on their
// slots; when the allocation is signalled (Drain), its ranks drain and
// leave, status shows them drained with their allocation, and the first
// tree goes on serving.
func TestJoinRunningTree(t *testing.T) {
	tr := launchertest.Start(t, launchertest.Shape{Workers: []int{1}})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	top, err := topology.Parse("t.toml", []byte("[runtime]\nport = "+strconv.Itoa(port)+"\n"))
	if err != nil {
		t.Fatal(err)
	}
	reg, err := kernels.NewRegistry(kernels.Builtin()...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	drain := make(chan struct{})
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for r := range 2 {
		wg.Go(func() {
			errs[r] = Run(ctx, Config{
				Topology: top.WithCPUsPerNode(2),
				Info: rank.Info{Launcher: rank.SLURM, Rank: r, Size: 2, LocalRank: r, LocalSize: 2, Node: "n9",
					NodeList: []string{"n9"}, TasksPerNode: []int{2}, JobID: "57"},
				Resolve: func(string) (string, error) { return "127.0.0.1", nil },
				Pin:     func([]int) error { return nil },
				Node: launcher.NodeConfig{Registry: reg, Drain: drain,
					Link: launcher.LinkConfig{Secret: tr.Secret, DialTimeout: 10 * time.Second}},
				Join: &Join{Server: tr.Addr, RankBase: JoinRankBase("57")},
			})
		})
	}
	c := tr.Client()
	var rows map[int]wire.RankStatus
	for range 5000 {
		st, err := c.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		rows = make(map[int]wire.RankStatus)
		for _, r := range st {
			rows[r.Rank] = r
		}
		if rows[57001].Slots > 0 {
			break
		}
	}
	m, w := rows[57000], rows[57001]
	if m.Role != "manager" || m.Parent != 0 || m.Alloc != "57" || w.Role != "worker" || w.Parent != 57000 || w.Alloc != "57" || w.Slots != 2 {
		t.Fatalf("joined ranks: %+v %+v, want manager 57000 under the server and its worker 57001, allocation 57", m, w)
	}
	// A map of more tasks than the first tree has slots uses the new ones.
	ts := make([]kernels.Task, 30)
	for i := range ts {
		ts[i] = kernels.Task{Kernel: "sleep", Args: []string{"20"}}
	}
	f, err := c.Map(ctx, ts)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Wait(ctx, f); err != nil {
		t.Fatal(err)
	}
	st, err := c.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range st {
		if r.Rank == 57001 && r.Done == 0 {
			t.Fatalf("the joined worker rank ran nothing: %+v", r)
		}
	}
	// The worker rank is drained first (qlaunch drain 57001), then the
	// allocation is signalled: its manager, with no rank left below it,
	// tells the server and leaves cleanly.
	if err := c.Drain([]int{57001}); err != nil {
		t.Fatal(err)
	}
	if w := waitState(t, c, 57001, wire.RankDrained); w.Alloc != "57" {
		t.Errorf("the drained worker rank's row: %+v, want its allocation 57", w)
	}
	close(drain)
	wg.Wait()
	for r, err := range errs {
		if err != nil {
			t.Errorf("joined rank %d after the drain: %v, want a clean stop", r, err)
		}
	}
	// Its row at the server keeps the allocation its join said.
	if m := waitState(t, c, 57000, wire.RankDrained); m.Alloc != "57" {
		t.Errorf("the drained manager's row: %+v, want its allocation 57", m)
	}
	v, err := c.Wait(context.Background(), must(c.Submit(context.Background(), kernels.Task{Kernel: "echo", Args: []string{"still"}})))
	if err != nil || string(v[0]) != "still" {
		t.Fatalf("after the allocation left: %q %v", v, err)
	}
}

// waitState asks for the tree's status until rank leaves the joined state
// (bounded), checks that it is then in state want and returns its row.
func waitState(t *testing.T, c *client.Client, rank int, want wire.RankState) wire.RankStatus {
	t.Helper()
	var last wire.RankStatus
	for range 5000 {
		st, err := c.Status(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range st {
			if r.Rank == rank {
				last = r
			}
		}
		if last.State != wire.RankJoined {
			break
		}
	}
	if last.State != want {
		t.Fatalf("rank %d: %+v, want %v", rank, last, want)
	}
	return last
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
