package slurm

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func FuzzExpand(f *testing.F) {
	for _, s := range []string{
		"", ",,,", "n[1-3]", "node[1-3]x", "rack[1-2]-node[01-02]", "foo[[1,3]", "n[1-010]",
		"a[1-2]b[1-2]c[1-2]", "row[0,1]_rack[2-3]_blade[4,5]", "n[3-1]", "n[1-3", "n1-3],n[1,2]",
		"x]y[1,2]", "a[1]]b[2]", "n[0-65536]", "a[0-65536][0-1]", "n[18446744073709551614]",
		"c1, c[2-3]", "n[1,01,001]", "n[9-0011]", "[1-3]",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, expr string) {
		n, cerr := Count(expr)
		if cerr != nil {
			var se *SyntaxError
			if !errors.As(cerr, &se) || !se.BadInput() {
				t.Fatalf("Count(%q): %v is not a *SyntaxError", expr, cerr)
			}
			if _, err := Expand(expr); err == nil {
				t.Fatalf("Count(%q) fails (%v) but Expand does not", expr, cerr)
			}
			return
		}
		if n > 20000 {
			return // too big to expand on every iteration
		}
		hosts, err := Expand(expr)
		if err != nil {
			t.Fatalf("Count(%q) = %d but Expand fails: %v", expr, n, err)
		}
		if len(hosts) != n {
			t.Fatalf("Count(%q) = %d; len(Expand) = %d", expr, n, len(hosts))
		}
		for _, h := range hosts {
			if h == "" {
				t.Fatalf("Expand(%q) yields an empty host", expr)
			}
		}
		// Expand(Compress(h)) == h holds for names free of brackets and
		// separators (which a prefix may hold: "[0 0[00]" is "[0 000").
		for _, h := range hosts {
			if strings.ContainsAny(h, "[], \t\n") {
				return
			}
		}
		c := Compress(hosts)
		back, err := Expand(c)
		if err != nil || !slices.Equal(back, hosts) {
			t.Fatalf("Expand(Compress(Expand(%q))) = Expand(%q) = %q, %v; want %q", expr, c, back, err, hosts)
		}
		sorted, err := Expand(CompressSorted(hosts))
		if err != nil || !sameMultiset(sorted, hosts) {
			t.Fatalf("CompressSorted(Expand(%q)) = %q loses or adds hosts: %q, %v", expr, CompressSorted(hosts), sorted, err)
		}
		uniq, err := Expand(CompressUnique(hosts))
		if err != nil || !sameSet(uniq, hosts) {
			t.Fatalf("CompressUnique(Expand(%q)) = %q is not the set of hosts: %q, %v", expr, CompressUnique(hosts), uniq, err)
		}
	})
}

func FuzzParseCounts(f *testing.F) {
	for _, s := range []string{"2(x3)", "2(x3),1", "0(x2),1", "4,4", "", "2(x3", "2x3", "(x3)", "2(x)", "2,,1", "1,", " 1", "-1", "1.5", "1(x1048577)"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		runs, rerr := ParseRuns(s)
		counts, err := ParseCounts(s)
		if rerr != nil {
			if err == nil {
				t.Fatalf("ParseRuns(%q) fails (%v) but ParseCounts does not", s, rerr)
			}
			return
		}
		total := 0
		for _, r := range runs {
			if r.Repeat < 1 || r.Value < 0 {
				t.Fatalf("ParseRuns(%q) = %v", s, runs)
			}
			total += r.Repeat
		}
		if err != nil {
			if !errors.Is(err, ErrTooManyHosts) || total <= MaxCountNodes {
				t.Fatalf("ParseCounts(%q): %v, with %d values", s, err, total)
			}
			return
		}
		if len(counts) != total {
			t.Fatalf("ParseCounts(%q) has %d values; runs say %d", s, len(counts), total)
		}
		f := FormatCounts(counts)
		back, err := ParseCounts(f)
		if err != nil || !slices.Equal(back, counts) {
			t.Fatalf("ParseCounts(FormatCounts(ParseCounts(%q))) = ParseCounts(%q) = %v, %v", s, f, back, err)
		}
		if FormatCounts(back) != f {
			t.Fatalf("FormatCounts is not stable on %q", f)
		}
	})
}
