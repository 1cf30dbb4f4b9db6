// Command qlaunch is an HPC launcher and distributed task runtime: it starts a
// server, managers and worker ranks under SLURM, MPI or PBS (or on this
// machine), and runs named kernels submitted by clients across them.
//
// Run "qlaunch help" for the list of subcommands. The command itself lives
// in package cli, which a program of one's own calls with its own kernels.
package main

import (
	"os"

	"github.com/qlaunch/qlaunch/cmd/cli"
)

func main() { os.Exit(cli.Main(nil)) }
