package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/cmplx"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/qlaunch/qlaunch/kernels"
	"github.com/qlaunch/qlaunch/kernels/circuit"
	"github.com/qlaunch/qlaunch/kernels/instantiate"
	"github.com/qlaunch/qlaunch/kernels/mapping"
	"github.com/qlaunch/qlaunch/kernels/resynth"
)

// compileStates is the number of random input states compared beyond
// circuit.MaxUnitaryQubits / 10 qubits.
const compileStates = 8

// maxCheckedUnitaryQubits is the widest circuit compile compares by
// unitary; wider ones are compared on random states.
const maxCheckedUnitaryQubits = 10

// maxCheckedStateQubits is the widest circuit compile can check at all.
const maxCheckedStateQubits = 24

// cmdCompile resynthesises a circuit block by block.
func cmdCompile(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet(e, "compile", "compile [--ip ADDR | --local] IN.qasm -o OUT.qasm [--seed S] [--block-qubits 2|3|4] [--gates SET [--gate-matrix FILE]] [--error-threshold E] [--format text|json]")
	var nf numericFlags
	nf.clientFlags.add(fs)
	nf.add(fs)
	outPath := fs.String("o", "", "write the compiled circuit to this file (default: standard output)")
	blockQubits := fs.Int("block-qubits", resynth.DefaultBlockQubits, "widest block to resynthesise (2 to 4)")
	gates := fs.String("gates", resynth.DefaultGates, "native gate set: "+strings.Join(resynth.GatePresets(), " ")+", or NAME,rz,sx with --gate-matrix")
	gateMatrix := fs.String("gate-matrix", "", "JSON file of the two-qubit gate NAME of --gates: {\"qubits\": 2, \"matrix\": [[[re, im], …], …]}")
	coupling := fs.String("coupling", "", "coupling graph: a-b,c-d…, a file of edges, linear:N, ring:N, grid:RxC or all:N (default: all-to-all)")
	errorThreshold := fs.Float64("error-threshold", 0, "bound on the whole circuit's error (distance); 0: exact synthesis, each block within 1e-10")
	pos, err := parseInterleaved(e, fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("compile: want one input file IN.qasm, got %d arguments", len(pos))
	}
	if nf.format != "text" && nf.format != "json" {
		return usagef("compile: --format %q: want text or json", nf.format)
	}
	if *blockQubits < 2 || *blockQubits > resynth.MaxBlockQubits {
		return usagef("compile: --block-qubits %d: want 2 to %d", *blockQubits, resynth.MaxBlockQubits)
	}
	if math.IsNaN(*errorThreshold) || *errorThreshold < 0 || *errorThreshold >= 1 {
		return usagef("compile: --error-threshold %v: want 0 to 1", *errorThreshold)
	}
	var matrix *circuit.Matrix
	if *gateMatrix != "" {
		b, err := os.ReadFile(*gateMatrix)
		if err != nil {
			return usageError{err}
		}
		var uf unitaryFile
		if err := json.Unmarshal(b, &uf); err != nil {
			return &inputError{*gateMatrix, err}
		}
		if uf.Matrix.Dim != 4 || uf.Qubits != 2 {
			return &inputError{*gateMatrix, fmt.Errorf("want a two-qubit gate: qubits 2 and a 4×4 matrix")}
		}
		matrix = &uf.Matrix
	}
	if _, err := resynth.ParseGateSet(ctx, *gates, matrix); err != nil {
		return usagef("compile: --gates: %v", err)
	}
	inPath := pos[0]
	src, err := os.ReadFile(inPath)
	if err != nil {
		return usageError{err}
	}
	in, err := circuit.ParseQASM(string(src))
	if err != nil {
		return &inputError{inPath, err}
	}
	if in.Qubits > maxCheckedStateQubits {
		return &inputError{inPath, fmt.Errorf("%d qubits: compile checks at most %d", in.Qubits, maxCheckedStateQubits)}
	}
	var graph *mapping.Graph
	if *coupling != "" {
		if graph, err = mapping.ParseCoupling(*coupling); err != nil {
			return usagef("compile: --coupling: %v", err)
		}
		switch {
		case graph.Nodes < in.Qubits:
			return usagef("compile: --coupling %s has %d qubits, the circuit %d", *coupling, graph.Nodes, in.Qubits)
		case graph.Nodes > maxCheckedUnitaryQubits:
			return usagef("compile: --coupling %s has %d qubits: compile checks mapped circuits of at most %d", *coupling, graph.Nodes, maxCheckedUnitaryQubits)
		}
	}
	// With a coupling graph: three-qubit gates decomposed, then routed
	// (swaps inserted), then resynthesised block by block on the graph's
	// edges, which retargets the swaps with their neighbours.
	qasm := string(src)
	var perm []int
	reference, routed := in, in
	if graph != nil {
		var err error
		routed, perm, err = mapping.Route(mapping.Decompose(in), graph)
		if err != nil {
			return &inputError{inPath, err}
		}
		qasm = circuit.FormatQASM(routed)
		// The reference: the input on the graph's qubits, then the
		// permutation of the final mapping (as swaps).
		reference = &circuit.Circuit{Qubits: graph.Nodes, Ops: slices.Clone(in.Ops), Cregs: in.Cregs, Defs: in.Defs}
		reference.Append(permutationSwaps(perm)...)
	}
	payload, err := json.Marshal(resynth.Request{QASM: qasm, Seed: nf.seed, BlockQubits: *blockQubits,
		Gates: *gates, GateMatrix: matrix, ErrorThreshold: *errorThreshold, Coupling: edgesOf(graph)})
	if err != nil {
		return err
	}
	start := time.Now()
	p := newProgress(e, 0, "compile "+inPath)
	raw, err := nf.runTask(ctx, e, kernels.Task{Kernel: resynth.KernelResynth, Payload: payload})
	p.Done()
	if err != nil {
		return fmt.Errorf("compile: %w", err)
	}
	seconds := time.Since(start).Seconds()
	var res resynth.Result
	if err := json.Unmarshal(raw, &res); err != nil {
		return fmt.Errorf("compile: reading the result: %w", err)
	}
	out, err := circuit.ParseQASM(res.QASM)
	if err != nil {
		return fmt.Errorf("compile: reading the compiled circuit: %w", err)
	}
	identity := make([]int, in.Qubits)
	for i := range identity {
		identity[i] = i
	}
	final := identity
	if graph != nil {
		// The counts before are the input's, not the routed circuit's.
		final = perm[:in.Qubits]
		res.TwoQubitGatesBefore, res.CNOTsBefore = in.TwoQubitGates(), in.CNOTs()
	}
	report := map[string]any{
		"two_qubit_gates_before": res.TwoQubitGatesBefore, "two_qubit_gates_after": res.TwoQubitGatesAfter,
		"blocks": res.Blocks, "replaced": res.Replaced, "seconds": seconds, "qubits": in.Qubits,
		"gates": res.Gates, "error_bound": res.ErrorBound, "block_distances": res.BlockDistances,
		"unreached": res.Unreached, "initial_mapping": identity, "final_mapping": final,
	}
	if res.Gates == resynth.DefaultGates {
		report["cnots_before"], report["cnots_after"] = res.CNOTsBefore, res.CNOTsAfter
	}
	// The check: the same measurements, resets, barriers and conditions
	// in order, and the same unitary part (every condition taken true).
	allowed := max(res.ErrorBound*(1+1e-6)+1e-12, instantiate.DefaultThreshold)
	if graph != nil {
		for _, op := range out.Ops {
			if qs := op.QubitList(); len(qs) == 2 && !graph.Adjacent(qs[0], qs[1]) {
				return fmt.Errorf("compile: %s on qubits %v, not an edge of the coupling graph; nothing written", op.Gate, qs)
			}
		}
	}
	if !slices.Equal(nonUnitaryOps(routed), nonUnitaryOps(out)) {
		return errors.New("compile: the compiled circuit's measurements, resets or barriers differ from the input's; nothing written")
	}
	var check string
	var ok bool
	if in.Qubits <= maxCheckedUnitaryQubits {
		d, err := unitaryDistance(reference.UnitaryPart(), out.UnitaryPart())
		if err != nil {
			return err
		}
		report["distance"] = d
		check, ok = fmt.Sprintf("distance %.3g", d), d < allowed
	} else {
		f, err := worstFidelity(in.UnitaryPart(), out.UnitaryPart(), nf.seed)
		if err != nil {
			return err
		}
		report["worst_fidelity"] = f
		// 1 − |⟨ψ|U†V|ψ⟩|² ≤ ‖U − e^{iφ}V‖² ≤ 2·N·d.
		check, ok = fmt.Sprintf("worst fidelity on %d random states 1-%.3g", compileStates, 1-f), 1-f < max(2*float64(int(1)<<in.Qubits)*allowed, instantiate.DefaultThreshold)
	}
	if !ok {
		return fmt.Errorf("compile: the compiled circuit differs from the input (%s, error bound %.3g); nothing written", check, res.ErrorBound)
	}
	info := e.stdout
	if *outPath == "" {
		if _, err := io.WriteString(e.stdout, res.QASM); err != nil {
			return err
		}
		info = e.stderr
	} else if err := os.WriteFile(*outPath, []byte(res.QASM), 0o644); err != nil {
		return err
	}
	if nf.format == "json" {
		if *outPath == "" {
			report["qasm"] = res.QASM
		}
		return writeJSON(info, report)
	}
	what, before, after := "two-qubit gates", res.TwoQubitGatesBefore, res.TwoQubitGatesAfter
	if res.Gates == resynth.DefaultGates {
		what, before, after = "CNOTs", res.CNOTsBefore, res.CNOTsAfter
	}
	_, err = fmt.Fprintf(info, "compile: %s %d → %d in %s (%d of %d blocks replaced), error bound %.3g, %s, %.3f s\n",
		what, before, after, res.Gates, res.Replaced, res.Blocks, res.ErrorBound, check, seconds)
	return err
}

func edgesOf(g *mapping.Graph) [][2]int {
	if g == nil {
		return nil
	}
	return g.Edges
}

// permutationSwaps returns swaps that move the state of qubit i to qubit
// perm[i].
func permutationSwaps(perm []int) []circuit.Op {
	at := slices.Clone(perm) // at[i]: where the state now on qubit i must go
	var ops []circuit.Op
	for i := range at {
		for at[i] != i {
			j := at[i]
			ops = append(ops, circuit.Op{Gate: circuit.Swap, Qubits: [3]int{i, j}})
			at[i], at[j] = at[j], at[i]
		}
	}
	return ops
}

// nonUnitaryOps returns c's measurements, resets, barriers and
// conditioned ops with their conditions, qubits and bits (a conditioned
// gate by its condition and qubits alone: retargeting may rewrite it).
func nonUnitaryOps(c *circuit.Circuit) []circuit.Op {
	var out []circuit.Op
	for _, op := range c.Ops {
		switch {
		case !op.Gate.Unitary():
			out = append(out, op)
		case op.Cond.Set():
			marker := circuit.Op{Cond: op.Cond}
			if n := len(out); n > 0 && out[n-1] == marker {
				continue // one run of conditioned gates under one condition
			}
			out = append(out, marker)
		}
	}
	return out
}

func unitaryDistance(a, b *circuit.Circuit) (float64, error) {
	u, err := a.Unitary()
	if err != nil {
		return 0, err
	}
	v, err := b.Unitary()
	if err != nil {
		return 0, err
	}
	if u.Dim != v.Dim {
		return 0, errors.New("compile: the compiled circuit has a different number of qubits")
	}
	return circuit.Distance(u, v), nil
}

// worstFidelity returns the least |⟨aψ|bψ⟩|² over random states ψ.
func worstFidelity(a, b *circuit.Circuit, seed uint64) (float64, error) {
	if a.Qubits != b.Qubits {
		return 0, errors.New("compile: the compiled circuit has a different number of qubits")
	}
	rng := rand.New(rand.NewPCG(seed, 0xf1de))
	worst := 1.0
	for range compileStates {
		psi := make([]complex128, 1<<a.Qubits)
		var norm float64
		for i := range psi {
			psi[i] = complex(rng.NormFloat64(), rng.NormFloat64())
			norm += real(psi[i])*real(psi[i]) + imag(psi[i])*imag(psi[i])
		}
		s := complex(1/math.Sqrt(norm), 0)
		for i := range psi {
			psi[i] *= s
		}
		phi := append([]complex128(nil), psi...)
		if err := a.Simulate(psi); err != nil {
			return 0, err
		}
		if err := b.Simulate(phi); err != nil {
			return 0, err
		}
		var dot complex128
		for i := range psi {
			dot += cmplx.Conj(psi[i]) * phi[i]
		}
		f := real(dot)*real(dot) + imag(dot)*imag(dot)
		worst = min(worst, f)
	}
	return worst, nil
}
