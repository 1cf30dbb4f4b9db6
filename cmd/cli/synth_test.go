package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"math/cmplx"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/qlaunch/qlaunch/kernels/circuit"
	"github.com/qlaunch/qlaunch/kernels/mapping"
	"github.com/qlaunch/qlaunch/kernels/resynth"
	"github.com/qlaunch/qlaunch/kernels/synth"
)

func numericRun(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	e := &env{stdin: strings.NewReader(""), stdout: &out, stderr: &errb, getenv: func(string) string { return "" }}
	code = run(context.Background(), args, e)
	return code, out.String(), errb.String()
}

func TestSynthLocal(t *testing.T) {
	tests := []struct {
		target string
		cnots  int
	}{
		{"cnot", 1},
		{"qft2", 3},
		{"random:2:5", 3},
	}
	for _, tc := range tests {
		t.Run(tc.target, func(t *testing.T) {
			code, stdout, stderr := numericRun(t, "synth", "--local", "--target", tc.target, "--format", "json")
			if code != 0 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			var got struct {
				CNOTs    int     `json:"cnots"`
				Distance float64 `json:"distance"`
				Seconds  float64 `json:"seconds"`
				QASM     string  `json:"qasm"`
			}
			if err := json.Unmarshal([]byte(stdout), &got); err != nil {
				t.Fatalf("%v: %s", err, stdout)
			}
			if got.CNOTs != tc.cnots || got.Distance >= 1e-10 || got.Seconds <= 0 {
				t.Errorf("cnots %d distance %g seconds %g, want %d CNOTs below 1e-10", got.CNOTs, got.Distance, got.Seconds, tc.cnots)
			}
			c, err := circuit.ParseQASM(got.QASM)
			if err != nil {
				t.Fatal(err)
			}
			u, _ := c.Unitary()
			want, _ := synth.Target(tc.target)
			if d := circuit.Distance(want, u); d >= 1e-10 {
				t.Errorf("printed circuit at distance %g", d)
			}
		})
	}
}

func TestSynthUnitaryFileAndText(t *testing.T) {
	dir := t.TempDir()
	swap, _ := synth.Target("swap")
	b, _ := json.Marshal(map[string]any{"qubits": 2, "matrix": swap})
	path := filepath.Join(dir, "swap.json")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := numericRun(t, "synth", "--local", "--unitary", path)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	c, err := circuit.ParseQASM(stdout)
	if err != nil || c.CNOTs() != 3 {
		t.Errorf("stdout is not a 3-CNOT circuit (%v):\n%s", err, stdout)
	}
	if !strings.Contains(stderr, "synth: the unitary (2 qubits) as the CNOT+U3 circuit above: 3 CNOTs\n") {
		t.Errorf("stderr %q lacks the summary", stderr)
	}
}

func TestSynthAndCompileBadInput(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	notUnitary := write("bad.json", `{"qubits": 1, "matrix": [[[1,0],[1,0]],[[0,0],[1,0]]]}`)
	wrongQubits := write("wrong.json", `{"qubits": 2, "matrix": [[[1,0],[0,0]],[[0,0],[1,0]]]}`)
	opaque := write("m.qasm", "OPENQASM 2.0;\ninclude \"qelib1.inc\";\nqreg q[1];\ncreg c[1];\nopaque g a;\n")
	badMatrix := write("g.json", `{"qubits": 1, "matrix": [[[1,0],[0,0]],[[0,0],[1,0]]]}`)
	tests := []struct {
		name string
		args []string
		want string // in stderr
	}{
		{"no target", []string{"synth", "--local"}, "exactly one of"},
		{"both", []string{"synth", "--local", "--target", "cnot", "--unitary", notUnitary}, "exactly one of"},
		{"unknown target", []string{"synth", "--local", "--target", "nope"}, `target "nope"`},
		{"bad format", []string{"synth", "--local", "--target", "cnot", "--format", "xml"}, "--format"},
		{"not unitary", []string{"synth", "--local", "--unitary", notUnitary}, "bad.json"},
		{"wrong qubits", []string{"synth", "--local", "--unitary", wrongQubits}, "qubits is 2"},
		{"missing file", []string{"synth", "--local", "--unitary", filepath.Join(dir, "none.json")}, "none.json"},
		{"compile opaque", []string{"compile", "--local", opaque, "-o", filepath.Join(dir, "out.qasm")}, "m.qasm: qasm:5:1: opaque: unsupported"},
		{"compile bad gates", []string{"compile", "--local", opaque, "--gates", "cx,rz"}, "single-qubit basis"},
		{"compile unknown gate", []string{"compile", "--local", opaque, "--gates", "mine,rz,sx"}, "no gate matrix"},
		{"compile gate matrix of one qubit", []string{"compile", "--local", opaque, "--gates", "mine,rz,sx", "--gate-matrix", badMatrix}, "two-qubit gate"},
		{"compile error threshold", []string{"compile", "--local", opaque, "--error-threshold", "2"}, "--error-threshold"},
		{"compile block qubits", []string{"compile", "--local", opaque, "--block-qubits", "5"}, "--block-qubits"},
		{"compile no input", []string{"compile", "--local"}, "want one input file"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, _, stderr := numericRun(t, tc.args...)
			if code != 2 {
				t.Errorf("exit %d, want 2 (%s)", code, stderr)
			}
			if !strings.Contains(stderr, tc.want) {
				t.Errorf("stderr %q lacks %q", stderr, tc.want)
			}
		})
	}
}

func TestCompileLocal(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out.qasm")
	// Two 2-qubit blocks of six CNOTs each: at most three are needed.
	src := "OPENQASM 2.0;\ninclude \"qelib1.inc\";\nqreg q[4];\n" + strings.Repeat("h q[0];\ncx q[0],q[1];\nt q[1];\ncx q[2],q[3];\nrz(0.3) q[3];\n", 6)
	in := filepath.Join(dir, "in.qasm")
	if err := os.WriteFile(in, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := numericRun(t, "compile", "--local", in, "-o", out, "--format", "json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var rep struct {
		Before   int      `json:"cnots_before"`
		After    int      `json:"cnots_after"`
		Distance *float64 `json:"distance"`
	}
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatalf("%v: %s", err, stdout)
	}
	if rep.Before != 12 || rep.After > 6 || rep.Distance == nil || *rep.Distance >= 1e-10 {
		t.Errorf("report %s: want 12 → at most 6 CNOTs within 1e-10", stdout)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := circuit.ParseQASM(src)
	c, err := circuit.ParseQASM(string(b))
	if err != nil {
		t.Fatal(err)
	}
	if d, _ := unitaryDistance(a, c); d >= 1e-10 || c.CNOTs() != rep.After {
		t.Errorf("written circuit: distance %g, %d CNOTs", d, c.CNOTs())
	}
}

// TestCompileKeepsMeasurementsAndRetargets compiles a circuit with
// classical registers, measurements, a condition and a barrier to the
// cz,rz,sx gate set: the output holds them in order, only cz, rz and sx
// otherwise, and the JSON report has the fields of a compile for a
// machine.
func TestCompileKeepsMeasurementsAndRetargets(t *testing.T) {
	numericOnlyInOneLane(t)
	dir := t.TempDir()
	out := filepath.Join(dir, "out.qasm")
	src := "OPENQASM 2.0;\ninclude \"qelib1.inc\";\nqreg q[3];\ncreg c[2];\ncreg flag[1];\n" +
		strings.Repeat("h q[0];\ncx q[0],q[1];\nt q[1];\ncx q[1],q[2];\n", 3) +
		"measure q[0] -> c[0];\nif(c==1) x q[2];\nbarrier q;\nmeasure q[1] -> c[1];\ncx q[2],q[0];\nmeasure q[2] -> flag[0];\n"
	in := filepath.Join(dir, "in.qasm")
	if err := os.WriteFile(in, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := numericRun(t, "compile", "--local", in, "-o", out, "--gates", "cz,rz,sx", "--format", "json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var rep struct {
		Before     *int     `json:"two_qubit_gates_before"`
		After      *int     `json:"two_qubit_gates_after"`
		ErrorBound *float64 `json:"error_bound"`
		Initial    []int    `json:"initial_mapping"`
		Final      []int    `json:"final_mapping"`
		Seconds    *float64 `json:"seconds"`
		Distance   *float64 `json:"distance"`
	}
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatalf("%v: %s", err, stdout)
	}
	if rep.Before == nil || *rep.Before != 7 || rep.After == nil || *rep.After > 7 || rep.ErrorBound == nil ||
		len(rep.Initial) != 3 || len(rep.Final) != 3 || rep.Seconds == nil || rep.Distance == nil || *rep.Distance > 1e-10 {
		t.Errorf("report %s", stdout)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	c, err := circuit.ParseQASM(string(b))
	if err != nil {
		t.Fatalf("%v\n%s", err, b)
	}
	for _, op := range c.Ops {
		switch op.Gate {
		case circuit.CZ, circuit.RZ, circuit.SX, circuit.Measure, circuit.Barrier:
		default:
			t.Errorf("%s in the output", op.Gate)
		}
	}
	want := "creg c[2];\ncreg flag[1];\n"
	if !strings.Contains(string(b), want) || !strings.Contains(string(b), "measure q[2] -> flag[0];") ||
		!strings.Contains(string(b), "if(c==1) ") || !strings.Contains(string(b), "barrier q[0],q[1],q[2];") {
		t.Errorf("output lacks the classical registers, measurements, condition or barrier:\n%s", b)
	}
	a, _ := circuit.ParseQASM(src)
	if !slices.Equal(nonUnitaryOps(a), nonUnitaryOps(c)) {
		t.Errorf("classical operations differ:\n%v\n%v", nonUnitaryOps(a), nonUnitaryOps(c))
	}
}

// TestCompileMapsToCouplingGraphs compiles a circuit with long-range
// gates and a measurement onto several graphs: every two-qubit gate of the
// output is on an edge, the reported final mapping is a permutation, and
// the output equals the input followed by that permutation (the command
// checks it and exits 1 otherwise; here the check is redone).
func TestCompileMapsToCouplingGraphs(t *testing.T) {
	numericOnlyInOneLane(t)
	dir := t.TempDir()
	src := "OPENQASM 2.0;\ninclude \"qelib1.inc\";\nqreg q[4];\ncreg c[4];\nh q[0];\ncx q[0],q[3];\nt q[3];\nccx q[1],q[3],q[0];\n" +
		"cx q[0],q[2];\nrz(0.3) q[2];\ncx q[3],q[0];\nmeasure q -> c;\n"
	in := filepath.Join(dir, "in.qasm")
	if err := os.WriteFile(in, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	edges := filepath.Join(dir, "edges")
	if err := os.WriteFile(edges, []byte("0-1\n1-2\n1-3\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// Level 1 (two-qubit blocks) except on the line, to keep the test short.
	for _, tc := range []struct{ coupling, gates, level string }{
		{"linear:4", "cx,u3", "2"}, {"ring:5", "cz,rz,sx", "1"}, {"grid:2x2", "cx,u3", "1"}, {edges, "cx,u3", "1"}, {"1-0,2-1,3-2", "zz,rz,sx", "1"}, {"heavy-hex:2x3", "cx,u3", "1"},
	} {
		out := filepath.Join(dir, "out.qasm")
		code, stdout, stderr := numericRun(t, "compile", "--local", in, "-o", out, "--coupling", tc.coupling, "--gates", tc.gates,
			"--level", tc.level, "--format", "json")
		if code != 0 {
			t.Fatalf("%s: exit %d: %s", tc.coupling, code, stderr)
		}
		var rep struct {
			Initial []int `json:"initial_mapping"`
			Final   []int `json:"final_mapping"`
			Before  int   `json:"two_qubit_gates_before"`
			After   int   `json:"two_qubit_gates_after"`
		}
		if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
			t.Fatal(err)
		}
		g, _ := mapping.ParseCoupling(tc.coupling)
		b, _ := os.ReadFile(out)
		c, err := circuit.ParseQASM(string(b))
		if err != nil {
			t.Fatal(err)
		}
		for _, op := range c.Ops {
			if qs := op.QubitList(); len(qs) == 2 && !g.Adjacent(qs[0], qs[1]) {
				t.Errorf("%s: %s on %v, not an edge", tc.coupling, op.Gate, qs)
			}
		}
		// Ancillas: the physical qubits no logical one starts on (or
		// ends on), in order, so that the mappings are permutations.
		complete := func(m []int) []int {
			m = slices.Clone(m)
			for p := range g.Nodes {
				if !slices.Contains(m, p) {
					m = append(m, p)
				}
			}
			return m
		}
		initial, final := complete(rep.Initial), complete(rep.Final)
		if len(rep.Final) != 4 || len(rep.Initial) != 4 || len(final) != g.Nodes || len(initial) != g.Nodes {
			t.Fatalf("%s: mappings %v → %v", tc.coupling, rep.Initial, rep.Final)
		}
		// Ancillas start in |0⟩ and stay idle, so only the logical
		// qubits' images matter: compare on states with the ancillas
		// at 0 by building the reference with ancilla images matching
		// the output's (the routing moves ancillas too; the unitary
		// check of the command itself covers that case).
		a, _ := circuit.ParseQASM(src)
		inverse := make([]int, g.Nodes)
		for l, p := range initial {
			inverse[p] = l
		}
		ref := &circuit.Circuit{Qubits: g.Nodes}
		ref.Append(resynth.PermutationSwaps(inverse)...)
		ref.Append(a.UnitaryPart().Ops...)
		ref.Append(resynth.PermutationSwaps(final)...)
		// On every basis state of the logical qubits with the ancillas
		// at 0, reference and output agree up to one global phase.
		if f := ancillaFidelity(t, ref, c.UnitaryPart(), initial[:4]); 1-f > 1e-9 {
			t.Errorf("%s: output differs from the input and its mappings: fidelity 1-%g", tc.coupling, 1-f)
		}
		// Each qubit is measured into its own bit, from where it ends up.
		for _, op := range c.Ops {
			if op.Gate == circuit.Measure && op.Qubits[0] != rep.Final[op.Arg] {
				t.Errorf("%s: bit %d measured from qubit %d, mapped to %d", tc.coupling, op.Arg, op.Qubits[0], rep.Final[op.Arg])
			}
		}
		t.Logf("%s, %s: two-qubit gates %d → %d, final mapping %v", tc.coupling, tc.gates, rep.Before, rep.After, rep.Final)
	}
}

// ancillaFidelity returns |⟨ψ_a|ψ_b⟩|² for a random state ψ of the
// physical qubits logical (the others at 0), ψ_a = A·ψ, ψ_b = B·ψ.
func ancillaFidelity(t *testing.T, a, b *circuit.Circuit, logical []int) float64 {
	t.Helper()
	rng := rand.New(rand.NewPCG(3, 3))
	n := a.Qubits
	psi := make([]complex128, 1<<n)
	var norm float64
	for x := range 1 << len(logical) {
		idx := 0
		for i, p := range logical {
			if x>>(len(logical)-1-i)&1 == 1 {
				idx |= 1 << (n - 1 - p)
			}
		}
		psi[idx] = complex(rng.NormFloat64(), rng.NormFloat64())
		norm += real(psi[idx])*real(psi[idx]) + imag(psi[idx])*imag(psi[idx])
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
	return real(dot)*real(dot) + imag(dot)*imag(dot)
}

func TestCompileTestCircuits(t *testing.T) {
	// qft4 (no redundancy: unchanged) and the 12-qubit random check by states.
	if testing.Short() {
		t.Skip("compiles whole circuits")
	}
	numericOnlyInOneLane(t)
	dir := t.TempDir()
	for _, name := range []string{"qft4.qasm"} {
		out := filepath.Join(dir, name)
		code, stdout, stderr := numericRun(t, "compile", "--local", filepath.Join("testdata", "compile", name), "-o", out)
		if code != 0 {
			t.Fatalf("%s: exit %d: %s", name, code, stderr)
		}
		if !strings.Contains(stdout, "distance") {
			t.Errorf("%s: report %q", name, stdout)
		}
	}
}

func TestWorstFidelity(t *testing.T) {
	a := circuit.New(11)
	for q := range 10 {
		a.Append(circuit.CNOTOp(q, q+1))
	}
	b := circuit.New(11)
	b.Append(a.Ops...)
	b.Append(circuit.CNOTOp(0, 1), circuit.CNOTOp(0, 1))
	f, err := worstFidelity(a, b, 1)
	if err != nil || f < 1-1e-12 {
		t.Errorf("equal circuits: fidelity %v (%v)", f, err)
	}
	b.Append(circuit.Op{Gate: circuit.X, Qubits: [3]int{3}})
	if f, _ := worstFidelity(a, b, 1); f > 0.9 {
		t.Errorf("different circuits: worst fidelity %v", f)
	}
}

// TestDemoSummary runs the demo, make demo's command (qlaunch run
// configs/local.toml -- qlaunch synth --target toffoli), on real processes:
// it ends with a summary saying what was synthesised, the CNOT count
// against the known optimum, what the distance means, the tasks, the
// slots and the time.
func TestDemoSummary(t *testing.T) {
	topo, err := filepath.Abs("../../configs/local.toml")
	if err != nil {
		t.Fatal(err)
	}
	env := []string{"QLAUNCH_ADDRESS_FILE=" + filepath.Join(t.TempDir(), "addr"), "QLAUNCH_SECRET_FILE=", "QLAUNCH_ADDR="}
	r := e2eRun(t, env, "", "run", topo, "--", qlaunchBin, "synth", "--target", "toffoli")
	if r.code != 0 {
		t.Fatalf("the demo: %+v", r)
	}
	lines := strings.Split(strings.TrimSuffix(r.stderr, "\n"), "\n")
	if len(lines) < 3 {
		t.Fatalf("stderr %q: want the summary", r.stderr)
	}
	summary := lines[len(lines)-3:]
	for i, re := range []string{
		`^synth: toffoli \(3 qubits\) as the CNOT\+U3 circuit above: 6 CNOTs, the known optimum$`,
		`^synth: distance [0-9.e+-]+: how far the circuit's unitary is from the target, 1 − \|Tr\(U†V\)\|/N \(0: the same gate up to a global phase; below 1e-10 counts as exact\)$`,
		`^synth: [0-9]+ candidate circuits instantiated by [0-9]+ tasks in [0-9]+ rounds, on [0-9]+ worker slots? \(1 worker rank\), in [0-9.]+ s$`,
	} {
		if !regexp.MustCompile(re).MatchString(summary[i]) {
			t.Errorf("summary line %d %q does not match %s", i+1, summary[i], re)
		}
	}
}
