// Command qlaunch is an HPC launcher and distributed task runtime: it starts a
// server, managers and worker ranks under SLURM, MPI or PBS (or on this
// machine), and runs named kernels submitted by clients across them.
//
// Run "qlaunch help" for the list of subcommands.
package main

import (
	"context"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
)

func main() {
	// Interrupts stay caught until the process exits (the stop function is
	// never called): a rank that stopped because its tree shut down can
	// still get the scheduler's own SIGINT on its way out (scancel -s INT
	// reaches the nodes one after another), and must exit with its status
	// rather than die of the signal, which srun reports as a failed task.
	ctx, _ := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	os.Exit(run(ctx, os.Args[1:], &env{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv, setGCPercent: debug.SetGCPercent}))
}
