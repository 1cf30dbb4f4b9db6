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
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], &env{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv, setGCPercent: debug.SetGCPercent})
	stop()
	os.Exit(code)
}
