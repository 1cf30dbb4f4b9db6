// Package synth synthesises circuits of CNOT and U3 gates for small
// unitaries, in the style of QSearch and LEAP, on the kernel runtime. A
// request may name another two-qubit gate (Request.Gate, any constant
// gate defined by a body of built-in gates, such as cz, rzz(π/2) or
// √iSWAP): the circuits then use it in place of the CNOT, and every count
// of CNOTs below counts it.
//
// Synthesis grows templates (see package instantiate) one CNOT block at a
// time and searches them as a tree. The root is a U3 on every qubit; a
// node's children extend it by one block on each pair of the coupling
// graph (every pair by default). Each step expands several nodes at once:
// the Request.Beam open nodes with the lowest f = Factor·distance +
// CNOTs (A*, as in QSearch: a shallower node is preferred unless a deeper
// one is much closer), plus a probe, the closest open node of the deepest
// layer, so that the search also deepens by one CNOT per step where the
// distance gives little signal (a generic unitary). All children of a step
// are instantiated as one flat Map of instantiate.start tasks, candidates
// × starting points, each candidate starting from its parent's solution
// (start 0) and from random points: a step of toffoli maps 36 to 72
// independent tasks, so the slots stay busy until the step's last task.
// The search ends a few steps (Request.ExtraSteps) after the first step
// that yields a circuit below the threshold, steps that expand only nodes
// at least two CNOTs shallower, keeping the circuit with fewest CNOTs; or
// when the probe has spent the CNOT budget, with the closest circuit
// found; or, with Request.Patience, after that many steps without a
// closer circuit. A request may give a circuit known to implement the
// target (Request.Known): its two-qubit gates are then removed one at a
// time while the rest, re-instantiated, stays below the threshold, and
// the search looks only for fewer than what is left.
//
// The result depends only on the request, never on the number of slots
// or on timing: every task of a step is waited for, each candidate keeps
// its best start by (distance, start index), nodes are ranked with ties
// broken by their creation order, and seeds derive from Request.Seed, the
// step and the candidate.
//
// # Kernels
//
// Kernels returns synth together with the instantiate kernels it runs:
//
//	synth   payload: a JSON Request, e.g.
//	        {"target": [[[re, im], …], …], "seed": 1,
//	         "gate": {"Name": "sqrtiswap", "Body": [op, …]},
//	         "coupling": [[0, 1], [1, 2]], "max_cnots": 8, "beam": 5,
//	         "factor": 20, "extra_steps": 2, "patience": 3,
//	         "known": {"blocks": [[0, 1]], "params": […]},
//	         "instantiate": {"threshold": 1e-10, "starts": 4}}
//	        (only target is required); output: a JSON Result,
//	        {"qasm": "OPENQASM 2.0; …", "cnots": 3, "distance": 4e-15,
//	         "success": true, "template": {…}, "params": […],
//	         "instantiations": 4, "step_tasks": [8, 8, 8, 8]}
//
// Target names the unitaries the command line offers: cnot, swap, qft2,
// qft3, toffoli and random:QUBITS:SEED.
package synth
