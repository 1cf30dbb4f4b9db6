package pbs

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"
)

func TestParseNodefile(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want Nodefile
	}{
		{"one per slot", "n1\nn1\nn2\nn2\n", Nodefile{[]string{"n1", "n2"}, []int{2, 2}}},
		{"no final newline", "n1\nn2", Nodefile{[]string{"n1", "n2"}, []int{1, 1}}},
		{"CRLF", "n1\r\nn1\r\nn2\r\n", Nodefile{[]string{"n1", "n2"}, []int{2, 1}}},
		{"blank lines and comments", "# chunk 1\n\nn1\n  \n\t# indented\nn2\n\n", Nodefile{[]string{"n1", "n2"}, []int{1, 1}}},
		{"surrounding blanks", "  n1\t\n\tn1  \n", Nodefile{[]string{"n1"}, []int{2}}},
		{"FQDNs", "c1.pbs.example.org\nc2.pbs.example.org\nc2.pbs.example.org\n", Nodefile{[]string{"c1.pbs.example.org", "c2.pbs.example.org"}, []int{1, 2}}},
		{"uneven chunks", "a\na\na\nb\nc\nc\n", Nodefile{[]string{"a", "b", "c"}, []int{3, 1, 2}}},
		{"reappearing host counts into its first entry", "a\nb\na\nc\nb\nb\n", Nodefile{[]string{"a", "b", "c"}, []int{2, 3, 1}}},
		{"names are opaque", "n[1-2]\nn1,n2\n", Nodefile{[]string{"n[1-2]", "n1,n2"}, []int{1, 1}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, r := range []struct {
				name string
				r    io.Reader
			}{
				{"whole", strings.NewReader(tt.in)},
				{"one byte", iotest.OneByteReader(strings.NewReader(tt.in))},
				{"half", iotest.HalfReader(strings.NewReader(tt.in))},
			} {
				got, err := ParseNodefile(r.r)
				if err != nil || !reflect.DeepEqual(got, tt.want) {
					t.Fatalf("%s: ParseNodefile = %+v, %v; want %+v", r.name, got, err, tt.want)
				}
			}
			if s := tt.want.Slots(); s != strings.Count(tt.in, "\n")+boolInt(!strings.HasSuffix(tt.in, "\n"))-blankOrComment(tt.in) {
				t.Fatalf("Slots() = %d", s)
			}
		})
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func blankOrComment(s string) int {
	n := 0
	for _, l := range strings.Split(strings.TrimSuffix(s, "\n"), "\n") {
		l = strings.Trim(l, " \t\r")
		if l == "" || l[0] == '#' {
			n++
		}
	}
	return n
}

func TestParseNodefileRejects(t *testing.T) {
	long := strings.Repeat("h", MaxLineLength+1)
	tests := []struct {
		name   string
		in     string
		line   int
		noHost bool
	}{
		{"empty", "", 0, true},
		{"only comments", "# nothing\n\n", 0, true},
		{"space inside a name", "n1\nn 2\n", 2, false},
		{"open MPI hostfile syntax", "n1 slots=4\n", 1, false},
		{"control byte", "n1\x00\n", 1, false},
		{"DEL byte", "n\x7f1\n", 1, false},
		{"CR inside", "n\r1\n", 1, false},
		{"line too long", "n1\n" + long + "\n", 2, false},
		{"line far too long", "n1\n" + long + long + "\n", 2, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseNodefile(strings.NewReader(tt.in))
			var ne *NodefileError
			if !errors.As(err, &ne) || ne.Line != tt.line || !ne.BadInput() {
				t.Fatalf("ParseNodefile: %v; want a *NodefileError at line %d", err, tt.line)
			}
			if errors.Is(err, ErrNoHosts) != tt.noHost {
				t.Fatalf("errors.Is(%v, ErrNoHosts) = %v", err, !tt.noHost)
			}
		})
	}
	if _, err := ParseNodefile(strings.NewReader("n1\n" + strings.Repeat("h", MaxLineLength) + "\r\n")); err != nil {
		t.Fatalf("a line of exactly MaxLineLength bytes plus CRLF: %v", err)
	}
}

func TestParseNodefileReadError(t *testing.T) {
	boom := errors.New("boom")
	_, err := ParseNodefile(io.MultiReader(strings.NewReader("n1\n"), iotest.ErrReader(boom)))
	if !errors.Is(err, boom) {
		t.Fatalf("ParseNodefile: %v; want it to wrap the read error", err)
	}
}

func TestParseNodefileLimits(t *testing.T) {
	var b bytes.Buffer
	for range MaxSlots + 1 {
		b.WriteString("n\n")
	}
	_, err := ParseNodefile(&b)
	var ne *NodefileError
	if !errors.As(err, &ne) || ne.Line != MaxSlots+1 {
		t.Fatalf("%d lines: %v", MaxSlots+1, err)
	}
}

func FuzzNodefile(f *testing.F) {
	for _, s := range []string{"n1\nn1\nn2\nn2\n", "a\r\nb\r\n", "# c\n\nx\n", "", "a b\n", "a\nb\na\n", "\x00", strings.Repeat("x", MaxLineLength+1)} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		want, werr := ParseNodefile(bytes.NewReader(data))
		for i, r := range []io.Reader{
			iotest.OneByteReader(bytes.NewReader(data)),
			io.MultiReader(bytes.NewReader(data[:len(data)/2]), bytes.NewReader(data[len(data)/2:])),
		} {
			got, err := ParseNodefile(r)
			if (err == nil) != (werr == nil) || (err != nil && err.Error() != werr.Error()) || !reflect.DeepEqual(got, want) {
				t.Fatalf("reader %d: %+v, %v; whole input: %+v, %v", i, got, err, want, werr)
			}
		}
		if werr != nil {
			return
		}
		if len(want.Hosts) == 0 || len(want.Hosts) != len(want.RanksPerHost) {
			t.Fatalf("ParseNodefile(%q) = %+v", data, want)
		}
		seen := map[string]bool{}
		for i, h := range want.Hosts {
			if h == "" || seen[h] || strings.ContainsAny(h, " \t\r\n") || want.RanksPerHost[i] < 1 {
				t.Fatalf("ParseNodefile(%q) = %+v", data, want)
			}
			seen[h] = true
		}
		// Writing the hosts back one line per slot gives the same file.
		var b strings.Builder
		for i, h := range want.Hosts {
			for range want.RanksPerHost[i] {
				b.WriteString(h + "\n")
			}
		}
		again, err := ParseNodefile(strings.NewReader(b.String()))
		if err != nil || !reflect.DeepEqual(again, want) {
			t.Fatalf("re-parse of %q = %+v, %v; want %+v", b.String(), again, err, want)
		}
	})
}
