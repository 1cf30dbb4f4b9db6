package topology

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestParseCPUList(t *testing.T) {
	tests := []struct {
		in    string
		nbits int
		want  string // canonical form
		err   error
	}{
		{"", 8, "", nil},
		{",,,", 8, "", nil},
		{"\n", 8, "", nil},
		{"0", 8, "0", nil},
		{"0-3\n", 8, "0-3", nil},
		{"0-3,5", 8, "0-3,5", nil},
		{"5,0-3", 8, "0-3,5", nil},
		{"1 3\t5", 8, "1,3,5", nil},
		{"0-3,2-5", 8, "0-5", nil},
		{"0,1,2,3,7", 8, "0-3,7", nil},
		{"16-N", 32, "16-31", nil},
		{"N", 4, "3", nil},
		{"all", 4, "0-3", nil},
		{"ALL", 4, "0-3", nil},
		{"all:1/2", 8, "0,2,4,6", nil},
		{"0-15:2/4", 16, "0-1,4-5,8-9,12-13", nil},
		{"0-6:2/4", 8, "0-1,4-5", nil},
		{"0-7:0/1", 8, "", nil},
		{"0-7:4/4", 8, "0-7", nil},
		{"-1", 8, "", ErrCPUListSyntax},
		{"10-1", 16, "", ErrCPUListSyntax},
		{"0-31:0/0", 32, "", ErrCPUListSyntax},
		{"0-31:10/1", 32, "", ErrCPUListSyntax},
		{"a", 8, "", ErrCPUListSyntax},
		{"1a", 8, "", ErrCPUListSyntax},
		{"1-", 8, "", ErrCPUListSyntax},
		{"1-3:1", 8, "", ErrCPUListSyntax},
		{"1-3:1/", 8, "", ErrCPUListSyntax},
		{"allx", 8, "", ErrCPUListSyntax},
		{"0-3;4", 8, "", ErrCPUListSyntax},
		{"4294967296", 8, "", ErrCPUListOverflow},
		{"99999999999999999999", 8, "", ErrCPUListOverflow},
		{"8", 8, "", ErrCPUListRange},
		{"0-8", 8, "", ErrCPUListRange},
		{"65536", 0, "", ErrCPUListRange},
		{"65535", 0, "65535", nil},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseCPUList(tt.in, tt.nbits)
			if !errors.Is(err, tt.err) {
				t.Fatalf("ParseCPUList(%q, %d) error = %v, want %v", tt.in, tt.nbits, err, tt.err)
			}
			if err == nil && got.String() != tt.want {
				t.Fatalf("ParseCPUList(%q, %d) = %q, want %q", tt.in, tt.nbits, got.String(), tt.want)
			}
		})
	}
}

func TestCPUSetMethods(t *testing.T) {
	s := NewCPUSet(7, 0, 1, 2, 64, 65, -3)
	if got, want := s.String(), "0-2,7,64-65"; got != want {
		t.Errorf("String = %q, want %q", got, want)
	}
	if got, want := s.Slice(), []int{0, 1, 2, 7, 64, 65}; !slices.Equal(got, want) {
		t.Errorf("Slice = %v, want %v", got, want)
	}
	if s.Len() != 6 || s.Max() != 65 || !s.Contains(64) || s.Contains(3) || s.Contains(-1) || s.Contains(1000) {
		t.Errorf("Len/Max/Contains wrong for %v", s)
	}
	if !s.Intersects(NewCPUSet(65)) || s.Intersects(NewCPUSet(3, 100)) {
		t.Error("Intersects wrong")
	}
	if u := s.Union(NewCPUSet(3, 200)); u.String() != "0-3,7,64-65,200" {
		t.Errorf("Union = %q", u)
	}
	if !NewCPUSet(1).Equal(NewCPUSet(1).Union(CPUSet{words: []uint64{0, 0}})) || NewCPUSet(1).Equal(NewCPUSet(2)) {
		t.Error("Equal wrong")
	}
	var empty CPUSet
	if empty.String() != "" || !empty.IsEmpty() || empty.Max() != -1 || len(empty.Slice()) != 0 {
		t.Error("empty set wrong")
	}
}

func FuzzParseCPUList(f *testing.F) {
	for _, s := range []string{"", "0-3", "0-3,5", "all", "16-N", "0-15:2/4", "all:1/2", "1 3\t5\n", "-1", "4294967296", "0-31:0/0"} {
		f.Add(s, 64)
	}
	f.Fuzz(func(t *testing.T, s string, nbits int) {
		nbits %= 4096
		set, err := ParseCPUList(s, nbits)
		if err != nil {
			if !errors.Is(err, ErrCPUListSyntax) && !errors.Is(err, ErrCPUListOverflow) && !errors.Is(err, ErrCPUListRange) {
				t.Fatalf("unexpected error kind: %v", err)
			}
			return
		}
		// The canonical form parses back to the same set and prints the same.
		again, err := ParseCPUList(set.String(), nbits)
		if err != nil || !again.Equal(set) || again.String() != set.String() {
			t.Fatalf("round trip of %q: %q → %q, %v", s, set.String(), again.String(), err)
		}
		if nbits > 0 && set.Max() >= nbits {
			t.Fatalf("%q: CPU %d beyond nbits %d", s, set.Max(), nbits)
		}
		// Splitting the input at a separator gives the union of the parts.
		for i := 0; i < len(s) && !strings.Contains(s, "\x00"); i++ { // a NUL ends the list
			if isCPUListSep(s[i]) {
				a, errA := ParseCPUList(s[:i], nbits)
				b, errB := ParseCPUList(s[i+1:], nbits)
				if errA == nil && errB == nil && !a.Union(b).Equal(set) {
					t.Fatalf("%q split at %d: %q ∪ %q ≠ %q", s, i, a, b, set)
				}
				break
			}
		}
	})
}
