package launcher_test

import (
	"strings"
	"testing"
	"time"

	"github.com/qlaunch/qlaunch/launcher/launchertest"
	"github.com/qlaunch/qlaunch/launcher/wire"
)

func TestStatusTree(t *testing.T) {
	shape := launchertest.Shape{Workers: []int{1}, Managers: []launchertest.Shape{{Workers: []int{2, 3}}}}
	tr := launchertest.Start(t, shape)
	c := tr.Client()
	mustRun(t, c, "fanout", "3", "2")
	st, err := c.Status(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	type row struct {
		rank, parent, depth int
		role                string
		slots               int
	}
	var got []row
	done := uint64(0)
	for _, r := range st {
		got = append(got, row{r.Rank, r.Parent, r.Depth, r.Role, r.Slots})
		if r.Role == "worker" {
			done += r.Done
		}
	}
	// Children answer in any order; the server comes first, each rank
	// before its subtree.
	want := map[row]bool{
		{0, -1, 0, "server", 0}: true, {1, 0, 1, "worker", 1}: true, {2, 0, 1, "manager", 0}: true,
		{3, 2, 2, "worker", 2}: true, {4, 2, 2, "worker", 3}: true,
	}
	if len(got) != len(want) || got[0] != (row{0, -1, 0, "server", 0}) {
		t.Fatalf("status %+v", got)
	}
	for i, r := range got {
		if !want[r] {
			t.Fatalf("unexpected row %+v in %+v", r, got)
		}
		if r.role == "worker" && r.parent == 2 && got[i-1].depth < 1 {
			t.Fatalf("rank %d not after its manager: %+v", r.rank, got)
		}
	}
	if done != 13 { // fanout 3 2: 1 + 3 + 9 tasks
		t.Fatalf("workers report %d tasks done, want 13 (%+v)", done, st)
	}
}

// TestStatusLostRank: a worker rank killed under a manager shows in the
// status as lost, with its host, when and why, until nothing else; the
// ranks still there report how long their parent has not heard from them.
func TestStatusLostRank(t *testing.T) {
	shape := launchertest.Shape{Workers: []int{1}, Managers: []launchertest.Shape{{Workers: []int{1, 1}}}}
	tr := launchertest.Start(t, shape)
	c := tr.Client()
	before := time.Now().UnixNano()
	tr.Kill(3)
	ctx := ctxT(t)
	var lost *wire.RankStatus
	var st []wire.RankStatus
	for lost == nil {
		var err error
		if st, err = c.Status(ctx); err != nil {
			t.Fatalf("no status showing rank 3 lost: %v", err)
		}
		for i := range st {
			if st[i].Rank == 3 && st[i].State == wire.RankLost {
				lost = &st[i]
			}
		}
	}
	if lost.Parent != 2 || lost.Depth != 2 || lost.Host != tr.Ranks[3].Host || lost.Role != "worker" ||
		lost.Since < before || lost.Since > time.Now().UnixNano() || !strings.HasPrefix(lost.Reason, "connection lost: ") {
		t.Fatalf("lost rank 3: %+v", *lost)
	}
	joined := 0
	for _, r := range st {
		if r.State != wire.RankJoined {
			continue
		}
		joined++
		if r.Rank == 0 && r.Silent != 0 || r.Silent < 0 || r.Silent > 10*time.Second {
			t.Errorf("rank %d silent for %v", r.Rank, r.Silent)
		}
	}
	if joined != 4 || len(st) != 5 {
		t.Fatalf("want 4 joined ranks and rank 3 lost: %+v", st)
	}
}
