package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/qlaunch/qlaunch/kernels/circuit"
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
	measure := write("m.qasm", "OPENQASM 2.0;\ninclude \"qelib1.inc\";\nqreg q[1];\ncreg c[1];\nmeasure q[0] -> c[0];\n")
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
		{"compile measure", []string{"compile", "--local", measure, "-o", filepath.Join(dir, "out.qasm")}, "m.qasm: qasm:5:1: measure: unsupported"},
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

func TestCompileTestCircuits(t *testing.T) {
	// qft4 (no redundancy: unchanged) and the 12-qubit random check by states.
	if testing.Short() {
		t.Skip("compiles whole circuits")
	}
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
