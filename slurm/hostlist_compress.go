package slurm

import (
	"slices"
	"strconv"
	"strings"
)

// Compress returns the shortest form SLURM writes for hosts, exactly as
// `scontrol show hostlist` (hostlist_ranged_string) does: input order and
// duplicates are kept; a host joins the range before it only when its
// prefix is the same, its number is the next one and the zero padding is
// compatible ("n9,n10" → "n[9-10]", "n009,n10" → "n[009,10]"). Only the
// trailing number of a name is ranged, so no suffix ever follows ']'.
//
// Departures, all for a faithful round trip (Expand(Compress(h)) == h for
// names without '[', ']', ',' or white space): empty names are dropped; a
// name whose trailing digits exceed 2^64-2 is kept whole, never ranged; a
// run longer than MaxRange is written as several elements of one bracket
// group, since SLURM itself cannot read "n[1-70000]" back.
func Compress(hosts []string) string {
	return format(pushAll(hosts))
}

// CompressSorted is `scontrol show hostlistsorted` (hostlist_sort): the
// hosts in natural order (prefixes by strnatcmp, then by number where the
// zero padding is compatible, else by width), duplicates kept.
func CompressSorted(hosts []string) string {
	rs := pushAll(hosts)
	sortRanges(rs)
	rs = coalesce(rs)
	return format(collapse(rs))
}

// CompressUnique is hostlist_uniq: sorted as CompressSorted, overlapping
// and adjacent ranges joined, duplicates dropped. Repeated names are
// dropped before SLURM's algorithm runs: on its own it keeps a duplicate
// when zero-padded and unpadded numbers interleave ("9,10,06,10" sorts as
// 9-10, 06, 10, and the two 10s never meet).
func CompressUnique(hosts []string) string {
	seen := make(map[string]bool, len(hosts))
	distinct := make([]string, 0, len(hosts))
	for _, h := range hosts {
		if !seen[h] {
			seen[h] = true
			distinct = append(distinct, h)
		}
	}
	rs := pushAll(distinct)
	sortRanges(rs)
	return format(uniq(rs))
}

// hostRange is SLURM's hostrange: prefix followed by the numbers lo..hi,
// each zero-padded to width, or one host named prefix when single.
type hostRange struct {
	prefix string
	lo, hi uint64
	width  int
	single bool
}

func (r *hostRange) count() uint64 {
	if r.single {
		return 1
	}
	return r.hi - r.lo + 1
}

// splitHost splits a name into prefix and trailing number (hostname_create).
func splitHost(h string) hostRange {
	i := len(h)
	for i > 0 && h[i-1] >= '0' && h[i-1] <= '9' {
		i--
	}
	if i == len(h) {
		return hostRange{prefix: h, single: true}
	}
	n, err := strconv.ParseUint(h[i:], 10, 64)
	if err != nil || n > maxNumber {
		return hostRange{prefix: h, single: true}
	}
	return hostRange{prefix: h[:i], lo: n, hi: n, width: len(h) - i}
}

// pushAll builds the range list as hostlist_push_host does for each host.
func pushAll(hosts []string) []hostRange {
	var rs []hostRange
	for _, h := range hosts {
		if h == "" {
			continue
		}
		r := splitHost(h)
		if n := len(rs); n > 0 {
			t := &rs[n-1]
			if !t.single && !r.single && t.hi+1 == r.lo && t.prefix == r.prefix && widthEquiv(t.lo, &t.width, r.lo, &r.width) {
				t.hi = r.hi
				continue
			}
		}
		rs = append(rs, r)
	}
	return rs
}

// zeroPadded is the number of zeros "%0*lu" puts before n at width.
func zeroPadded(n uint64, width int) int {
	d := 1
	for n >= 10 {
		n /= 10
		d++
	}
	if width > d {
		return width - d
	}
	return 0
}

// widthEquiv reports whether numbers n and m, written at widths *wn and
// *wm, can share one width without changing the zero padding of either
// (SLURM's _width_equiv); if so it sets the width that must change to the
// other one, as SLURM does.
func widthEquiv(n uint64, wn *int, m uint64, wm *int) bool {
	if *wn == *wm {
		return true
	}
	npad, nmpad := zeroPadded(n, *wn), zeroPadded(n, *wm)
	mpad, mnpad := zeroPadded(m, *wm), zeroPadded(m, *wn)
	switch {
	case npad != nmpad && mpad != mnpad:
		return false
	case npad != nmpad:
		*wm = *wn
	default:
		*wn = *wm
	}
	return true
}

// compatible is widthEquiv without its side effect.
func compatible(a, b *hostRange) bool {
	wa, wb := a.width, b.width
	return widthEquiv(a.lo, &wa, b.lo, &wb)
}

// prefixCmp is hostrange_prefix_cmp: natural order of prefixes, and for an
// equal prefix a bare name (single) first. Equal means byte-equal here:
// strnatcmp also calls names equal that differ only in white space, which
// no hostlist can carry anyway.
func prefixCmp(a, b *hostRange) int {
	if a.prefix != b.prefix {
		if c := strnatcmp(a.prefix, b.prefix); c != 0 {
			return c
		}
		return strings.Compare(a.prefix, b.prefix)
	}
	return b2i(b.single) - b2i(a.single)
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// rangeCmp is hostrange_cmp: prefix, then low number where the widths are
// compatible, else width.
func rangeCmp(a, b *hostRange) int {
	if c := prefixCmp(a, b); c != 0 {
		return c
	}
	if compatible(a, b) {
		switch {
		case a.lo < b.lo:
			return -1
		case a.lo > b.lo:
			return 1
		}
		return 0
	}
	return a.width - b.width
}

// sortRanges sorts as hostlist_sort's qsort does; ties keep input order.
func sortRanges(rs []hostRange) {
	slices.SortStableFunc(rs, func(a, b hostRange) int { return rangeCmp(&a, &b) })
}

// intersect is hostrange_intersect for a sorted pair (a before b): the
// hosts both hold, when a reaches strictly past b's first host.
func intersect(a, b *hostRange) (hostRange, bool) {
	if a.single || b.single {
		return hostRange{}, false
	}
	if a.hi > b.lo && prefixCmp(a, b) == 0 && widthEquiv(a.lo, &a.width, b.lo, &b.width) {
		r := *a
		r.lo = b.lo
		r.hi = min(b.hi, a.hi)
		return r, true
	}
	return hostRange{}, false
}

// coalesce is hostlist_coalesce on a sorted list: it splits overlapping
// neighbours so that every duplicate stands as its own element. SLURM
// restarts its scan from the end after each split; only the pairs from the
// split onwards can have changed, so the scan resumes there.
func coalesce(rs []hostRange) []hostRange {
	for i := len(rs) - 1; i > 0; {
		nw, ok := intersect(&rs[i-1], &rs[i])
		if !ok {
			i--
			continue
		}
		prev, next := &rs[i-1], &rs[i]
		if nw.hi < prev.hi {
			next.hi = prev.hi
		}
		prev.hi = nw.lo
		next.lo = nw.hi
		var ins []hostRange
		for v := nw.lo; ; v++ {
			one := hostRange{prefix: nw.prefix, lo: v, hi: v, width: nw.width}
			if v > prev.hi {
				ins = append(ins, one)
			}
			if v < next.lo {
				ins = append(ins, one)
			}
			if v == nw.hi {
				break
			}
		}
		rs = slices.Insert(rs, i, ins...)
		i = min(len(rs)-1, i+len(ins)+1)
	}
	return rs
}

// collapse is hostlist_collapse: join neighbours that continue each other.
func collapse(rs []hostRange) []hostRange {
	for i := len(rs) - 1; i > 0; i-- {
		prev, next := &rs[i-1], &rs[i]
		if !prev.single && !next.single && prev.hi+1 == next.lo && prefixCmp(prev, next) == 0 &&
			widthEquiv(prev.lo, &prev.width, next.lo, &next.width) {
			prev.hi = next.hi
			rs = slices.Delete(rs, i, i+1)
		}
	}
	return rs
}

// uniq is hostlist_uniq's join loop on a sorted list.
func uniq(rs []hostRange) []hostRange {
	for i := 1; i < len(rs); {
		if join(&rs[i-1], &rs[i]) {
			rs = slices.Delete(rs, i, i+1)
		} else {
			i++
		}
	}
	return rs
}

// join is hostrange_join: merge b into a when they touch or overlap.
func join(a, b *hostRange) bool {
	if prefixCmp(a, b) != 0 || !widthEquiv(a.lo, &a.width, b.lo, &b.width) {
		return false
	}
	switch {
	case a.single && b.single:
		return true
	case a.hi+1 == b.lo:
		a.hi = b.hi
		return true
	case a.hi >= b.lo:
		a.hi = max(a.hi, b.hi)
		return true
	}
	return false
}

// sameGroup is hostrange_within_range: may a and b share one bracket group?
func sameGroup(a, b *hostRange) bool {
	return prefixCmp(a, b) == 0 && !a.single && !b.single
}

// format is hostlist_ranged_string for a one-dimensional cluster.
func format(rs []hostRange) string {
	var b strings.Builder
	for i := 0; i < len(rs); {
		if i > 0 {
			b.WriteByte(',')
		}
		bracket := rs[i].count() > 1 || (i+1 < len(rs) && sameGroup(&rs[i], &rs[i+1]))
		b.WriteString(rs[i].prefix)
		if bracket {
			b.WriteByte('[')
		}
		start := i
		for {
			if i > start {
				b.WriteByte(',')
			}
			writeNumbers(&b, &rs[i])
			i++
			if i >= len(rs) || !sameGroup(&rs[i], &rs[i-1]) {
				break
			}
		}
		if bracket {
			b.WriteByte(']')
		}
	}
	return b.String()
}

// writeNumbers writes "lo" or "lo-hi" (hostrange_numstr), cutting ranges
// longer than MaxRange into pieces that Expand accepts.
func writeNumbers(b *strings.Builder, r *hostRange) {
	if r.single {
		return
	}
	var buf [48]byte
	for lo := r.lo; ; {
		hi := r.hi
		if hi-lo >= MaxRange {
			hi = lo + MaxRange - 1
		}
		if lo > r.lo {
			b.WriteByte(',')
		}
		out := appendPadded(buf[:0], lo, r.width)
		if hi > lo {
			out = append(out, '-')
			out = appendPadded(out, hi, r.width)
		}
		b.Write(out)
		if hi == r.hi {
			return
		}
		lo = hi + 1
	}
}

// strnatcmp is SLURM's strnatcmp (Martin Pool's natural order): runs of
// digits compare by value, or left-aligned when either starts with '0';
// white space is skipped; bytes compare as C's signed char.
func strnatcmp(a, b string) int {
	at := func(s string, i int) byte {
		if i < len(s) {
			return s[i]
		}
		return 0
	}
	isDigit := func(c byte) bool { return c >= '0' && c <= '9' }
	isSpace := func(c byte) bool { return c == ' ' || (c >= '\t' && c <= '\r') }
	ai, bi := 0, 0
	for {
		ca, cb := at(a, ai), at(b, bi)
		for isSpace(ca) {
			ai++
			ca = at(a, ai)
		}
		for isSpace(cb) {
			bi++
			cb = at(b, bi)
		}
		if isDigit(ca) && isDigit(cb) {
			var r int
			if ca == '0' || cb == '0' {
				r = compareLeft(a[ai:], b[bi:])
			} else {
				r = compareRight(a[ai:], b[bi:])
			}
			if r != 0 {
				return r
			}
		}
		if ca == 0 && cb == 0 {
			return 0
		}
		if int8(ca) < int8(cb) {
			return -1
		}
		if int8(ca) > int8(cb) {
			return 1
		}
		ai++
		bi++
	}
}

// compareRight compares two right-aligned digit runs: the longer run wins,
// else the first difference.
func compareRight(a, b string) int {
	bias := 0
	for i := 0; ; i++ {
		da := i < len(a) && a[i] >= '0' && a[i] <= '9'
		db := i < len(b) && b[i] >= '0' && b[i] <= '9'
		switch {
		case !da && !db:
			return bias
		case !da:
			return -1
		case !db:
			return 1
		case a[i] < b[i] && bias == 0:
			bias = -1
		case a[i] > b[i] && bias == 0:
			bias = 1
		}
	}
}

// compareLeft compares two left-aligned digit runs: the first difference
// wins.
func compareLeft(a, b string) int {
	for i := 0; ; i++ {
		da := i < len(a) && a[i] >= '0' && a[i] <= '9'
		db := i < len(b) && b[i] >= '0' && b[i] <= '9'
		switch {
		case !da && !db:
			return 0
		case !da:
			return -1
		case !db:
			return 1
		case a[i] < b[i]:
			return -1
		case a[i] > b[i]:
			return 1
		}
	}
}
