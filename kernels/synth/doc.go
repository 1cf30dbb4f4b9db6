// Package synth synthesises circuits of CNOT and U3 gates for small
// unitaries, in the style of QSearch and LEAP, on the kernel runtime.
//
// Synthesis grows a template (see package instantiate) one CNOT block at a
// time. Step 0 instantiates a U3 on every qubit. Each later step extends
// every circuit kept from the step before (Request.Beam of them, the best
// by distance) by one block on each pair of the coupling graph (every pair
// by default), and instantiates all those candidates at once: one Map of
// instantiate tasks, each of which maps its own starting points, so that
// one synthesis is a nested fork-join over the whole tree. A candidate
// starts from its parent's solution (start 0) and from random points. The
// first step with a candidate below the threshold ends the search with the
// lowest-index such candidate; otherwise it ends when the CNOT budget is
// spent, with the best circuit found. The result depends only on the
// request (seeds derive from Request.Seed, the step and the candidate),
// never on the number of slots or on timing.
//
// # Kernels
//
// Kernels returns synth together with the instantiate kernels it runs:
//
//	synth   payload: a JSON Request, e.g.
//	        {"target": [[[re, im], …], …], "seed": 1,
//	         "coupling": [[0, 1], [1, 2]], "max_cnots": 8, "beam": 2,
//	         "instantiate": {"threshold": 1e-10, "starts": 8}}
//	        (only target is required); output: a JSON Result,
//	        {"qasm": "OPENQASM 2.0; …", "cnots": 3, "distance": 4e-15,
//	         "success": true, "template": {…}, "params": […],
//	         "instantiations": 4}
//
// Target names the unitaries the command line offers: cnot, swap, qft2,
// qft3, toffoli and random:QUBITS:SEED.
package synth
