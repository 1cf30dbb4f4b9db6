package cli

import (
	"context"
	"flag"
	"fmt"
	"os"

	"github.com/qlaunch/qlaunch/pbs"
	"github.com/qlaunch/qlaunch/slurm"
	"github.com/qlaunch/qlaunch/topology"
)

// planOptions are the flags of qlaunch plan.
type planOptions struct {
	nodelist     string
	nodefile     string
	tasksPerNode int
	format       string
	cpus         int
	checkOptions
}

func (o *planOptions) addFlags(fs *flag.FlagSet) {
	fs.StringVar(&o.nodelist, "nodelist", "", "SLURM hostlist of the nodes (default: $SLURM_JOB_NODELIST)")
	fs.StringVar(&o.nodefile, "nodefile", "", "PBS node file: one line per rank (default: $PBS_NODEFILE)")
	fs.IntVar(&o.tasksPerNode, "ntasks-per-node", 0, "ranks on every node (default: as many as the topology needs; a node file's own counts)")
	fs.StringVar(&o.format, "format", "table", "output: table, json, dot (the manager tree for Graphviz) or hostfile (one line per rank)")
	fs.IntVar(&o.cpus, "cpus", 0, "CPUs per node where the topology leaves cpus_per_node = 0 (default: this machine's online CPUs, as the ranks of a job use)")
	o.checkOptions.addFlags(fs)
}

// cmdPlan prints the plan of a topology for a node list.
func cmdPlan(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet(e, "plan", "plan TOPOLOGY.toml [--nodelist EXPR | --nodefile FILE] [--ntasks-per-node N] [--format table|json|dot|hostfile] [--cpus N]\n"+
		"       plan TOPOLOGY.toml --check [--check-timeout D] [--listen [--duration D]] [--network NET]   (as every rank: srun -N$N qlaunch plan … --check)")
	var o planOptions
	o.addFlags(fs)
	pos, extra, err := parseInterspersed(e, fs, args)
	if err != nil {
		return err
	}
	pos = append(pos, extra...)
	if len(pos) != 1 {
		return usagef("plan: want one topology file, got %d arguments %q", len(pos), pos)
	}
	switch o.format {
	case "table", "json", "dot", "hostfile":
	default:
		return usagef("plan: --format %q: want table, json, dot or hostfile", o.format)
	}
	if o.nodelist != "" && o.nodefile != "" {
		return usagef("plan: --nodelist and --nodefile exclude each other")
	}
	if o.tasksPerNode < 0 || o.cpus < 0 {
		return usagef("plan: --ntasks-per-node and --cpus must not be negative")
	}
	if err := o.checkOptions.validate(); err != nil {
		return err
	}
	if o.check && (o.nodelist != "" || o.nodefile != "" || o.tasksPerNode > 0) {
		return usagef("plan: --check takes the node list from the job each rank runs in, not from --nodelist, --nodefile or --ntasks-per-node")
	}
	t, err := topology.Load(pos[0])
	if err != nil {
		return err
	}
	cpus := o.cpus
	if cpus == 0 {
		cpus = onlineCPUs() // what every rank of a job uses (see boot.go)
	}
	if o.check {
		return runCheck(ctx, e, pos[0], t.WithCPUsPerNode(cpus), &o.checkOptions)
	}
	nodes, tpn, err := planNodes(e, &o)
	if err != nil {
		return err
	}
	if o.tasksPerNode > 0 {
		tpn = make([]int, len(nodes))
		for i := range tpn {
			tpn[i] = o.tasksPerNode
		}
	}
	p, err := t.WithCPUsPerNode(cpus).Plan(nodes, tpn)
	if err != nil {
		return err
	}
	switch o.format {
	case "json":
		return p.WriteJSON(e.stdout)
	case "dot":
		return p.WriteDot(e.stdout)
	case "hostfile":
		return p.WriteHostfile(e.stdout)
	}
	if err := p.WriteTable(e.stdout); err != nil {
		return err
	}
	// How to get this plan from SLURM: the allocation, and the srun options.
	_, err = fmt.Fprintf(e.stdout, "\nSLURM: salloc or sbatch --nodes=%d --exclusive, then srun %s qlaunch %s%s (qlaunch script slurm writes the batch script)\n",
		len(nodes), srunOptions(t, len(nodes)), pos[0], srunHostfileNote(t, pos[0]))
	return err
}

// planNodes returns the node list (and, from a node file, the ranks per
// node) from the flags, else from the job's environment.
func planNodes(e *env, o *planOptions) ([]string, []int, error) {
	nodelist, nodefile := o.nodelist, o.nodefile
	if nodelist == "" && nodefile == "" {
		nodelist = e.getenv("SLURM_JOB_NODELIST")
		if nodelist == "" {
			nodefile = e.getenv("PBS_NODEFILE")
		}
	}
	switch {
	case nodelist != "":
		nodes, err := slurm.Expand(nodelist)
		if err != nil {
			return nil, nil, usageError{fmt.Errorf("plan: --nodelist: %w", err)}
		}
		return nodes, nil, nil
	case nodefile != "":
		f, err := os.Open(nodefile)
		if err != nil {
			return nil, nil, usageError{fmt.Errorf("plan: --nodefile: %w", err)}
		}
		defer f.Close()
		nf, err := pbs.ParseNodefile(f)
		if err != nil {
			return nil, nil, usageError{fmt.Errorf("plan: --nodefile %s: %w", nodefile, err)}
		}
		return nf.Hosts, nf.RanksPerHost, nil
	}
	return nil, nil, usagef("plan: no nodes: give --nodelist or --nodefile (or run inside a SLURM or PBS job)")
}

// parseInterspersed parses flags placed before, between and after the
// positional arguments. It returns the positional arguments before "--"
// and, apart, everything after it.
func parseInterspersed(e *env, fs *flag.FlagSet, args []string) (pos, afterDashes []string, err error) {
	for range len(args) + 1 {
		if err := parseFlags(e, fs, args); err != nil {
			return nil, nil, err
		}
		rest := fs.Args()
		// The flag package stops after "--" (consumed) or at the first
		// non-flag argument.
		if n := len(args) - len(rest); n > 0 && args[n-1] == "--" {
			return pos, rest, nil
		}
		if len(rest) == 0 {
			break
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
	return pos, nil, nil
}
