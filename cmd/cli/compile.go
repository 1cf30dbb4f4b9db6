package cli

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
	"time"

	"github.com/qlaunch/qlaunch/kernels"
	"github.com/qlaunch/qlaunch/kernels/circuit"
	"github.com/qlaunch/qlaunch/kernels/instantiate"
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
	fs := newFlagSet(e, "compile", "compile [--ip ADDR | --local] IN.qasm -o OUT.qasm [--seed S] [--block-qubits 2|3] [--format text|json]")
	var nf numericFlags
	nf.clientFlags.add(fs)
	nf.add(fs)
	outPath := fs.String("o", "", "write the compiled circuit to this file (default: standard output)")
	blockQubits := fs.Int("block-qubits", resynth.DefaultBlockQubits, "widest block to resynthesise (2 or 3)")
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
	if *blockQubits < 2 || *blockQubits > 3 {
		return usagef("compile: --block-qubits %d: want 2 or 3", *blockQubits)
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
	payload, err := json.Marshal(resynth.Request{QASM: string(src), Seed: nf.seed, BlockQubits: *blockQubits})
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
	report := map[string]any{
		"cnots_before": res.CNOTsBefore, "cnots_after": res.CNOTsAfter, "blocks": res.Blocks,
		"replaced": res.Replaced, "seconds": seconds, "qubits": in.Qubits,
	}
	var check string
	var ok bool
	if in.Qubits <= maxCheckedUnitaryQubits {
		d, err := unitaryDistance(in, out)
		if err != nil {
			return err
		}
		report["distance"] = d
		check, ok = fmt.Sprintf("distance %.3g", d), d < instantiate.DefaultThreshold
	} else {
		f, err := worstFidelity(in, out, nf.seed)
		if err != nil {
			return err
		}
		report["worst_fidelity"] = f
		check, ok = fmt.Sprintf("worst fidelity on %d random states 1-%.3g", compileStates, 1-f), 1-f < instantiate.DefaultThreshold
	}
	if !ok {
		return fmt.Errorf("compile: the compiled circuit differs from the input (%s); nothing written", check)
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
	_, err = fmt.Fprintf(info, "compile: CNOTs %d → %d (%d of %d blocks replaced), %s, %.3f s\n",
		res.CNOTsBefore, res.CNOTsAfter, res.Replaced, res.Blocks, check, seconds)
	return err
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
