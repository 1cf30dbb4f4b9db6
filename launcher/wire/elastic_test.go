package wire

import (
	"reflect"
	"testing"
)

func TestDrainRoundTrip(t *testing.T) {
	for _, d := range []Drain{{Ranks: []int{}}, {Ranks: []int{3}}, {Ranks: []int{1, 1 << 20, -1}}} {
		var got Drain
		if err := DecodeDrain(AppendDrain(nil, &d), &got); err != nil {
			t.Fatalf("%v: %v", d, err)
		}
		if !reflect.DeepEqual(got, d) {
			t.Fatalf("got %v, want %v", got, d)
		}
	}
	var got Drain
	for _, bad := range [][]byte{nil, {2, 2}, {1, 2, 0}, {0xff, 0xff, 0xff, 0xff, 0x0f}} {
		if err := DecodeDrain(bad, &got); err == nil {
			t.Fatalf("DecodeDrain(%x) accepted a malformed message", bad)
		}
	}
}

func FuzzDecodeDrain(f *testing.F) {
	f.Add(AppendDrain(nil, &Drain{Ranks: []int{1, 2, 3}}))
	f.Add([]byte{})
	f.Add([]byte{0xff, 0x01})
	f.Fuzz(func(t *testing.T, b []byte) {
		var d Drain
		if DecodeDrain(b, &d) != nil {
			return
		}
		var again Drain
		if err := DecodeDrain(AppendDrain(nil, &d), &again); err != nil || !reflect.DeepEqual(d, again) {
			t.Fatalf("re-encoding %v: %v, %v", d, again, err)
		}
	})
}

func TestStatusAllocRoundTrip(t *testing.T) {
	st := Status{ID: 4, Reply: true, Ranks: []RankStatus{
		{Rank: 0, Parent: -1, Role: "server", Host: "n1", Alloc: "56"},
		{Rank: 57001, Parent: 0, Role: "manager", Host: "n2", Alloc: "57"},
		{Rank: 57002, Parent: 57001, Role: "worker", Host: "n2", State: RankDrained, Since: 9, Reason: "drained"},
		{Rank: 57003, Parent: 57001, Role: "worker", Host: "n2", Restarts: 2},
		{Rank: 57004, Parent: 57001, Role: "worker", Host: "n3", State: RankLost, Alloc: "57", Restarts: 3},
	}}
	var got Status
	if err := DecodeStatus(AppendStatus(nil, &st), &got); err != nil || !reflect.DeepEqual(got, st) {
		t.Fatalf("status with allocations: %+v %v", got, err)
	}
	if RankDrained.String() != "drained" {
		t.Fatalf("RankDrained is %q", RankDrained)
	}
}
