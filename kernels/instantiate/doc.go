// Package instantiate fits the parameters of a template circuit to a target
// unitary: the numerical core of circuit synthesis.
//
// A Template is a U3 on every qubit followed by blocks, each a two-qubit
// gate (a CNOT, or any constant two-qubit unitary, Template.Gate) and a
// U3 on both of its qubits. A Workspace evaluates the cost
// C(x) = 1 − |Tr(U†V(x))|²/N² and its analytic gradient without
// allocating: one forward sweep keeps every prefix product of the gates,
// one backward sweep carries the suffix and contracts it with each
// prefix into the 2×2 environment of each U3 (O(gates·4^n) per
// evaluation). Run minimises C from one starting point with gonum's
// L-BFGS, driven in the calling goroutine; Instantiate tries several
// starting points in turn.
//
// # Kernels
//
// Kernels returns two kernels, both retryable, both with a JSON Request
// as payload and a JSON Result as output:
//
//	instantiate         runs Request.Starts starting points as child tasks
//	                    (one Map of instantiate.start) and returns the
//	                    first success in start order, or the best result
//	instantiate.start I runs starting point I alone
//
// The Request payload is
//
//	{"target": [[[re, im], …], …],          // the unitary, rows of [re, im]
//	 "template": {"qubits": 2, "blocks": [[0, 1], …]},  // optional "gate": a 4×4 matrix (CNOT when absent)
//	 "seed": 1,                              // starting points come from (seed, index)
//	 "initial": [θ, φ, λ, …],                // optional: start 0 begins here (padded with random angles)
//	 "threshold": 1e-10, "starts": 8, "max_iterations": 1000,   // optional
//	 "polish": true}                         // optional: Gauss–Newton steps after L-BFGS (Options.Polish)
//
// and the Result is {"params": […], "distance": d, "start": i,
// "iterations": n, "evaluations": n}.
//
// The outcome depends only on the request, never on timing: starting
// point i is a fixed function of (seed, i), each start runs
// deterministically, and the kernel returns the lowest-index start that
// reaches the threshold (or, when none does, the lowest distance, ties to
// the lower index). It stops the remaining starts as soon as a success is
// known and every start before it has finished.
package instantiate
