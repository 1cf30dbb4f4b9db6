package resynth

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"math/cmplx"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/qlaunch/qlaunch/kernels"
	"github.com/qlaunch/qlaunch/kernels/circuit"
)

func TestOneQubitBasesAreExact(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var targets [][4]complex128
	for range 50 {
		targets = append(targets, [4]complex128(circuit.RandomUnitary(1, rng).Data))
	}
	// Special cases: diagonal, anti-diagonal, θ = π/2, identity.
	for _, op := range []circuit.Op{{Gate: circuit.T}, {Gate: circuit.X}, {Gate: circuit.Y}, {Gate: circuit.H},
		{Gate: circuit.ID}, {Gate: circuit.SX}, circuit.U3Op(0, math.Pi/2, 0.3, -1.2)} {
		targets = append(targets, [4]complex128(op.Gate.Matrix(op.Params)))
	}
	for _, spec := range []string{"cx,u3", "cz,rz,sx"} {
		gs, err := ParseGateSet(context.Background(), spec, nil)
		if err != nil {
			t.Fatal(err)
		}
		for i, u := range targets {
			ops := gs.oneQubit(0, u)
			for _, op := range ops {
				if !gs.nativeOne(op) {
					t.Fatalf("%s: %s outside the basis", spec, op.Gate)
				}
			}
			if len(ops) > 5 {
				t.Errorf("%s: %d gates", spec, len(ops))
			}
			got, err := (&circuit.Circuit{Qubits: 1, Ops: ops}).Unitary()
			if err != nil {
				t.Fatal(err)
			}
			if d := circuit.Distance(circuit.Matrix{Dim: 2, Data: u[:]}, got); d > 1e-14 {
				t.Errorf("%s: target %d at distance %g (%v)", spec, i, d, ops)
			}
		}
	}
}

func TestGateSetMatrices(t *testing.T) {
	exp := func(p circuit.Matrix, angle float64) circuit.Matrix {
		// exp(iθP) = cos θ·I + i sin θ·P for P² = I.
		m := circuit.NewMatrix(4)
		for i := range m.Data {
			m.Data[i] = complex(0, math.Sin(angle)) * p.Data[i]
		}
		for i := range 4 {
			m.Data[i*4+i] += complex(math.Cos(angle), 0)
		}
		return m
	}
	pauli := func(a, b [4]complex128) circuit.Matrix {
		m := circuit.NewMatrix(4)
		for i := range 4 {
			for j := range 4 {
				m.Data[i*4+j] = a[(i>>1)*2+j>>1] * b[(i&1)*2+j&1]
			}
		}
		return m
	}
	x, y, z := [4]complex128{0, 1, 1, 0}, [4]complex128{0, -1i, 1i, 0}, [4]complex128{1, 0, 0, -1}
	xx, yy := pauli(x, x), pauli(y, y)
	want := map[string]circuit.Matrix{
		"zz,rz,sx":        exp(pauli(z, z), -math.Pi/4),
		"rxx,rz,sx":       exp(xx, -math.Pi/4),
		"ryy,rz,sx":       exp(yy, -math.Pi/4),
		"sqrtiswap,rz,sx": circuit.Mul(exp(xx, math.Pi/8), exp(yy, math.Pi/8)),
	}
	for spec, w := range want {
		gs, err := ParseGateSet(context.Background(), spec, nil)
		if err != nil {
			t.Fatal(err)
		}
		if d := circuit.Distance(gs.Matrix(), w); d > 1e-15 {
			t.Errorf("%s: gate at distance %g", spec, d)
		}
	}
	// A gate of one's own: its definition found by instantiation.
	m := circuit.RandomUnitary(2, rand.New(rand.NewPCG(3, 4)))
	gs, err := ParseGateSet(context.Background(), "mine,sx,rz", &m)
	if err != nil {
		t.Fatal(err)
	}
	if d := circuit.Distance(gs.Matrix(), m); d > 1e-14 {
		t.Errorf("defined gate at distance %g", d)
	}
	if gs.Def().Name != "mine" || gs.two.Gate != circuit.Defined {
		t.Errorf("gate %+v", gs.Def())
	}
}

func TestGateSetErrors(t *testing.T) {
	m := circuit.RandomUnitary(2, rand.New(rand.NewPCG(3, 4)))
	local, _ := (&circuit.Circuit{Qubits: 2, Ops: []circuit.Op{{Gate: circuit.Swap, Qubits: [3]int{0, 1}}, circuit.U3Op(0, 1, 2, 3)}}).Unitary()
	for _, tc := range []struct {
		spec   string
		matrix *circuit.Matrix
		want   string
	}{
		{"cx", nil, "single-qubit basis"},
		{"cx,rz", nil, "single-qubit basis"},
		{"rz,sx", nil, "no two-qubit gate"},
		{"cx,cz,u3", nil, "two two-qubit gates"},
		{"mine,u3", nil, "no gate matrix"},
		{"cz,u3", &m, "preset"},
		{"ccx,u3", &m, "built-in"},
		{"9a,u3", &m, "identifier"},
		{"loc,u3", &local, "does not entangle"},
		{"cx,,u3", nil, "empty"},
	} {
		_, err := ParseGateSet(context.Background(), tc.spec, tc.matrix)
		var ge *GateSetError
		if !errors.As(err, &ge) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want one about %q", tc.spec, err, tc.want)
		}
	}
}

// nonUnitary returns the measurements, resets and barriers of c.
func nonUnitary(c *circuit.Circuit) []circuit.Op {
	var out []circuit.Op
	for _, op := range c.Ops {
		if !op.Gate.Unitary() {
			out = append(out, op)
		}
	}
	return out
}

// unconditioned returns c without its conditioned ops.
func unconditioned(c *circuit.Circuit) *circuit.Circuit {
	out := &circuit.Circuit{Qubits: c.Qubits, Cregs: c.Cregs, Defs: c.Defs}
	for _, op := range c.Ops {
		if !op.Cond.Set() {
			out.Ops = append(out.Ops, op)
		}
	}
	return out
}

// fidelityCheck checks that two circuits have the same measurements,
// resets and barriers in order, and compares their unitary parts on
// random states, with every condition true and with every condition
// false: it returns the worst |⟨ψ_a|ψ_b⟩|² with ψ_a = A·ψ and ψ_b = B·ψ.
func fidelityCheck(t *testing.T, a, b *circuit.Circuit, states int, seed uint64) float64 {
	t.Helper()
	if !slices.Equal(nonUnitary(a), nonUnitary(b)) {
		t.Errorf("measurements, resets or barriers differ:\n%v\n%v", nonUnitary(a), nonUnitary(b))
	}
	f := fidelity(t, a.UnitaryPart(), b.UnitaryPart(), states, seed)
	return min(f, fidelity(t, unconditioned(a).UnitaryPart(), unconditioned(b).UnitaryPart(), states, seed))
}

func fidelity(t *testing.T, a, b *circuit.Circuit, states int, seed uint64) float64 {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 77))
	worst := 1.0
	for range states {
		psi := make([]complex128, 1<<a.Qubits)
		var norm float64
		for i := range psi {
			psi[i] = complex(rng.NormFloat64(), rng.NormFloat64())
			norm += real(psi[i])*real(psi[i]) + imag(psi[i])*imag(psi[i])
		}
		for i := range psi {
			psi[i] /= complex(math.Sqrt(norm), 0)
		}
		phi := slices.Clone(psi)
		if err := a.Simulate(psi); err != nil {
			t.Fatal(err)
		}
		if err := b.Simulate(phi); err != nil {
			t.Fatal(err)
		}
		var dot complex128
		for i := range psi {
			dot += cmplx.Conj(psi[i]) * phi[i]
		}
		worst = min(worst, real(dot)*real(dot)+imag(dot)*imag(dot))
	}
	return worst
}

// mixed returns a circuit with measurements, conditions, a reset, a
// barrier and redundant two-qubit gates.
func mixed(rng *rand.Rand, ccx bool) string {
	var b strings.Builder
	b.WriteString("OPENQASM 2.0;\ninclude \"qelib1.inc\";\nqreg q[4];\ncreg c[2];\ncreg d[1];\n")
	u3 := func(q int) {
		b.WriteString("u3(" + ftoa(rng.Float64()*6) + "," + ftoa(rng.Float64()*6) + "," + ftoa(rng.Float64()*6) + ") q[" + itoa(q) + "];\n")
	}
	for range 4 {
		u3(0)
		b.WriteString("cx q[0],q[1];\n")
		u3(1)
		b.WriteString("cz q[1],q[2];\nh q[3];\ncx q[2],q[3];\n")
	}
	b.WriteString("measure q[0] -> c[0];\nif(c==1) cx q[1],q[2];\nif(c==1) h q[3];\nbarrier q[1],q[2];\nreset q[0];\n")
	for range 3 {
		u3(1)
		b.WriteString("cx q[1],q[0];\nrzz(0.4) q[2],q[3];\n")
	}
	if ccx {
		b.WriteString("ccx q[0],q[1],q[2];\n")
	}
	b.WriteString("measure q[3] -> d[0];\nmeasure q[1] -> c[1];\n")
	return b.String()
}

func ftoa(f float64) string { b, _ := json.Marshal(f); return string(b) }
func itoa(i int) string     { b, _ := json.Marshal(i); return string(b) }

// TestResynthGateSets compiles a circuit with measurements and conditions
// for every preset gate set: every gate of the output is in the set, the
// classical operations are those of the input in order, and its unitary
// part equals the input's on random states.
func TestResynthGateSets(t *testing.T) {
	rt := newRuntime(t, 2)
	for _, spec := range GatePresets() {
		t.Run(spec, func(t *testing.T) {
			// Blocks of three qubits and a ccx for the CNOT-like gates;
			// of two for the others, whose three-qubit searches take
			// seconds.
			bq := 2
			if spec == "cx,u3" || spec == "cz,rz,sx" {
				bq = 3
				if raceEnabled {
					// What is checked is numeric; the race detector
					// watches the same runtime in the other gate sets.
					t.Skip("three-qubit blocks: checked in the lane without the race detector (make test-cpu1)")
				}
			}
			src := mixed(rand.New(rand.NewPCG(9, 9)), spec == "cx,u3")
			in, err := circuit.ParseQASM(src)
			if err != nil {
				t.Fatal(err)
			}
			payload, _ := json.Marshal(Request{QASM: src, Seed: 2, Gates: spec, BlockQubits: bq})
			raw, err := rt.Run(context.Background(), kernels.Task{Kernel: KernelResynth, Payload: payload})
			if err != nil {
				t.Fatal(err)
			}
			var res Result
			if err := json.Unmarshal(raw, &res); err != nil {
				t.Fatal(err)
			}
			out, err := circuit.ParseQASM(res.QASM)
			if err != nil {
				t.Fatalf("output does not parse: %v\n%s", err, res.QASM)
			}
			gs, _ := ParseGateSet(context.Background(), spec, nil)
			for _, op := range out.Ops {
				if op.Gate.Unitary() && !gs.nativeOne(op) && !gs.nativeTwo(op, out.Defs) {
					t.Fatalf("%s outside the gate set", op.Gate)
				}
			}
			if got := out.TwoQubitGates(); got != res.TwoQubitGatesAfter || res.TwoQubitGatesBefore != in.TwoQubitGates() {
				t.Errorf("counts %d → %d, output holds %d", res.TwoQubitGatesBefore, res.TwoQubitGatesAfter, got)
			}
			f := fidelityCheck(t, in, out, 4, 1)
			t.Logf("%s: two-qubit gates %d → %d, error bound %.3g, 1−fidelity %.3g", spec, res.TwoQubitGatesBefore, res.TwoQubitGatesAfter, res.ErrorBound, 1-f)
			if 1-f > 1e-8 || res.Unreached != 0 {
				t.Errorf("1 − fidelity %g, %d blocks unreached", 1-f, res.Unreached)
			}
			if out.Cregs[0] != in.Cregs[0] || out.Cregs[1] != in.Cregs[1] {
				t.Errorf("classical registers %v, want %v", out.Cregs, in.Cregs)
			}
		})
	}
}

// TestErrorThreshold resynthesises with a loose error threshold: the
// bound reported stays below it and bounds the true distance.
func TestErrorThreshold(t *testing.T) {
	rt := newRuntime(t, 2)
	c := redundant(4, rand.New(rand.NewPCG(5, 5)))
	for _, thr := range []float64{1e-3, 1e-6} {
		payload, _ := json.Marshal(Request{QASM: circuit.FormatQASM(c), Seed: 1, BlockQubits: 2, ErrorThreshold: thr})
		raw, err := rt.Run(context.Background(), kernels.Task{Kernel: KernelResynth, Payload: payload})
		if err != nil {
			t.Fatal(err)
		}
		var res Result
		if err := json.Unmarshal(raw, &res); err != nil {
			t.Fatal(err)
		}
		out, err := circuit.ParseQASM(res.QASM)
		if err != nil {
			t.Fatal(err)
		}
		u, _ := c.Unitary()
		v, _ := out.Unitary()
		d := circuit.Distance(u, v)
		t.Logf("threshold %g: CNOTs %d → %d, bound %.3g, distance %.3g", thr, res.CNOTsBefore, res.CNOTsAfter, res.ErrorBound, d)
		if res.ErrorBound > thr || d > res.ErrorBound*(1+1e-9)+1e-15 || res.CNOTsAfter >= res.CNOTsBefore {
			t.Errorf("threshold %g: bound %g, distance %g, CNOTs %d → %d", thr, res.ErrorBound, d, res.CNOTsBefore, res.CNOTsAfter)
		}
	}

}
