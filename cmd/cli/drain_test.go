package cli

import (
	"slices"
	"strings"
	"testing"

	"github.com/qlaunch/qlaunch/launcher/wire"
)

func TestDrainTargets(t *testing.T) {
	rows := []wire.RankStatus{
		{Rank: 0, Parent: -1, Role: "server", Host: "n1", Alloc: "56"},
		{Rank: 1, Parent: 0, Role: "worker", Host: "n1", Alloc: "56"},
		{Rank: 57000, Parent: 0, Role: "manager", Host: "n2", Alloc: "57"},
		{Rank: 57001, Parent: 57000, Role: "worker", Host: "n2", Alloc: "57"},
		{Rank: 57002, Parent: 57000, Role: "worker", Host: "n3", Alloc: "57"},
		{Rank: 9, Parent: 0, Role: "worker", Host: "n4", State: wire.RankDrained},
	}
	for _, tc := range []struct {
		args []string
		want []int
		err  string
	}{
		{args: []string{"1"}, want: []int{1}},
		{args: []string{"n1"}, want: []int{1}},
		{args: []string{"n2", "57001"}, want: []int{57000, 57001}},
		{args: []string{"alloc:57"}, want: []int{57000, 57001, 57002}},
		{args: []string{"0"}, err: "is the server"},
		{args: []string{"9"}, err: "rank 9 is not in the tree"},
		{args: []string{"n4"}, err: `no rank to drain on host "n4"`},
		{args: []string{"alloc:58"}, err: `no rank to drain in allocation "58"`},
	} {
		got, err := drainTargets(rows, tc.args)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) || exitCode(err) != 2 {
				t.Errorf("drainTargets(%q) = %v, %v; want a usage error containing %q", tc.args, got, err, tc.err)
			}
			continue
		}
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("drainTargets(%q) = %v, %v; want %v", tc.args, got, err, tc.want)
		}
	}
}

func TestDrainLeft(t *testing.T) {
	rows := []wire.RankStatus{
		{Rank: 2, State: wire.RankDrained},
		{Rank: 3, State: wire.RankJoined},
		{Rank: 4, State: wire.RankLost, Host: "n4", Reason: "connection reset"},
	}
	if left, err := drainLeft(rows, []int{2, 7}); !left || err != nil {
		t.Errorf("drained and absent ranks: left %v, %v; want true", left, err)
	}
	if left, err := drainLeft(rows, []int{2, 3}); left || err != nil {
		t.Errorf("a rank still joined: left %v, %v; want false", left, err)
	}
	if _, err := drainLeft(rows, []int{4}); err == nil || !strings.Contains(err.Error(), "rank 4 on n4 was lost while draining: connection reset") {
		t.Errorf("a lost rank: %v", err)
	}
}
