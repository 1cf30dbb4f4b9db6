// Package resynth resynthesises whole circuits block by block.
//
// Partition splits a circuit into blocks of at most three qubits; every
// block with two or more CNOTs becomes one synth task (package synth) with
// a budget of one CNOT fewer, all of them in one Map; a block is replaced
// only by a circuit with fewer CNOTs whose distance is below the
// threshold; Assemble puts the blocks back in order. A compilation is thus
// a three-level fork-join: resynth maps synth tasks, which map instantiate
// tasks, which map their starting points.
//
// # Kernel
//
// Kernels returns resynth together with the synth and instantiate kernels:
//
//	resynth  payload: a JSON Request,
//	         {"qasm": "OPENQASM 2.0; …", "seed": 1, "block_qubits": 3, "threshold": 1e-10}
//	         (only qasm is required); output: a JSON Result,
//	         {"qasm": "…", "cnots_before": 40, "cnots_after": 22, "blocks": 9,
//	          "synthesised": 7, "replaced": 5, "seconds": 1.9}
//
// The per-block threshold bounds each block's Hilbert–Schmidt distance;
// instantiations converge well below it (about 1e-14), so the whole
// circuit's distance stays far inside the threshold too, which the
// qlaunch compile command checks.
package resynth
