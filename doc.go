// Package qlaunch is the root of the qlaunch module: an HPC launcher and
// distributed task runtime. The code lives in the packages below it:
//
//   - cmd/qlaunch: the qlaunch command (flag parsing and wiring only)
//   - topology: the TOML topology file and the plan (who runs what where)
//   - slurm, pbs: hostlists, task counts, node files, job environments, job scripts
//   - jobscript: what every batch script for a qlaunch job holds, whatever the scheduler
//   - rank: who am I under SLURM, MPI, PBS or PALS; CPU pinning; the MPI bootstrap
//   - launcher: the runtime (server, managers, worker ranks), with launcher/wire
//     (the protocol), launcher/sched (the scheduler), launcher/client (the Go client)
//   - kernels: the kernel API, the registry and the built-in kernels
//
// This package holds no code, only the test that enforces the import rules
// between those packages (deps_test.go).
package qlaunch
