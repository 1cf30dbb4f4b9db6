package launcher_test

import (
	"testing"

	"github.com/qlaunch/qlaunch/launcher/launchertest"
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
