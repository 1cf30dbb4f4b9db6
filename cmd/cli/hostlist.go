package cli

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/qlaunch/qlaunch/slurm"
)

// maxHostlistInput bounds what "qlaunch hostlist" reads from stdin.
const maxHostlistInput = 64 << 20

const hostlistSynopsis = `hostlist expand|compress|count [flags] [EXPR…]

  expand EXPR…                       print the hosts, one per line (scontrol show hostnames)
  compress [--sorted|--unique] EXPR… print one ranged expression (scontrol show hostlist)
  count EXPR…                        print the number of hosts, summed over all EXPR

With no EXPR, the expression is read from stdin (hosts may be one per line).
Invalid input exits with status 2 and names the offending part.`

// cmdHostlist implements "qlaunch hostlist".
func cmdHostlist(ctx context.Context, e *env, args []string) error {
	if len(args) == 0 {
		fmt.Fprintf(e.stderr, "usage: qlaunch %s\n", hostlistSynopsis)
		return usagef("hostlist: no action given (expand, compress or count)")
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		fmt.Fprintf(e.stdout, "usage: qlaunch %s\n", hostlistSynopsis)
		return nil
	case "expand":
		return hostlistExpand(e, args[1:])
	case "compress":
		return hostlistCompress(e, args[1:])
	case "count":
		return hostlistCount(e, args[1:])
	}
	fmt.Fprintf(e.stderr, "usage: qlaunch %s\n", hostlistSynopsis)
	return usagef("hostlist: unknown action %q (want expand, compress or count)", args[0])
}

// hostlistExprs returns the expressions to work on: the arguments, or else
// all of stdin as one expression (newlines separate hosts).
func hostlistExprs(e *env, args []string) ([]string, error) {
	if len(args) > 0 {
		return args, nil
	}
	data, err := io.ReadAll(io.LimitReader(e.stdin, maxHostlistInput+1))
	if err != nil {
		return nil, fmt.Errorf("hostlist: read stdin: %w", err)
	}
	if len(data) > maxHostlistInput {
		return nil, usagef("hostlist: stdin is longer than %d bytes", maxHostlistInput)
	}
	return []string{strings.ReplaceAll(string(data), "\r\n", "\n")}, nil
}

func hostlistExpand(e *env, args []string) error {
	fs := newFlagSet(e, "hostlist expand", "hostlist expand [EXPR…]\n\nPrint the hosts of each SLURM hostlist expression, one per line, in SLURM's\norder with duplicates kept. With no EXPR, read the expression from stdin.")
	if err := parseFlags(e, fs, args); err != nil {
		return err
	}
	exprs, err := hostlistExprs(e, fs.Args())
	if err != nil {
		return err
	}
	// Check every expression before printing anything.
	total := 0
	for _, x := range exprs {
		n, err := slurm.Count(x)
		if err != nil {
			return err
		}
		if n > slurm.MaxExpand-total {
			return usagef("hostlist: the expressions expand to more than %d hosts", slurm.MaxExpand)
		}
		total += n
	}
	w := bufio.NewWriter(e.stdout)
	for _, x := range exprs {
		hosts, err := slurm.Expand(x)
		if err != nil {
			return err
		}
		for _, h := range hosts {
			w.WriteString(h)
			w.WriteByte('\n')
		}
	}
	return w.Flush()
}

func hostlistCompress(e *env, args []string) error {
	fs := newFlagSet(e, "hostlist compress", "hostlist compress [--sorted|--unique] [EXPR…]\n\nPrint the hosts of all EXPR (host names or hostlist expressions; with none,\nread from stdin, one or more per line) as one ranged expression, as\nscontrol show hostlist does: input order and duplicates kept.")
	sorted := fs.Bool("sorted", false, "sort the hosts in natural order first, keeping duplicates (scontrol show hostlistsorted)")
	unique := fs.Bool("unique", false, "sort the hosts and drop duplicates")
	if err := parseFlags(e, fs, args); err != nil {
		return err
	}
	if *sorted && *unique {
		return usagef("hostlist compress: --sorted and --unique exclude each other")
	}
	exprs, err := hostlistExprs(e, fs.Args())
	if err != nil {
		return err
	}
	var hosts []string
	for _, x := range exprs {
		n, err := slurm.Count(x)
		if err != nil {
			return err
		}
		if n > slurm.MaxExpand-len(hosts) {
			return usagef("hostlist: the expressions hold more than %d hosts", slurm.MaxExpand)
		}
		h, err := slurm.Expand(x)
		if err != nil {
			return err
		}
		hosts = append(hosts, h...)
	}
	var out string
	switch {
	case *sorted:
		out = slurm.CompressSorted(hosts)
	case *unique:
		out = slurm.CompressUnique(hosts)
	default:
		out = slurm.Compress(hosts)
	}
	_, err = fmt.Fprintln(e.stdout, out)
	return err
}

func hostlistCount(e *env, args []string) error {
	fs := newFlagSet(e, "hostlist count", "hostlist count [EXPR…]\n\nPrint the number of hosts of all EXPR together, duplicates included, without\nexpanding them. With no EXPR, read the expression from stdin.")
	if err := parseFlags(e, fs, args); err != nil {
		return err
	}
	exprs, err := hostlistExprs(e, fs.Args())
	if err != nil {
		return err
	}
	var total uint64
	for _, x := range exprs {
		n, err := slurm.Count(x)
		if err != nil {
			return err
		}
		if total += uint64(n); total < uint64(n) {
			return usagef("hostlist count: the total overflows: %w", slurm.ErrTooManyHosts)
		}
	}
	_, err = fmt.Fprintln(e.stdout, strconv.FormatUint(total, 10))
	return err
}
