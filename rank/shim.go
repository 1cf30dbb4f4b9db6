package rank

// Temporary stand-ins until slurm.Expand, slurm.ParseCounts and
// pbs.ParseNodefile land.

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

type nodefileT struct {
	Hosts        []string
	RanksPerHost []int
}

func parseNodefile(r io.Reader) (nodefileT, error) {
	var nf nodefileT
	idx := map[string]int{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		h := strings.TrimSpace(sc.Text())
		if h == "" || strings.HasPrefix(h, "#") {
			continue
		}
		i, ok := idx[h]
		if !ok {
			i = len(nf.Hosts)
			idx[h] = i
			nf.Hosts = append(nf.Hosts, h)
			nf.RanksPerHost = append(nf.RanksPerHost, 0)
		}
		nf.RanksPerHost[i]++
	}
	return nf, sc.Err()
}

func expandHosts(expr string) ([]string, error) {
	var out []string
	for expr != "" {
		i := strings.IndexAny(expr, "[,")
		if i < 0 {
			out = append(out, expr)
			break
		}
		if expr[i] == ',' {
			out = append(out, expr[:i])
			expr = expr[i+1:]
			continue
		}
		j := strings.IndexByte(expr[i:], ']')
		if j < 0 {
			return nil, errors.New("unclosed [")
		}
		prefix, body := expr[:i], expr[i+1:i+j]
		for _, part := range strings.Split(body, ",") {
			lo, hi, isRange := strings.Cut(part, "-")
			a, err := strconv.Atoi(lo)
			if err != nil {
				return nil, err
			}
			b := a
			if isRange {
				if b, err = strconv.Atoi(hi); err != nil {
					return nil, err
				}
			}
			for k := a; k <= b; k++ {
				out = append(out, fmt.Sprintf("%s%0*d", prefix, len(lo), k))
			}
		}
		expr = strings.TrimPrefix(expr[i+j+1:], ",")
	}
	return out, nil
}

func parseCounts(s string) ([]int, error) {
	var out []int
	for _, part := range strings.Split(s, ",") {
		c, rep, ok := strings.Cut(part, "(x")
		n, err := strconv.Atoi(c)
		if err != nil {
			return nil, err
		}
		k := 1
		if ok {
			if k, err = strconv.Atoi(strings.TrimSuffix(rep, ")")); err != nil {
				return nil, err
			}
		}
		for range k {
			out = append(out, n)
		}
	}
	return out, nil
}
