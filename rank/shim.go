package rank

// Temporary stand-ins until slurm.ParseCounts and pbs.ParseNodefile land.

import (
	"bufio"
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
