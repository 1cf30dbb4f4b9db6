package topology

import (
	"fmt"
	"math/bits"
	"strconv"
	"strings"
)

// MaxCPUs bounds CPU numbers when ParseCPUList is given no bitmap size
// (nbits <= 0). Linux's NR_CPUS tops out at 8192 today.
const MaxCPUs = 1 << 16

// CPUSet is a set of CPU numbers. The zero value is the empty set. A CPUSet
// is a value: methods never modify the receiver.
type CPUSet struct {
	words []uint64
}

// NewCPUSet returns the set of the given CPUs (negative numbers are ignored).
func NewCPUSet(cpus ...int) CPUSet {
	var s CPUSet
	for _, c := range cpus {
		if c >= 0 {
			s.add(c)
		}
	}
	return s
}

// cpuRange returns the set {lo, …, hi-1}.
func cpuRange(lo, hi int) CPUSet {
	var s CPUSet
	for c := lo; c < hi; c++ {
		s.add(c)
	}
	return s
}

func (s *CPUSet) add(c int) {
	w := c / 64
	for len(s.words) <= w {
		s.words = append(s.words, 0)
	}
	s.words[w] |= 1 << (uint(c) % 64)
}

// Contains reports whether cpu is in the set.
func (s CPUSet) Contains(cpu int) bool {
	if cpu < 0 || cpu/64 >= len(s.words) {
		return false
	}
	return s.words[cpu/64]&(1<<(uint(cpu)%64)) != 0
}

// Len returns the number of CPUs in the set.
func (s CPUSet) Len() int {
	n := 0
	for _, w := range s.words {
		n += bits.OnesCount64(w)
	}
	return n
}

// IsEmpty reports whether the set holds no CPU.
func (s CPUSet) IsEmpty() bool { return s.Len() == 0 }

// Max returns the highest CPU in the set, or -1 when it is empty.
func (s CPUSet) Max() int {
	for i := len(s.words) - 1; i >= 0; i-- {
		if s.words[i] != 0 {
			return i*64 + 63 - bits.LeadingZeros64(s.words[i])
		}
	}
	return -1
}

// Intersects reports whether s and o share a CPU.
func (s CPUSet) Intersects(o CPUSet) bool {
	for i := 0; i < len(s.words) && i < len(o.words); i++ {
		if s.words[i]&o.words[i] != 0 {
			return true
		}
	}
	return false
}

// Union returns s ∪ o.
func (s CPUSet) Union(o CPUSet) CPUSet {
	n := max(len(s.words), len(o.words))
	u := CPUSet{words: make([]uint64, n)}
	copy(u.words, s.words)
	for i, w := range o.words {
		u.words[i] |= w
	}
	return u
}

// Equal reports whether s and o hold the same CPUs.
func (s CPUSet) Equal(o CPUSet) bool {
	n := max(len(s.words), len(o.words))
	for i := range n {
		var a, b uint64
		if i < len(s.words) {
			a = s.words[i]
		}
		if i < len(o.words) {
			b = o.words[i]
		}
		if a != b {
			return false
		}
	}
	return true
}

// Slice returns the CPUs in ascending order.
func (s CPUSet) Slice() []int {
	out := make([]int, 0, s.Len())
	for i, w := range s.words {
		for w != 0 {
			b := bits.TrailingZeros64(w)
			out = append(out, i*64+b)
			w &= w - 1
		}
	}
	return out
}

// String formats the set as the kernel prints a cpulist: ascending, runs of
// two or more as "a-b", singletons as "a", comma-separated, no spaces; the
// empty set is "".
func (s CPUSet) String() string {
	var b strings.Builder
	cpus := s.Slice()
	for i := 0; i < len(cpus); {
		j := i
		for j+1 < len(cpus) && cpus[j+1] == cpus[j]+1 {
			j++
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(cpus[i]))
		if j > i {
			b.WriteByte('-')
			b.WriteString(strconv.Itoa(cpus[j]))
		}
		i = j + 1
	}
	return b.String()
}

// MarshalText formats the set as String does.
func (s CPUSet) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// ParseCPUList parses a Linux cpulist with the kernel's grammar
// (bitmap_parselist): regions separated by commas and/or white space;
// a region is N, N-M, N-M:used/group (in every group of "group" bits
// starting at N, the first "used" are set) or "all" (any case, optionally
// with :used/group); the letter N stands for the last bit, nbits-1. An empty
// string is the empty set. Errors wrap ErrCPUListSyntax, ErrCPUListOverflow
// (a number of 2^32 or more) or ErrCPUListRange (a bit >= nbits). nbits <= 0
// means MaxCPUs.
func ParseCPUList(s string, nbits int) (CPUSet, error) {
	if nbits <= 0 || nbits > MaxCPUs {
		nbits = MaxCPUs
	}
	p := cpuListParser{s: s, lastbit: uint64(nbits - 1)}
	var set CPUSet
	for {
		p.skipSeparators()
		if p.atEnd() {
			return set, nil
		}
		start := p.i
		r, err := p.region()
		if err != nil {
			return CPUSet{}, fmt.Errorf("cpulist %q at %q: %w", s, p.rest(start), err)
		}
		if r.start > r.end || r.group == 0 || r.used > r.group {
			return CPUSet{}, fmt.Errorf("cpulist %q at %q: %w", s, p.rest(start), ErrCPUListSyntax)
		}
		if r.end >= uint64(nbits) {
			return CPUSet{}, fmt.Errorf("cpulist %q at %q: %w (%d CPUs)", s, p.rest(start), ErrCPUListRange, nbits)
		}
		for g := r.start; g <= r.end; g += r.group {
			for c := g; c < g+r.used && c <= r.end; c++ {
				set.add(int(c))
			}
		}
	}
}

type cpuRegion struct{ start, end, used, group uint64 }

type cpuListParser struct {
	s       string
	i       int
	lastbit uint64
}

func (p *cpuListParser) rest(from int) string {
	end := from
	for end < len(p.s) && !isCPUListSep(p.s[end]) && p.s[end] != 0 {
		end++
	}
	return p.s[from:end]
}

func isCPUListSep(c byte) bool {
	return c == ',' || c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'
}

// atEnd is the kernel's end_of_str: the string ends at its end or at a NUL.
func (p *cpuListParser) atEnd() bool { return p.i >= len(p.s) || p.s[p.i] == 0 }

func (p *cpuListParser) endOfRegion() bool { return p.atEnd() || isCPUListSep(p.s[p.i]) }

func (p *cpuListParser) skipSeparators() {
	for p.i < len(p.s) && isCPUListSep(p.s[p.i]) {
		p.i++
	}
}

func (p *cpuListParser) region() (cpuRegion, error) {
	var r cpuRegion
	var err error
	if len(p.s)-p.i >= 3 && strings.EqualFold(p.s[p.i:p.i+3], "all") {
		p.i += 3
		r.start, r.end = 0, p.lastbit
	} else {
		if r.start, err = p.number(); err != nil {
			return r, err
		}
		if p.endOfRegion() {
			r.end = r.start
			r.used, r.group = r.end+1, r.end+1
			return r, nil
		}
		if p.s[p.i] != '-' {
			return r, ErrCPUListSyntax
		}
		p.i++
		if r.end, err = p.number(); err != nil {
			return r, err
		}
	}
	if p.endOfRegion() {
		r.used, r.group = r.end+1, r.end+1
		return r, nil
	}
	if p.s[p.i] != ':' {
		return r, ErrCPUListSyntax
	}
	p.i++
	if r.used, err = p.number(); err != nil {
		return r, err
	}
	if p.atEnd() || p.s[p.i] != '/' {
		return r, ErrCPUListSyntax
	}
	p.i++
	if r.group, err = p.number(); err != nil {
		return r, err
	}
	return r, nil
}

// number is the kernel's bitmap_getnum: "N" or decimal digits below 2^32.
func (p *cpuListParser) number() (uint64, error) {
	if p.i < len(p.s) && p.s[p.i] == 'N' {
		p.i++
		return p.lastbit, nil
	}
	start := p.i
	var n uint64
	overflow := false
	for p.i < len(p.s) && p.s[p.i] >= '0' && p.s[p.i] <= '9' {
		if !overflow {
			n = n*10 + uint64(p.s[p.i]-'0')
			if n > 1<<32-1 {
				overflow = true
			}
		}
		p.i++
	}
	if p.i == start {
		return 0, ErrCPUListSyntax
	}
	if overflow {
		return 0, ErrCPUListOverflow
	}
	return n, nil
}
