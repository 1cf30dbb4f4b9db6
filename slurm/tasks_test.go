package slurm

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestParseCounts(t *testing.T) {
	tests := []struct {
		in   string
		want []int
		runs []Run
	}{
		{"2(x3)", []int{2, 2, 2}, []Run{{2, 3}}},
		{"2(x3),1", []int{2, 2, 2, 1}, []Run{{2, 3}, {1, 1}}},
		{"2,1", []int{2, 1}, []Run{{2, 1}, {1, 1}}},
		{"3,1", []int{3, 1}, []Run{{3, 1}, {1, 1}}},
		{"4(x3)", []int{4, 4, 4}, []Run{{4, 3}}},
		{"4,4", []int{4, 4}, []Run{{4, 1}, {4, 1}}},
		{"0(x2),1", []int{0, 0, 1}, []Run{{0, 2}, {1, 1}}},
		{"1(x1)", []int{1}, []Run{{1, 1}}},
		{"007", []int{7}, []Run{{7, 1}}},
		{"4294967295", []int{4294967295}, []Run{{4294967295, 1}}},
	}
	for _, tt := range tests {
		got, err := ParseCounts(tt.in)
		if err != nil || !slices.Equal(got, tt.want) {
			t.Errorf("ParseCounts(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
		runs, err := ParseRuns(tt.in)
		if err != nil || !slices.Equal(runs, tt.runs) {
			t.Errorf("ParseRuns(%q) = %v, %v; want %v", tt.in, runs, err, tt.runs)
		}
	}
}

func TestParseCountsRejects(t *testing.T) {
	tests := []struct {
		in     string
		part   string
		offset int
	}{
		{"", "", 0},
		{"2(x3", "2(x3", 0},
		{"2x3", "2x3", 0},
		{"(x3)", "(x3)", 0},
		{"2(x)", "2(x)", 0},
		{"2,,1", "", 2},
		{"2,1,", "", 4},
		{",2", "", 0},
		{" 2", " 2", 0},
		{"2 ", "2 ", 0},
		{"2, 1", " 1", 2},
		{"-1", "-1", 0},
		{"1.5", "1.5", 0},
		{"2(x3)x", "2(x3)x", 0},
		{"2(x3))", "2(x3))", 0},
		{"2(X3)", "2(X3)", 0},
		{"2(x0)", "2(x0)", 0},
		{"2(x-1)", "2(x-1)", 0},
		{"4294967296", "4294967296", 0},
		{"1,99999999999999999999999", "99999999999999999999999", 2},
		{"+2", "+2", 0},
	}
	for _, tt := range tests {
		_, err := ParseCounts(tt.in)
		var se *SyntaxError
		if !errors.As(err, &se) {
			t.Errorf("ParseCounts(%q): %v; want *SyntaxError", tt.in, err)
			continue
		}
		if se.Part != tt.part || se.Offset != tt.offset || se.Kind != "count list" {
			t.Errorf("ParseCounts(%q): %+v; want part %q at %d", tt.in, se, tt.part, tt.offset)
		}
	}
}

func TestParseCountsLimit(t *testing.T) {
	if _, err := ParseCounts("1(x1048576)"); err != nil {
		t.Fatalf("1<<20 nodes: %v", err)
	}
	_, err := ParseCounts("1(x1048576),2")
	if !errors.Is(err, ErrTooManyHosts) {
		t.Fatalf("1<<20+1 nodes: %v; want ErrTooManyHosts", err)
	}
	runs, err := ParseRuns("1(x4294967295),2(x4294967295)")
	if err != nil || len(runs) != 2 || runs[1] != (Run{2, 4294967295}) {
		t.Fatalf("ParseRuns of huge repeats = %v, %v", runs, err)
	}
}

func TestFormatCounts(t *testing.T) {
	tests := []struct {
		in   []int
		want string
	}{
		{nil, ""},
		{[]int{2}, "2"},
		{[]int{2, 2, 2}, "2(x3)"},
		{[]int{2, 2, 2, 1}, "2(x3),1"},
		{[]int{2, 1}, "2,1"},
		{[]int{1, 2, 2, 1, 1}, "1,2(x2),1(x2)"},
		{[]int{0, 0, 1}, "0(x2),1"},
	}
	for _, tt := range tests {
		if got := FormatCounts(tt.in); got != tt.want {
			t.Errorf("FormatCounts(%v) = %q; want %q", tt.in, got, tt.want)
		}
		if len(tt.in) == 0 {
			continue
		}
		back, err := ParseCounts(tt.want)
		if err != nil || !slices.Equal(back, tt.in) {
			t.Errorf("ParseCounts(%q) = %v, %v; want %v", tt.want, back, err, tt.in)
		}
	}
}

func BenchmarkParseCounts(b *testing.B) {
	s := strings.Repeat("2(x3),1,", 1000) + "4"
	for b.Loop() {
		if c, err := ParseCounts(s); err != nil || len(c) != 4001 {
			b.Fatal(len(c), err)
		}
	}
}
