package slurm

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// seq returns prefix+lo … prefix+hi, each zero-padded to width.
func seq(prefix string, lo, hi, width int) []string {
	var out []string
	for i := lo; i <= hi; i++ {
		out = append(out, fmt.Sprintf("%s%0*d", prefix, width, i))
	}
	return out
}

func concat(parts ...[]string) []string { return slices.Concat(parts...) }

func TestExpand(t *testing.T) {
	tests := []struct {
		expr string
		want []string
	}{
		// Tokens and separators.
		{"", nil},
		{",,,", nil},
		{" \t\n, ", nil},
		{"a1,,a2", []string{"a1", "a2"}},
		{",a1,", []string{"a1"}},
		{"c1, c[2-3]", []string{"c1", "c2", "c3"}},
		{"a1\tb1\nc1 d1", []string{"a1", "b1", "c1", "d1"}},
		{"n[1-2] m[3]", []string{"n1", "n2", "m3"}},
		{"n1,n1", []string{"n1", "n1"}},
		// Literal names.
		{"n1-3]", []string{"n1-3]"}},
		{"n]", []string{"n]"}},
		{"nova6]", []string{"nova6]"}},
		{"(null)", []string{"(null)"}},
		{"n1-3],n[1,2]", []string{"n1-3]", "n1", "n2"}},
		{"node1.domain", []string{"node1.domain"}},
		// Suffixes after the first ']' following the last '['.
		{"node[1-3]x", []string{"node1x", "node2x", "node3x"}},
		{"gpu-a[1-2]-ib", []string{"gpu-a1-ib", "gpu-a2-ib"}},
		{"n[1-3]]", []string{"n1]", "n2]", "n3]"}},
		{"n[1-2]-ib,x[8-9]a", []string{"n1-ib", "n2-ib", "x8a", "x9a"}},
		{"n[1-2]a,n3", []string{"n1a", "n2a", "n3"}},
		// Prefix groups, and a prefix '[' without ']'.
		{"rack[1-2]-node[01-02]", []string{"rack1-node01", "rack1-node02", "rack2-node01", "rack2-node02"}},
		{"rack[1-2]-n[1-2]", []string{"rack1-n1", "rack1-n2", "rack2-n1", "rack2-n2"}},
		{"foo[[1,3]", []string{"foo[1", "foo[3"}},
		{"a[1-2]b[[3]", []string{"a[1-2]b[3"}},
		{"[1-3]", []string{"1", "2", "3"}},
		// Width from the low bound.
		{"n[1-010]", seq("n", 1, 10, 1)},
		{"n[001-10]", seq("n", 1, 10, 3)},
		{"n[01-009]", seq("n", 1, 9, 2)},
		{"n[9-0011]", []string{"n9", "n10", "n11"}},
		{"n[1,01,001]", []string{"n1", "n01", "n001"}},
		{"n[01-2]", []string{"n01", "n02"}},
		{"n[1-02]", []string{"n1", "n2"}},
		{"node[001-003]", []string{"node001", "node002", "node003"}},
		{"n[1-3],gpu[01-03,7]", []string{"n1", "n2", "n3", "gpu01", "gpu02", "gpu03", "gpu7"}},
		{"n[098-101]", []string{"n098", "n099", "n100", "n101"}},
		// Order and duplicates.
		{"n[3,1,2]", []string{"n3", "n1", "n2"}},
		{"z[3,1]", []string{"z3", "z1"}},
		{"n[1-3],n[2-4]", []string{"n1", "n2", "n3", "n2", "n3", "n4"}},
		// Several groups: the last innermost, the second-to-last outermost.
		{"a[1-2]b[1-2]", []string{"a1b1", "a1b2", "a2b1", "a2b2"}},
		{"n[1-3]x[1-2]", []string{"n1x1", "n1x2", "n2x1", "n2x2", "n3x1", "n3x2"}},
		{"a[1-2]b[1-2]c[1-2]", []string{
			"a1b1c1", "a1b1c2", "a2b1c1", "a2b1c2", "a1b2c1", "a1b2c2", "a2b2c1", "a2b2c2"}},
		{"a[1-2]b[1-2]c[1-2]d[1-2]", []string{
			"a1b1c1d1", "a1b1c1d2", "a2b1c1d1", "a2b1c1d2", "a1b2c1d1", "a1b2c1d2", "a2b2c1d1", "a2b2c1d2",
			"a1b1c2d1", "a1b1c2d2", "a2b1c2d1", "a2b1c2d2", "a1b2c2d1", "a1b2c2d2", "a2b2c2d1", "a2b2c2d2"}},
		{"row[0,1]_rack[2-3]_blade[4,5]", []string{
			"row0_rack2_blade4", "row0_rack2_blade5", "row1_rack2_blade4", "row1_rack2_blade5",
			"row0_rack3_blade4", "row0_rack3_blade5", "row1_rack3_blade4", "row1_rack3_blade5"}},
		{"a[1-2]-b[3]-c[4,5]x", []string{"a1-b3-c4x", "a1-b3-c5x", "a2-b3-c4x", "a2-b3-c5x"}},
		// Big numbers.
		{"n[4294967296-4294967297]", []string{"n4294967296", "n4294967297"}},
		{"n[18446744073709551614]", []string{"n18446744073709551614"}},
	}
	for _, tt := range tests {
		t.Run(tt.expr, func(t *testing.T) {
			got, err := Expand(tt.expr)
			if err != nil {
				t.Fatalf("Expand(%q): %v", tt.expr, err)
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("Expand(%q)\n got %q\nwant %q", tt.expr, got, tt.want)
			}
			n, err := Count(tt.expr)
			if err != nil || n != len(tt.want) {
				t.Fatalf("Count(%q) = %d, %v; want %d", tt.expr, n, err, len(tt.want))
			}
		})
	}
}

func TestExpandLarge(t *testing.T) {
	tests := []struct {
		expr        string
		count       int
		first, last string
	}{
		{"prod-0[10-345]", 336, "prod-010", "prod-0345"},
		{"n[1-65536]", 65536, "n1", "n65536"},
		{"a[0-65535][0-1]", 131072, "a00", "a655351"},
		{"n[1-1000][1-1000]", 1000000, "n11", "n10001000"},
	}
	for _, tt := range tests {
		t.Run(tt.expr, func(t *testing.T) {
			got, err := Expand(tt.expr)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != tt.count || got[0] != tt.first || got[len(got)-1] != tt.last {
				t.Fatalf("Expand(%q): %d hosts %q … %q; want %d %q … %q", tt.expr, len(got), got[0], got[len(got)-1], tt.count, tt.first, tt.last)
			}
			if n, err := Count(tt.expr); err != nil || n != tt.count {
				t.Fatalf("Count(%q) = %d, %v; want %d", tt.expr, n, err, tt.count)
			}
		})
	}
}

func TestExpandRejects(t *testing.T) {
	tests := []struct {
		expr    string
		part    string
		offset  int
		tooMany bool
	}{
		{"n[1-3", "[1-3", 1, false},
		{"n[1-2]x[", "[", 7, false},
		{"x]y[1,2]", "[1", 3, false}, // SLURM's tokenizer cuts at the ','
		{"n[]", "", 2, false},
		{"n[1,]", "", 4, false},
		{"n[1,,3]", "", 4, false},
		{"n[a-b]", "a-b", 2, false},
		{"n[1.5]", "1.5", 2, false},
		{"n[1;2]", "1;2", 2, false},
		{"n[1x2]", "1x2", 2, false},
		{"n[000x133]", "000x133", 2, false},
		{"n[1--3]", "1--3", 2, false},
		{"n[-1]", "-1", 2, false},
		{"n[3-1]", "3-1", 2, false},
		{"n[10-8]", "10-8", 2, false},
		{"n[1-3a]", "1-3a", 2, false},
		{"n[1a-3]", "1a-3", 2, false},
		{"n[ 1-3]", " 1-3", 2, false},
		{"n[+1-3]", "+1-3", 2, false},
		{"n[1-]", "1-", 2, false},
		{"n[0-65536]", "0-65536", 2, true},
		{"n[1-2,0-99999]", "0-99999", 6, true},
		{"a[0-65536][0-1]", "0-65536", 2, true},
		{"a[0-40000,0-40000][0-1]", "[0-40000,0-40000]", 1, true},
		{"n[18446744073709551615]", "18446744073709551615", 2, false},
		{"n[99999999999999999999]", "99999999999999999999", 2, false},
		{"a[x]b[1]c[1]", "x", 2, false},
		{"a[1]]b[2]", "1]", 2, false},
		{"n[1-2],m[3-1]", "3-1", 9, false},
		{"ok1, ok2 bad[", "[", 12, false},
	}
	for _, tt := range tests {
		t.Run(tt.expr, func(t *testing.T) {
			hosts, err := Expand(tt.expr)
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("Expand(%q) = %q, %v; want a *SyntaxError", tt.expr, hosts, err)
			}
			if se.Part != tt.part || se.Offset != tt.offset || se.Expr != tt.expr || se.Kind != "hostlist" {
				t.Errorf("Expand(%q): error %+v; want part %q at %d", tt.expr, se, tt.part, tt.offset)
			}
			if got := errors.Is(err, ErrTooManyHosts); got != tt.tooMany {
				t.Errorf("errors.Is(%v, ErrTooManyHosts) = %v", err, got)
			}
			if !se.BadInput() || !strings.Contains(err.Error(), fmt.Sprintf("%q", tt.part)) {
				t.Errorf("error %q does not name %q", err, tt.part)
			}
			if _, cerr := Count(tt.expr); cerr == nil || cerr.Error() != err.Error() {
				t.Errorf("Count(%q) error %v; want %v", tt.expr, cerr, err)
			}
		})
	}
}

func TestExpandErrorMessage(t *testing.T) {
	_, err := Expand("n[1-2],m[3-1]")
	want := `invalid hostlist "n[1-2],m[3-1]": "3-1" at offset 9: low bound 3 is above high bound 1`
	if err == nil || err.Error() != want {
		t.Fatalf("got %v\nwant %s", err, want)
	}
}

func TestExpandLimits(t *testing.T) {
	big := "n[1-65536][1-65536]"
	n, err := Count(big)
	if err != nil || n != 1<<32 {
		t.Fatalf("Count(%q) = %d, %v", big, n, err)
	}
	if _, err := Expand(big); !errors.Is(err, ErrTooManyHosts) {
		t.Fatalf("Expand(%q): %v; want ErrTooManyHosts", big, err)
	}
	huge := strings.Repeat("[1-65536]", 6)
	if _, err := Count("n" + huge); !errors.Is(err, ErrTooManyHosts) {
		t.Fatalf("Count of 2^96 hosts: %v; want ErrTooManyHosts", err)
	}
	// Many tokens of many groups: the sum saturates rather than wraps.
	many := strings.Repeat("n"+strings.Repeat("[1-65536]", 4)+",", 5000)
	if _, err := Count(many); !errors.Is(err, ErrTooManyHosts) {
		t.Fatalf("Count of a saturating sum: %v; want ErrTooManyHosts", err)
	}
}

func TestCompress(t *testing.T) {
	tests := []struct {
		hosts                []string
		plain, sorted, uniqd string
	}{
		{nil, "", "", ""},
		{[]string{"n1"}, "n1", "n1", "n1"},
		{[]string{"n1", "n2", "n3", "n5"}, "n[1-3,5]", "n[1-3,5]", "n[1-3,5]"},
		{[]string{"n1", "n3"}, "n[1,3]", "n[1,3]", "n[1,3]"},
		{[]string{"1", "2", "3"}, "[1-3]", "[1-3]", "[1-3]"},
		{[]string{"linux", "linux2", "linux5"}, "linux,linux[2,5]", "linux,linux[2,5]", "linux,linux[2,5]"},
		{[]string{"linux5", "linux", "linux2"}, "linux5,linux,linux2", "linux,linux[2,5]", "linux,linux[2,5]"},
		{[]string{"node", "node1", "node2"}, "node,node[1-2]", "node,node[1-2]", "node,node[1-2]"},
		{[]string{"n1-ib", "n2-ib"}, "n1-ib,n2-ib", "n1-ib,n2-ib", "n1-ib,n2-ib"},
		{[]string{"node1.domain", "node2.domain"}, "node1.domain,node2.domain", "node1.domain,node2.domain", "node1.domain,node2.domain"},
		{[]string{"rack1-node01", "rack1-node02", "rack2-node01", "rack2-node02"},
			"rack1-node[01-02],rack2-node[01-02]", "rack1-node[01-02],rack2-node[01-02]", "rack1-node[01-02],rack2-node[01-02]"},
		{[]string{"x1y4", "x1y5", "x2y4", "x2y5"}, "x1y[4-5],x2y[4-5]", "x1y[4-5],x2y[4-5]", "x1y[4-5],x2y[4-5]"},
		{[]string{"n1", "n2", "n1"}, "n[1-2,1]", "n[1,1-2]", "n[1-2]"},
		{[]string{"tux2", "tux1", "tux2"}, "tux[2,1-2]", "tux[1-2,2]", "tux[1-2]"},
		{[]string{"tux1", "tux2", "tux2"}, "tux[1-2,2]", "tux[1-2,2]", "tux[1-2]"},
		{[]string{"n3", "n2", "n1"}, "n[3,2,1]", "n[1-3]", "n[1-3]"},
		{[]string{"n9", "n10"}, "n[9-10]", "n[9-10]", "n[9-10]"},
		{[]string{"n09", "n10"}, "n[09-10]", "n[09-10]", "n[09-10]"},
		{[]string{"n98", "n99", "n100"}, "n[98-100]", "n[98-100]", "n[98-100]"},
		{[]string{"n009", "n10"}, "n[009,10]", "n[10,009]", "n[10,009]"},
		{[]string{"n99", "n0100"}, "n[99,0100]", "n[99,0100]", "n[99,0100]"},
		{[]string{"n1", "n01"}, "n[1,01]", "n[1,01]", "n[1,01]"},
		{[]string{"n001", "n01", "n1"}, "n[001,01,1]", "n[1,01,001]", "n[1,01,001]"},
		{[]string{"host-001", "host-1"}, "host-[001,1]", "host-[1,001]", "host-[1,001]"},
		{[]string{"n1", "m1", "n2"}, "n1,m1,n2", "m1,n[1-2]", "m1,n[1-2]"},
		{[]string{"n10a1", "n9a1"}, "n10a1,n9a1", "n9a1,n10a1", "n9a1,n10a1"},
		{[]string{"b1", "a1", "a2"}, "b1,a[1-2]", "a[1-2],b1", "a[1-2],b1"},
		{[]string{"c3", "c2", "c4", "c6", "c5", "c4", "c2"}, "c[3,2,4,6,5,4,2]", "c[2,2-4,4-6]", "c[2-6]"},
		{[]string{"a", "a", "b"}, "a,a,b", "a,a,b", "a,b"},
		{[]string{"", "n1", "", "n2"}, "n[1-2]", "n[1-2]", "n[1-2]"},
		{[]string{"n99999999999999999999", "n1"}, "n99999999999999999999,n1", "n1,n99999999999999999999", "n1,n99999999999999999999"},
		{concat(seq("", 0, 20, 1), []string{"12", "15"}), "[0-20,12,15]", "[0-12,12-15,15-20]", "[0-20]"},
		{concat(seq("n", 1, 5, 1), seq("n", 3, 7, 1)), "n[1-5,3-7]", "n[1-3,3-4,4-5,5-7]", "n[1-7]"},
		{seq("n", 1, 70000, 1), "n[1-65536,65537-70000]", "n[1-65536,65537-70000]", "n[1-65536,65537-70000]"},
	}
	for _, tt := range tests {
		name := strings.Join(tt.hosts, ",")
		if len(name) > 60 {
			name = name[:60]
		}
		t.Run(name, func(t *testing.T) {
			if got := Compress(tt.hosts); got != tt.plain {
				t.Errorf("Compress = %q; want %q", got, tt.plain)
			}
			if got := CompressSorted(tt.hosts); got != tt.sorted {
				t.Errorf("CompressSorted = %q; want %q", got, tt.sorted)
			}
			if got := CompressUnique(tt.hosts); got != tt.uniqd {
				t.Errorf("CompressUnique = %q; want %q", got, tt.uniqd)
			}
		})
	}
}

// randomHosts draws a host list that exercises prefixes, padding, runs,
// duplicates and names without numbers.
func randomHosts(r *rand.Rand) []string {
	prefixes := []string{"n", "a", "rack1-n", "", "x9y", "node-", "n0", "gpu.ib"}
	hosts := make([]string, r.IntN(40))
	for i := range hosts {
		if i > 0 && r.IntN(2) == 0 {
			prev := hosts[i-1]
			j := len(prev)
			for j > 0 && prev[j-1] >= '0' && prev[j-1] <= '9' {
				j--
			}
			if j < len(prev) {
				var n int
				fmt.Sscan(prev[j:], &n)
				n += r.IntN(3)
				hosts[i] = fmt.Sprintf("%s%0*d", prev[:j], r.IntN(len(prev)-j+1), n)
				continue
			}
		}
		p := prefixes[r.IntN(len(prefixes))]
		switch r.IntN(8) {
		case 0:
			hosts[i] = p + "z"
		case 1:
			hosts[i] = fmt.Sprintf("%s%d", p, 99990+r.IntN(20))
		default:
			hosts[i] = fmt.Sprintf("%s%0*d", p, r.IntN(4), r.IntN(30))
		}
	}
	return hosts
}

func TestCompressRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	t.Logf("seed 1,2")
	for i := range 3000 {
		hosts := randomHosts(r)
		expr := Compress(hosts)
		got, err := Expand(expr)
		if err != nil || !slices.Equal(got, hosts) {
			t.Fatalf("case %d: Expand(Compress(%q)) = Expand(%q) = %q, %v", i, hosts, expr, got, err)
		}
		sortedExpr := CompressSorted(hosts)
		sorted, err := Expand(sortedExpr)
		if err != nil || !sameMultiset(sorted, hosts) {
			t.Fatalf("case %d: Expand(CompressSorted(%q)) = %q, %v: not the same hosts", i, hosts, sorted, err)
		}
		if again := CompressSorted(sorted); again != sortedExpr {
			t.Fatalf("case %d: CompressSorted not idempotent: %q then %q", i, sortedExpr, again)
		}
		uniqExpr := CompressUnique(hosts)
		uniq, err := Expand(uniqExpr)
		if err != nil || !sameSet(uniq, hosts) {
			t.Fatalf("case %d: Expand(CompressUnique(%q)) = %q, %v: not the same set", i, hosts, uniq, err)
		}
	}
}

func sameMultiset(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

func sameSet(uniq, hosts []string) bool {
	seen := make(map[string]bool)
	for _, h := range uniq {
		if seen[h] {
			return false
		}
		seen[h] = true
	}
	want := make(map[string]bool)
	for _, h := range hosts {
		want[h] = true
	}
	if len(want) != len(seen) {
		return false
	}
	for h := range want {
		if !seen[h] {
			return false
		}
	}
	return true
}

// randomExpr draws an expression of bracket groups, literals and suffixes,
// valid or not.
func randomExpr(r *rand.Rand) string {
	var b strings.Builder
	for range 1 + r.IntN(3) {
		if b.Len() > 0 {
			b.WriteString([]string{",", " ", ",,"}[r.IntN(3)])
		}
		b.WriteString([]string{"n", "a", "rack", "", "x-"}[r.IntN(5)])
		for range r.IntN(4) {
			b.WriteByte('[')
			for e := range 1 + r.IntN(3) {
				if e > 0 {
					b.WriteByte(',')
				}
				lo := r.IntN(12)
				fmt.Fprintf(&b, "%0*d", r.IntN(3), lo)
				if r.IntN(2) == 0 {
					fmt.Fprintf(&b, "-%d", lo+r.IntN(6)-1)
				}
			}
			b.WriteByte(']')
			if r.IntN(3) == 0 {
				b.WriteString([]string{"b", "-c", "_d", "]"}[r.IntN(4)])
			}
		}
	}
	return b.String()
}

func TestCountMatchesExpand(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	valid := 0
	for range 5000 {
		expr := randomExpr(r)
		hosts, err := Expand(expr)
		n, cerr := Count(expr)
		if (err == nil) != (cerr == nil) {
			t.Fatalf("%q: Expand error %v, Count error %v", expr, err, cerr)
		}
		if err != nil {
			continue
		}
		valid++
		if n != len(hosts) {
			t.Fatalf("Count(%q) = %d; len(Expand) = %d", expr, n, len(hosts))
		}
		if got, err := Expand(Compress(hosts)); err != nil || !slices.Equal(got, hosts) {
			t.Fatalf("%q: round trip through %q gave %q, %v", expr, Compress(hosts), got, err)
		}
	}
	if valid < 1000 {
		t.Fatalf("only %d valid expressions drawn", valid)
	}
}

func TestStrnatcmp(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"n9a", "n10a", -1},
		{"a", "b", -1},
		{"n", "n", 0},
		{"rack2-n", "rack10-n", -1},
		{"x01", "x1", -1},
		{"x", "x1", -1},
		{"a b", "ab", 0},
		{"a\xff", "a1", -1}, // C's signed char
	}
	for _, tt := range tests {
		if got := strnatcmp(tt.a, tt.b); got != tt.want {
			t.Errorf("strnatcmp(%q, %q) = %d; want %d", tt.a, tt.b, got, tt.want)
		}
		if got := strnatcmp(tt.b, tt.a); got != -tt.want {
			t.Errorf("strnatcmp(%q, %q) = %d; want %d", tt.b, tt.a, got, -tt.want)
		}
	}
}

func BenchmarkCountMillion(b *testing.B) {
	for b.Loop() {
		if n, err := Count("n[1-1000][1-1000]"); err != nil || n != 1000000 {
			b.Fatal(n, err)
		}
	}
	b.ReportMetric(1e6, "hosts/op")
}

func BenchmarkExpand10k(b *testing.B) {
	expr := "rack[1-10]-node[0001-1000]"
	for b.Loop() {
		if h, err := Expand(expr); err != nil || len(h) != 10000 {
			b.Fatal(len(h), err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/1e4, "ns/host")
}

func BenchmarkCompress10k(b *testing.B) {
	hosts, err := Expand("rack[1-10]-node[0001-1000]")
	if err != nil {
		b.Fatal(err)
	}
	r := rand.New(rand.NewPCG(5, 6))
	shuffled := slices.Clone(hosts)
	r.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	b.Run("ordered", func(b *testing.B) {
		for b.Loop() {
			if Compress(hosts) != "rack1-node[0001-1000],rack2-node[0001-1000],rack3-node[0001-1000],rack4-node[0001-1000],rack5-node[0001-1000],rack6-node[0001-1000],rack7-node[0001-1000],rack8-node[0001-1000],rack9-node[0001-1000],rack10-node[0001-1000]" {
				b.Fatal("wrong output")
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/1e4, "ns/host")
	})
	b.Run("shuffled-sorted", func(b *testing.B) {
		for b.Loop() {
			CompressSorted(shuffled)
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/1e4, "ns/host")
	})
}
