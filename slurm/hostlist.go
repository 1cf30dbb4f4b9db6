package slurm

import (
	"fmt"
	"math"
	"math/bits"
	"strconv"
	"strings"
)

// MaxRange is SLURM's MAX_RANGE (and MAX_PREFIX_CNT): the most hosts one
// range element may hold ("n[1-65536]" is fine, "n[0-65536]" is not), and
// the most hosts a bracket group before the last one may hold in total.
const MaxRange = 65536

// MaxExpand is the most hosts Expand returns. SLURM sets no limit on the
// total, but "n[1-65536][1-65536]" would need hundreds of gigabytes; Count
// still counts such expressions.
const MaxExpand = 1 << 22

// maxNumber is the largest bound accepted in a range. SLURM's numbers are
// 64-bit unsigned, and 2^64-1 is its internal "empty range" sentinel.
const maxNumber = math.MaxUint64 - 1

// Expand returns the hosts of a SLURM hostlist expression, in the order and
// with the duplicates of `scontrol show hostnames`. An empty expression, or
// one of separators only, is an empty list. Errors are *SyntaxError.
func Expand(expr string) ([]string, error) {
	toks, total, err := parse(expr)
	if err != nil {
		return nil, err
	}
	if total > MaxExpand {
		return nil, &SyntaxError{Kind: "hostlist", Expr: expr, Part: expr, Err: ErrTooManyHosts,
			Reason: fmt.Sprintf("expands to %d hosts, more than the %d this program expands", total, MaxExpand)}
	}
	hosts := make([]string, 0, total)
	var buf []byte
	for i := range toks {
		toks[i].each(&buf, func(h string) { hosts = append(hosts, h) })
	}
	return hosts, nil
}

// Count returns the number of hosts in a hostlist expression, as
// len(Expand(expr)) would, without expanding it: "n[1-1000][1-1000]" costs
// no more than its text. Errors are *SyntaxError; a count that does not fit
// in an int wraps ErrTooManyHosts.
func Count(expr string) (int, error) {
	_, total, err := parse(expr)
	if err != nil {
		return 0, err
	}
	if total > math.MaxInt {
		return 0, &SyntaxError{Kind: "hostlist", Expr: expr, Part: expr, Err: ErrTooManyHosts,
			Reason: "too many hosts to count (more than 2^63-1)"}
	}
	return int(total), nil
}

// token is one separator-delimited word of an expression. A literal token
// is one host. Otherwise the hosts are lits[0] g[0] lits[1] g[1] … g[k-1]
// lits[k], where g[i] runs over the numbers of groups[i].
type token struct {
	lits   []string
	groups []group
}

// group is the parsed content of one bracket pair.
type group struct {
	elems []element
	count uint64 // hosts in all elements
}

// element is "lo" or "lo-hi" inside brackets, printed zero-padded to width.
type element struct {
	lo, hi uint64
	width  int
}

// parse splits expr into tokens, checks every one of them and returns them
// with the total host count, saturated at math.MaxUint64.
func parse(expr string) ([]token, uint64, error) {
	var (
		toks  []token
		total uint64
		tz    tokenizer
	)
	tz.s = expr
	for {
		start, end, ok := tz.next()
		if !ok {
			break
		}
		tok, n, err := parseToken(expr, start, end)
		if err != nil {
			return nil, 0, err
		}
		toks = append(toks, tok)
		if s, carry := bits.Add64(total, n, 0); carry != 0 {
			total = math.MaxUint64
		} else {
			total = s
		}
	}
	return toks, total, nil
}

func isSep(c byte) bool { return c == ',' || c == ' ' || c == '\t' || c == '\n' }

// tokenizer cuts an expression into tokens as SLURM's _next_tok does: a
// token ends at a separator, unless that separator lies between a '[' and
// the first ']' after it. nextOpen and nextClose cache the last search for
// '[' and ']' so that scanning stays linear.
type tokenizer struct {
	s                   string
	pos                 int
	nextOpen, nextClose int // absolute index of the next '[' / ']', -1 none
	openFrom, closeFrom int // where those searches started, plus one
}

// find returns the index of the first c at or after from, or -1, reusing
// the cached answer while it is still valid (from only grows).
func (t *tokenizer) find(c byte, from int, cache, cachedFrom *int) int {
	if *cachedFrom > 0 && *cachedFrom-1 <= from && (*cache == -1 || *cache >= from) {
		return *cache
	}
	i := strings.IndexByte(t.s[from:], c)
	if i >= 0 {
		i += from
	}
	*cache, *cachedFrom = i, from+1
	return i
}

func (t *tokenizer) next() (start, end int, ok bool) {
	s := t.s
	i := t.pos
	for i < len(s) && isSep(s[i]) {
		i++
	}
	if i == len(s) {
		t.pos = i
		return 0, 0, false
	}
	start, parse, end := i, i, i
scan:
	for {
		for end < len(s) && !isSep(s[end]) {
			end++
		}
		for {
			open := t.find('[', parse, &t.nextOpen, &t.openFrom)
			if open < 0 || open > end {
				break scan
			}
			closing := t.find(']', parse, &t.nextClose, &t.closeFrom)
			if closing < 0 || closing < open {
				break scan
			}
			if closing < end {
				parse = closing + 1
				continue
			}
			end = closing
			break
		}
	}
	t.pos = end
	return start, end, true
}

// parseToken parses expr[start:end] and returns it with its host count
// (saturated at math.MaxUint64).
func parseToken(expr string, start, end int) (token, uint64, error) {
	tok := expr[start:end]
	p := strings.LastIndexByte(tok, '[')
	if p < 0 {
		return token{lits: []string{tok}}, 1, nil
	}
	q := strings.IndexByte(tok[p+1:], ']')
	if q < 0 {
		return token{}, 0, &SyntaxError{Kind: "hostlist", Expr: expr, Offset: start + p, Part: tok[p:],
			Reason: "no ']' closes the '['"}
	}
	q += p + 1
	last, err := parseGroup(expr, start+p+1, start+q, false)
	if err != nil {
		return token{}, 0, err
	}
	// Groups and literals are collected right to left, then reversed.
	groups := []group{last}
	lits := []string{tok[q+1:]}
	rest := tok[:p]
	for {
		pp := strings.LastIndexByte(rest, '[')
		if pp < 0 {
			break
		}
		qq := strings.LastIndexByte(rest[pp:], ']')
		if qq < 0 {
			break
		}
		qq += pp
		g, err := parseGroup(expr, start+pp+1, start+qq, true)
		if err != nil {
			return token{}, 0, err
		}
		groups = append(groups, g)
		lits = append(lits, rest[qq+1:])
		rest = rest[:pp]
	}
	lits = append(lits, rest)
	for i, j := 0, len(groups)-1; i < j; i, j = i+1, j-1 {
		groups[i], groups[j] = groups[j], groups[i]
	}
	for i, j := 0, len(lits)-1; i < j; i, j = i+1, j-1 {
		lits[i], lits[j] = lits[j], lits[i]
	}
	n := uint64(1)
	for _, g := range groups {
		hi, lo := bits.Mul64(n, g.count)
		if hi != 0 {
			n = math.MaxUint64
			break
		}
		n = lo
	}
	return token{lits: lits, groups: groups}, n, nil
}

// parseGroup parses the range list expr[start:end] (the text between a
// bracket pair). A prefix group (any but the last of a token) may hold at
// most MaxRange hosts in all; every element at most MaxRange.
func parseGroup(expr string, start, end int, prefix bool) (group, error) {
	var g group
	text := expr[start:end]
	off := 0
	for {
		n := strings.IndexByte(text[off:], ',')
		if n < 0 {
			n = len(text) - off
		}
		e, err := parseElement(expr, start+off, start+off+n)
		if err != nil {
			return group{}, err
		}
		g.elems = append(g.elems, e)
		g.count += e.hi - e.lo + 1 // at most MaxRange each: no overflow
		if prefix && g.count > MaxRange {
			return group{}, &SyntaxError{Kind: "hostlist", Expr: expr, Offset: start - 1, Part: expr[start-1 : end+1],
				Err: ErrTooManyHosts, Reason: fmt.Sprintf("too many hosts in a bracket group before the last (more than %d)", MaxRange)}
		}
		off += n + 1
		if off > len(text) {
			return g, nil
		}
	}
}

// parseElement parses "N" or "N-M" at expr[start:end].
func parseElement(expr string, start, end int) (element, error) {
	text := expr[start:end]
	fail := func(reason string) (element, error) {
		return element{}, &SyntaxError{Kind: "hostlist", Expr: expr, Offset: start, Part: text, Reason: reason}
	}
	if text == "" {
		return fail("empty range element")
	}
	if strings.IndexByte(text, 'x') >= 0 {
		return fail("'x' is reserved for multi-dimensional box syntax")
	}
	loText, hiText, isRange := strings.Cut(text, "-")
	if isRange && strings.HasPrefix(hiText, "-") {
		return fail("negative numbers are not allowed")
	}
	if loText == "" {
		return fail("missing low bound")
	}
	lo, reason := parseBound(loText)
	if reason != "" {
		return fail(reason)
	}
	hi := lo
	if isRange {
		if hiText == "" {
			return fail("missing high bound")
		}
		if hi, reason = parseBound(hiText); reason != "" {
			return fail(reason)
		}
	}
	if lo > hi {
		return fail(fmt.Sprintf("low bound %d is above high bound %d", lo, hi))
	}
	if hi-lo >= MaxRange {
		e, err := fail(fmt.Sprintf("too many hosts in range (%s, at most %d)", rangeSize(hi-lo), MaxRange))
		err.(*SyntaxError).Err = ErrTooManyHosts
		return e, err
	}
	return element{lo: lo, hi: hi, width: len(loText)}, nil
}

// rangeSize prints n+1 without overflow.
func rangeSize(n uint64) string {
	if n == math.MaxUint64 {
		return "18446744073709551616"
	}
	return strconv.FormatUint(n+1, 10)
}

// parseBound parses a range bound: ASCII digits only, at most maxNumber.
func parseBound(s string) (uint64, string) {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, fmt.Sprintf("%q is not a number", s)
		}
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil || n > maxNumber {
		return 0, fmt.Sprintf("number %s is too large (at most %d)", s, uint64(maxNumber))
	}
	return n, ""
}

// each calls yield with every host of the token, in SLURM's order: the
// last group varies fastest; the others nest with the second-to-last
// outermost, then leftwards (g[k-2] > g[k-3] > … > g[0] > g[k-1]). buf is
// scratch space reused between calls.
func (t *token) each(buf *[]byte, yield func(string)) {
	k := len(t.groups)
	if k == 0 {
		yield(t.lits[0])
		return
	}
	// order lists group indices from the outermost loop to the innermost.
	order := make([]int, 0, k)
	for i := k - 2; i >= 0; i-- {
		order = append(order, i)
	}
	order = append(order, k-1)
	type cursor struct {
		elem int
		val  uint64
	}
	cur := make([]cursor, k)
	for i := range cur {
		cur[i] = cursor{0, t.groups[i].elems[0].lo}
	}
	for {
		b := (*buf)[:0]
		for i, g := range t.groups {
			b = append(b, t.lits[i]...)
			b = appendPadded(b, cur[i].val, g.elems[cur[i].elem].width)
		}
		b = append(b, t.lits[k]...)
		*buf = b
		yield(string(b))
		// Advance the odometer from the innermost loop outwards.
		j := k - 1
		for ; j >= 0; j-- {
			gi := order[j]
			c := &cur[gi]
			es := t.groups[gi].elems
			if c.val < es[c.elem].hi {
				c.val++
				break
			}
			if c.elem+1 < len(es) {
				c.elem++
				c.val = es[c.elem].lo
				break
			}
			c.elem, c.val = 0, es[0].lo
		}
		if j < 0 {
			return
		}
	}
}

// appendPadded appends n in decimal, zero-padded to width (C's "%0*lu").
func appendPadded(b []byte, n uint64, width int) []byte {
	var tmp [20]byte
	d := strconv.AppendUint(tmp[:0], n, 10)
	for i := len(d); i < width; i++ {
		b = append(b, '0')
	}
	return append(b, d...)
}
