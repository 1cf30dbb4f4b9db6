package cli

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/qlaunch/qlaunch/kernels"
)

// cmdKernels lists the kernels of this binary with their usage lines.
func cmdKernels(_ context.Context, e *env, args []string) error {
	fs := newFlagSet(e, "kernels", "kernels\n\n"+
		"Lists the kernels this binary's worker ranks run, each with its arguments\n"+
		"and what it does; \"qlaunch submit KERNEL [ARG…]\" runs one. A binary built\n"+
		"with cli.Main (see examples/customkernel) lists its own kernels too.")
	if err := parseFlags(e, fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("kernels: unexpected arguments %q", fs.Args())
	}
	reg, err := e.registry()
	if err != nil {
		return err
	}
	return writeKernels(e.stdout, reg)
}

// writeKernels writes one line per kernel of reg: its usage line, whether
// a lost task of it is run again, and what it does.
func writeKernels(w io.Writer, reg *kernels.Registry) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KERNEL [ARGS]\tRETRIED\tWHAT IT DOES")
	for _, k := range reg.Kernels() {
		retried := "no"
		if k.Retryable {
			retried = "yes"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", k.Synopsis(), retried, k.Doc)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := io.WriteString(w, "\nRun one with: qlaunch submit KERNEL [ARG…] (--input FILE for its payload).\n"+
		"RETRIED: a task lost with its rank is run again elsewhere.\n")
	return err
}

// unknownKernel is the error of a task whose kernel the runtime does not
// have: it names the kernels this binary knows (bad input: exit 2).
func unknownKernel(e *env, name string) error {
	reg, err := e.registry()
	if err != nil {
		return inputf("unknown kernel %q", name)
	}
	return inputf("unknown kernel %q: the runtime has no kernel of that name; this qlaunch knows %s (qlaunch kernels lists them with their arguments)",
		name, strings.Join(reg.Names(), ", "))
}
