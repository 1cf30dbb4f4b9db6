// Package qlaunch is the root of the qlaunch module: an HPC launcher and
// distributed task runtime. The code lives in the packages below it:
//
//   - cmd/qlaunch: the qlaunch command, cmd/cli with the stock kernels
//   - cmd/cli: the qlaunch command as a library (flag parsing and wiring
//     only): cli.Main with a registry of one's own kernels (examples/)
//   - topology: the TOML topology file and the plan (who runs what where)
//   - slurm, pbs: hostlists, task counts, node files, job environments, job scripts
//   - jobscript: what every batch script for a qlaunch job holds, whatever the scheduler
//   - rank: who am I under SLURM, MPI, PBS or PALS; CPU pinning; the MPI bootstrap
//   - launcher: the runtime (server, managers, worker ranks), with launcher/wire
//     (the protocol), launcher/sched (the scheduler), launcher/client (the Go
//     client), launcher/boot (one rank of a job to its role), launcher/netpick
//     (the addresses ranks listen on and dial), launcher/launchertest (whole
//     trees inside a test) and launcher/bench (the workloads of qlaunch bench)
//   - kernels: the kernel API, the registry and the built-in kernels, with
//     kernels/circuit (quantum circuits, OpenQASM 2.0), kernels/synth,
//     kernels/instantiate and kernels/resynth (circuit synthesis) and
//     kernels/kerneltest (kernels run in-process in tests)
//   - configs: the example topologies, each tested to load and plan
//   - lab: the 3-node SLURM lab on one machine (lab/up.sh) and its
//     end-to-end tests
//   - reliability: faults, hostile input and soak on real processes
//
// This package holds no code, only the test that enforces the import rules
// between those packages (deps_test.go).
package qlaunch
