package topology

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// WriteJSON writes the plan as one JSON object {"ranks":[…]}, one rank per
// line, followed by a newline.
func (p *Plan) WriteJSON(w io.Writer) error {
	bw := bufio.NewWriter(w)
	bw.WriteString("{\"ranks\":[")
	for i := range p.Ranks {
		if i > 0 {
			bw.WriteByte(',')
		}
		bw.WriteString("\n")
		b, err := json.Marshal(&p.Ranks[i])
		if err != nil {
			return err
		}
		bw.Write(b)
	}
	bw.WriteString("\n]}\n")
	return bw.Flush()
}

// WriteTable writes one line per rank with aligned columns.
func (p *Plan) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "RANK\tHOST\tNODE\tLOCAL\tROLE\tPARENT\tPORT\tWORKERS\tCPUS\tGPUS\tENV")
	for i := range p.Ranks {
		r := &p.Ranks[i]
		fmt.Fprintf(tw, "%d\t%s\t%d\t%d\t%s\t%d\t%d\t%d\t%s\t%s\t%s\n",
			r.Rank, r.Host, r.Node, r.LocalRank, r.Roles, r.Parent, r.Port, r.Workers,
			dash(r.CPUs), dash(gpuList(r.GPUs)), dash(envString(r.Env)))
	}
	return tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func envString(env map[string]string) string {
	keys := sortedKeys(env)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + env[k]
	}
	return strings.Join(parts, " ")
}

// WriteDot writes the manager tree as a Graphviz digraph: one box per
// server or manager rank (labelled with rank, role and host, and its number
// of worker ranks and slots), an edge from each parent to each child
// manager. Worker ranks are folded into their manager's label.
func (p *Plan) WriteDot(w io.Writer) error {
	bw := bufio.NewWriter(w)
	bw.WriteString("digraph qlaunch {\n  rankdir=TB;\n  node [shape=box, fontname=\"monospace\"];\n")
	for i := range p.Ranks {
		r := &p.Ranks[i]
		if r.Roles.Has(RoleWorker) {
			continue
		}
		ranks, slots := 0, 0
		for _, c := range r.Children {
			if p.Ranks[c].Roles.Has(RoleWorker) {
				ranks++
				slots += p.Ranks[c].Workers
			}
		}
		fmt.Fprintf(bw, "  r%d [label=%q];\n", r.Rank,
			fmt.Sprintf("%d %s\n%s\n%d worker ranks, %d slots", r.Rank, r.Roles, r.Host, ranks, slots))
	}
	for i := range p.Ranks {
		r := &p.Ranks[i]
		if r.Roles.Has(RoleWorker) || r.Parent < 0 {
			continue
		}
		fmt.Fprintf(bw, "  r%d -> r%d;\n", r.Parent, r.Rank)
	}
	bw.WriteString("}\n")
	return bw.Flush()
}

// WriteHostfile writes one host per line, one line per rank in rank order:
// the format of SLURM_HOSTFILE (srun --distribution=arbitrary) and of MPI
// hostfiles with one slot per line.
func (p *Plan) WriteHostfile(w io.Writer) error {
	bw := bufio.NewWriter(w)
	for i := range p.Ranks {
		bw.WriteString(p.Ranks[i].Host)
		bw.WriteByte('\n')
	}
	return bw.Flush()
}
