package relay

import (
	"reflect"
	"testing"

	"github.com/qlaunch/qlaunch/launcher/wire"
)

func TestWithExpected(t *testing.T) {
	// Rank 0 server+manager on n0 with worker 1; manager 2 on n1 with
	// workers 3 and 4; manager 5 on n2 with worker 6.
	plan := []PlannedRank{
		{0, -1, "n0", "server+manager"}, {1, 0, "n0", "worker"},
		{2, 0, "n1", "manager"}, {3, 2, "n1", "worker"}, {4, 2, "n1", "worker"},
		{5, 0, "n2", "manager"}, {6, 5, "n2", "worker"},
	}
	joined := func(rank, parent, depth int, host, role string) wire.RankStatus {
		return wire.RankStatus{Rank: rank, Parent: parent, Depth: depth, Host: host, Role: role}
	}
	lost := func(rank, parent int, host, role string, since int64, reason string) wire.RankStatus {
		return wire.RankStatus{Rank: rank, Parent: parent, Depth: 1, Host: host, Role: role, State: wire.RankLost, Since: since, Reason: reason}
	}
	missing := func(rank, parent, depth int, host, role, reason string) wire.RankStatus {
		return wire.RankStatus{Rank: rank, Parent: parent, Depth: depth, Host: host, Role: role, State: wire.RankMissing, Reason: reason}
	}
	tests := []struct {
		name string
		rows []wire.RankStatus
		want []wire.RankStatus
	}{
		{
			name: "all joined",
			rows: []wire.RankStatus{joined(0, -1, 0, "n0", "server"), joined(1, 0, 1, "n0", "worker"), joined(2, 0, 1, "n1", "manager"),
				joined(3, 2, 2, "n1", "worker"), joined(4, 2, 2, "n1", "worker"), joined(5, 0, 1, "n2", "manager"), joined(6, 5, 2, "n2", "worker")},
			want: []wire.RankStatus{joined(0, -1, 0, "n0", "server"), joined(1, 0, 1, "n0", "worker"), joined(2, 0, 1, "n1", "manager"),
				joined(3, 2, 2, "n1", "worker"), joined(4, 2, 2, "n1", "worker"), joined(5, 0, 1, "n2", "manager"), joined(6, 5, 2, "n2", "worker")},
		},
		{
			name: "one worker never came, a manager never came",
			rows: []wire.RankStatus{joined(0, -1, 0, "n0", "server"), joined(1, 0, 1, "n0", "worker"), joined(2, 0, 1, "n1", "manager"),
				joined(3, 2, 2, "n1", "worker")},
			want: []wire.RankStatus{joined(0, -1, 0, "n0", "server"), joined(1, 0, 1, "n0", "worker"), joined(2, 0, 1, "n1", "manager"),
				joined(3, 2, 2, "n1", "worker"),
				missing(4, 2, 2, "n1", "worker", "never connected"),
				missing(5, 0, 1, "n2", "manager", "never connected"),
				missing(6, 5, 2, "n2", "worker", "never connected: its parent rank 5 on n2 has not joined")},
		},
		{
			name: "a manager lost takes its workers; a worker lost twice, then back",
			rows: []wire.RankStatus{joined(0, -1, 0, "n0", "server"), lost(1, 0, "n0", "worker", 10, "first"), joined(1, 0, 1, "n0", "worker"),
				lost(5, 0, "n2", "manager", 20, "connection lost: EOF"), joined(2, 0, 1, "n1", "manager"),
				joined(3, 2, 2, "n1", "worker"), lost(4, 2, "n1", "worker", 5, "old"), lost(4, 2, "n1", "worker", 30, "silent for 10s (no heartbeat)")},
			want: []wire.RankStatus{joined(0, -1, 0, "n0", "server"), joined(1, 0, 1, "n0", "worker"),
				lost(5, 0, "n2", "manager", 20, "connection lost: EOF"), joined(2, 0, 1, "n1", "manager"),
				joined(3, 2, 2, "n1", "worker"), lost(4, 2, "n1", "worker", 30, "silent for 10s (no heartbeat)"),
				{Rank: 6, Parent: 5, Depth: 2, Host: "n2", Role: "worker", State: wire.RankLost, Since: 20,
					Reason: "lost with rank 5 on n2 (connection lost: EOF)"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := WithExpected(tt.rows, plan)
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got\n%+v\nwant\n%+v", got, tt.want)
			}
		})
	}
	// Without a plan the rows pass unchanged.
	rows := []wire.RankStatus{joined(0, -1, 0, "n0", "server"), lost(1, 0, "n0", "worker", 1, "x")}
	if got := WithExpected(rows, nil); !reflect.DeepEqual(got, rows) {
		t.Fatalf("no plan: %+v", got)
	}
}
