package slurm

import (
	"fmt"
	"strconv"
	"strings"
)

// MaxCountNodes is the most values ParseCounts returns; ParseRuns, which
// keeps the run-length form, has no such limit.
const MaxCountNodes = 1 << 20

// maxCountValue is the largest value or repeat count accepted: SLURM
// writes tasks as uint16 and CPUs as uint32.
const maxCountValue = 1<<32 - 1

// Run is one part of a count list: Value repeated Repeat times ("2(x3)").
type Run struct {
	Value  int
	Repeat int
}

// ParseRuns parses a count list such as SLURM_TASKS_PER_NODE or
// SLURM_JOB_CPUS_PER_NODE ("2(x3),1") into its runs, as written (equal
// neighbouring runs are not merged). The grammar is SLURM's own consumers'
// (generate_pbs_nodefile.pl): parts separated by ',', each
// `^\d+(\(x\d+\))?$`. Values and repeat counts are at most 2^32-1, and a
// repeat count is at least 1. Errors are *SyntaxError.
func ParseRuns(s string) ([]Run, error) {
	fail := func(off int, part, reason string) ([]Run, error) {
		return nil, &SyntaxError{Kind: "count list", Expr: s, Offset: off, Part: part, Reason: reason}
	}
	if s == "" {
		return fail(0, s, "empty count list")
	}
	var runs []Run
	for off := 0; off <= len(s); {
		n := strings.IndexByte(s[off:], ',')
		if n < 0 {
			n = len(s) - off
		}
		part := s[off : off+n]
		if part == "" {
			return fail(off, part, "empty count")
		}
		valText, rest, hasRepeat := strings.Cut(part, "(")
		value, ok := parseCount(valText)
		if !ok {
			return fail(off, part, "want a count N or N(xR) with decimal N and R")
		}
		repeat := 1
		if hasRepeat {
			r, ok := strings.CutPrefix(rest, "x")
			r, ok2 := strings.CutSuffix(r, ")")
			if !ok || !ok2 {
				return fail(off, part, "want a count N or N(xR) with decimal N and R")
			}
			if repeat, ok = parseCount(r); !ok {
				return fail(off, part, "want a count N or N(xR) with decimal N and R")
			}
			if repeat == 0 {
				return fail(off, part, "repeat count 0")
			}
		}
		runs = append(runs, Run{Value: value, Repeat: repeat})
		off += n + 1
	}
	return runs, nil
}

// parseCount parses a non-empty run of ASCII digits worth at most
// maxCountValue.
func parseCount(s string) (int, bool) {
	if s == "" || len(s) > 20 {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil || v > maxCountValue {
		return 0, false
	}
	return int(v), true
}

// ParseCounts parses a count list ("2(x3),1") into one value per node
// ([2 2 2 1]), with ParseRuns' grammar. It refuses lists of more than
// MaxCountNodes values with an error wrapping ErrTooManyHosts.
func ParseCounts(s string) ([]int, error) {
	runs, err := ParseRuns(s)
	if err != nil {
		return nil, err
	}
	total := 0
	for _, r := range runs {
		total += r.Repeat // at most 2^32 per run and len(s) runs: no overflow
		if total > MaxCountNodes {
			return nil, &SyntaxError{Kind: "count list", Expr: s, Part: s, Err: ErrTooManyHosts,
				Reason: fmt.Sprintf("more than %d nodes", MaxCountNodes)}
		}
	}
	counts := make([]int, 0, total)
	for _, r := range runs {
		for range r.Repeat {
			counts = append(counts, r.Value)
		}
	}
	return counts, nil
}

// FormatCounts writes counts as SLURM writes SLURM_TASKS_PER_NODE
// (uint16_array_to_str): runs of equal neighbours as "v(xN)", a run of one
// as "v". No counts is "". Counts should not be negative: ParseCounts
// reads back only what SLURM can write.
func FormatCounts(counts []int) string {
	var b strings.Builder
	for i := 0; i < len(counts); {
		j := i + 1
		for j < len(counts) && counts[j] == counts[i] {
			j++
		}
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(counts[i]))
		if j-i > 1 {
			fmt.Fprintf(&b, "(x%d)", j-i)
		}
		i = j
	}
	return b.String()
}
