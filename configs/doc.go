// Package configs holds the example topologies shipped with qlaunch, one
// TOML file each, and tests that every one of them loads, validates and
// plans:
//
//   - local.toml: this machine, attached mode (qlaunch run);
//   - slurm-cpu.toml: CPU nodes under SLURM, one worker rank on all cores;
//   - slurm-gpu.toml: 4 GPUs per node, 2 worker ranks per GPU;
//   - hierarchy.toml: fanout 8, managers of managers, dedicated server;
//   - pbs-polaris.toml: PBS Pro + Cray PALS, 4 GPUs per node, explicit
//     CPU lists.
//
// The tests compare each topology's plan for a few node lists with the
// golden files under testdata/ (go test ./configs -update rewrites them)
// and check the plan's invariants for node counts up to 10,000.
package configs
