package circuit

import (
	"errors"
	"math"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"
)

func TestParseQASM(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want Circuit
	}{
		{
			name: "header, registers, comments",
			src: `OPENQASM 2.0;
include "qelib1.inc"; // the standard library
qreg a[2];
creg c[2];
qreg b[1];
cx a[1], b[0];
barrier a, b;
h a[0];`,
			want: Circuit{Qubits: 3, Cregs: []Register{{"c", 2}}, Ops: []Op{CNOTOp(1, 2),
				{Gate: Barrier, Qubits: [3]int{0}}, {Gate: Barrier, Qubits: [3]int{1}, Arg: 1}, {Gate: Barrier, Qubits: [3]int{2}, Arg: 1},
				{Gate: H, Qubits: [3]int{0}}}},
		},
		{
			name: "no header, builtins U and CX",
			src:  "qreg q[2]; U(1,2,3) q[1]; CX q[0],q[1];",
			want: Circuit{Qubits: 2, Ops: []Op{U3Op(1, 1, 2, 3), CNOTOp(0, 1)}},
		},
		{
			name: "broadcast one register",
			src:  "qreg q[3]; h q;",
			want: Circuit{Qubits: 3, Ops: []Op{{Gate: H, Qubits: [3]int{0}}, {Gate: H, Qubits: [3]int{1}}, {Gate: H, Qubits: [3]int{2}}}},
		},
		{
			name: "broadcast against a fixed qubit and a register",
			src:  "qreg c[1]; qreg t[2]; qreg u[2]; cx c[0], t; cz t, u;",
			want: Circuit{Qubits: 5, Ops: []Op{CNOTOp(0, 1), CNOTOp(0, 2),
				{Gate: CZ, Qubits: [3]int{1, 3}}, {Gate: CZ, Qubits: [3]int{2, 4}}}},
		},
		{
			name: "expressions",
			src: `qreg q[1];
rz(pi/2) q[0];
rx(-pi) q[0];
ry(2*-3+1) q[0];
u1(2^3^2) q[0];
u2(-2^2, (1+2)*3) q[0];
u3(sqrt(4), ln(1)+1.5, cos(0)+sin(0)+tan(0)) q[0];
rz(1e-3) q[0];
rz(.5E+1) q[0];
rz(8/4/2) q[0];
rz(1-2-3) q[0];`,
			want: Circuit{Qubits: 1, Ops: []Op{
				{Gate: RZ, Params: [3]float64{math.Pi / 2}},
				{Gate: RX, Params: [3]float64{-math.Pi}},
				{Gate: RY, Params: [3]float64{-5}},
				{Gate: U1, Params: [3]float64{512}},
				{Gate: U2, Params: [3]float64{-4, 9}},
				{Gate: U3, Params: [3]float64{2, 1.5, 1}},
				{Gate: RZ, Params: [3]float64{1e-3}},
				{Gate: RZ, Params: [3]float64{5}},
				{Gate: RZ, Params: [3]float64{1}},
				{Gate: RZ, Params: [3]float64{-4}},
			}},
		},
		{
			name: "every gate",
			src: `qreg q[3]; id q[0]; x q[0]; y q[0]; z q[0]; h q[0]; s q[0]; sdg q[0]; t q[0]; tdg q[0];
rx(1) q[0]; ry(1) q[0]; rz(1) q[0]; u1(1) q[0]; u2(1,2) q[0]; u3(1,2,3) q[0];
cx q[0],q[1]; cz q[0],q[1]; swap q[0],q[1]; ccx q[0],q[1],q[2];
sx q[0]; sxdg q[0]; rzz(1) q[0],q[1]; rxx(2) q[1],q[0]; cu1(3) q[2],q[0];`,
			want: Circuit{Qubits: 3, Ops: []Op{{Gate: ID}, {Gate: X}, {Gate: Y}, {Gate: Z}, {Gate: H}, {Gate: S}, {Gate: Sdg}, {Gate: T}, {Gate: Tdg},
				{Gate: RX, Params: [3]float64{1}}, {Gate: RY, Params: [3]float64{1}}, {Gate: RZ, Params: [3]float64{1}},
				{Gate: U1, Params: [3]float64{1}}, {Gate: U2, Params: [3]float64{1, 2}}, {Gate: U3, Params: [3]float64{1, 2, 3}},
				CNOTOp(0, 1), {Gate: CZ, Qubits: [3]int{0, 1}}, {Gate: Swap, Qubits: [3]int{0, 1}}, {Gate: CCX, Qubits: [3]int{0, 1, 2}},
				{Gate: SX}, {Gate: SXdg}, {Gate: RZZ, Qubits: [3]int{0, 1}, Params: [3]float64{1}},
				{Gate: RXX, Qubits: [3]int{1, 0}, Params: [3]float64{2}}, {Gate: CU1, Qubits: [3]int{2, 0}, Params: [3]float64{3}}}},
		},
		{
			name: "measure, reset, barrier, if, in order",
			src: `OPENQASM 2.0;
include "qelib1.inc";
qreg q[2];
creg c[1];
creg d[2];
h q[0];
measure q[0] -> c[0];
if (c==1) x q[1];
barrier q;
reset q[0];
measure q -> d;
if(d==3) measure q[1] -> c[0];
if(d==2) reset q[1];`,
			want: Circuit{Qubits: 2, Cregs: []Register{{"c", 1}, {"d", 2}}, Ops: []Op{
				{Gate: H},
				{Gate: Measure, Arg: 0},
				{Gate: X, Qubits: [3]int{1}, Cond: Cond{Reg: 1, Value: 1}},
				{Gate: Barrier}, {Gate: Barrier, Qubits: [3]int{1}, Arg: 1},
				{Gate: Reset},
				{Gate: Measure, Arg: 1}, {Gate: Measure, Qubits: [3]int{1}, Arg: 2},
				{Gate: Measure, Qubits: [3]int{1}, Arg: 0, Cond: Cond{Reg: 2, Value: 3}},
				{Gate: Reset, Qubits: [3]int{1}, Cond: Cond{Reg: 2, Value: 2}},
			}},
		},
		{
			name: "a classical register named q",
			src:  "qreg a[1]; creg q[1]; measure a[0] -> q[0];",
			want: Circuit{Qubits: 1, Cregs: []Register{{"q", 1}}, Ops: []Op{{Gate: Measure}}},
		},
		{
			name: "a two-qubit gate definition, used and nested",
			src: `qreg q[3];
gate sqrtcx a, b { barrier a; h b; cu1(pi/2) a,b; h b; }
gate two x,y { sqrtcx x,y; sqrtcx y,x; }
sqrtcx q[2],q[0];
two q[0], q[1];`,
			want: Circuit{Qubits: 3, Defs: []Def{
				{"sqrtcx", []Op{{Gate: H, Qubits: [3]int{1}}, {Gate: CU1, Qubits: [3]int{0, 1}, Params: [3]float64{math.Pi / 2}}, {Gate: H, Qubits: [3]int{1}}}},
				{"two", []Op{{Gate: H, Qubits: [3]int{1}}, {Gate: CU1, Qubits: [3]int{0, 1}, Params: [3]float64{math.Pi / 2}}, {Gate: H, Qubits: [3]int{1}},
					{Gate: H, Qubits: [3]int{0}}, {Gate: CU1, Qubits: [3]int{1, 0}, Params: [3]float64{math.Pi / 2}}, {Gate: H, Qubits: [3]int{0}}}},
			}, Ops: []Op{
				{Gate: Defined, Qubits: [3]int{2, 0}, Arg: 0},
				{Gate: Defined, Qubits: [3]int{0, 1}, Arg: 1},
			}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseQASM(tc.src)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(*got, tc.want) {
				t.Errorf("ParseQASM =\n%+v\nwant\n%+v", *got, tc.want)
			}
			again, err := ReadQASM(iotest.OneByteReader(strings.NewReader(FormatQASM(got))))
			if err != nil {
				t.Fatalf("reading the written form: %v\n%s", err, FormatQASM(got))
			}
			if !reflect.DeepEqual(again, got) {
				t.Errorf("round trip =\n%+v\nwant\n%+v", again, got)
			}
		})
	}
}

func TestParseQASMErrors(t *testing.T) {
	tests := []struct {
		name        string
		src         string
		line, col   int
		unsupported bool
	}{
		{"measure into an undeclared register", "qreg q[1];\ncreg c[1];\n  measure q[0] -> d[0];", 3, 19, false},
		{"measure without arrow", "qreg q[1];\ncreg c[1];\nmeasure q[0] c[0];", 3, 14, false},
		{"measure register into bit", "qreg q[2];\ncreg c[2];\nmeasure q -> c[0];", 3, 14, false},
		{"measure sizes differ", "qreg q[2];\ncreg c[3];\nmeasure q -> c;", 3, 14, false},
		{"measure bit out of range", "qreg q[1]; creg c[1]; measure q[0] -> c[1];", 1, 41, false},
		{"one-qubit gate definition", "qreg q[1];\ngate foo a { h a; }", 2, 1, true},
		{"gate definition with parameters", "gate foo(t) a, b { rz(t) a; }", 1, 9, true},
		{"gate definition using an unknown argument", "gate foo a, b { cx a, c; }", 1, 23, false},
		{"redefinition of a built-in", "gate cx a, b { cz a, b; }", 1, 6, true},
		{"reset of two qubits", "qreg q[2]; reset q[0], q[1];", 1, 12, false},
		{"if on an undeclared register", "qreg q[1];\nif (c==1) x q[0];", 2, 5, false},
		{"if value too large", "qreg q[1]; creg c[2];\nif (c==4) x q[0];", 2, 8, false},
		{"if barrier", "qreg q[1]; creg c[2];\nif (c==1) barrier q;", 2, 11, false},
		{"if without ==", "qreg q[1]; creg c[2];\nif (c=1) x q[0];", 2, 6, false},
		{"classical register too large", "creg c[65];", 1, 8, true},
		{"opaque", "opaque g q;", 1, 1, true},
		{"unknown gate", "qreg q[2];\ncu3(0.5,1,2) q[0],q[1];", 2, 1, true},
		{"other include", `include "other.inc";`, 1, 9, true},
		{"version 3", "OPENQASM 3.0;", 1, 10, true},
		{"missing semicolon", "qreg q[1]\nh q[0];", 2, 1, false},
		{"index out of range", "qreg q[2];\nh q[2];", 2, 5, false},
		{"undeclared register", "qreg q[2];\nh r[0];", 2, 3, false},
		{"wrong qubit count", "qreg q[2]; cx q[0];", 1, 12, false},
		{"wrong parameter count", "qreg q[2]; rz q[0];", 1, 12, false},
		{"repeated qubit", "qreg q[2]; cx q[1], q[1];", 1, 12, false},
		{"broadcast size mismatch", "qreg a[2]; qreg b[3]; cx a, b;", 1, 29, false},
		{"broadcast size 1 against 3", "qreg b[3]; qreg a[1]; cx a, b;", 1, 29, false},
		{"broadcast size 3 against 1", "qreg b[3]; qreg a[1]; cx b, a;", 1, 29, false},
		{"unknown identifier", "qreg q[1]; rz(theta) q[0];", 1, 15, false},
		{"non-finite parameter", "qreg q[1]; rz(1/0) q[0];", 1, 15, false},
		{"bad character", "qreg q[1];\n  h q[0]; @", 2, 11, false},
		{"unterminated string", `include "qelib1.inc`, 1, 9, false},
		{"duplicate register", "qreg q[1]; qreg q[2];", 1, 17, false},
		{"zero-size register", "qreg q[0];", 1, 8, false},
		{"late OPENQASM", "qreg q[1]; OPENQASM 2.0;", 1, 12, false},
		{"unclosed paren", "qreg q[1]; rz((1) q[0];", 1, 19, false},
		{"too many qubits", "qreg q[2000];", 1, 8, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseQASM(tc.src)
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("ParseQASM error = %v, want a *SyntaxError", err)
			}
			if se.Line != tc.line || se.Col != tc.col {
				t.Errorf("error at %d:%d, want %d:%d (%v)", se.Line, se.Col, tc.line, tc.col, err)
			}
			if got := errors.Is(err, ErrUnsupported); got != tc.unsupported {
				t.Errorf("errors.Is(ErrUnsupported) = %v, want %v (%v)", got, tc.unsupported, err)
			}
		})
	}
}

func TestFormatQASMRoundTripsRandomCircuits(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for i := range 20 {
		c := New(5)
		for range 50 {
			g := Gate(1 + rng.IntN(int(numGates-1)))
			if !g.Builtin() {
				continue
			}
			qs := rng.Perm(5)[:g.Arity()]
			ps := make([]float64, g.NumParams())
			for j := range ps {
				ps[j] = (rng.Float64() - 0.5) * math.Pow(10, float64(rng.IntN(20)-10))
			}
			op, err := NewOp(g, qs, ps...)
			if err != nil {
				t.Fatal(err)
			}
			c.Append(op)
		}
		got, err := ParseQASM(FormatQASM(c))
		if err != nil {
			t.Fatalf("circuit %d: %v", i, err)
		}
		if !reflect.DeepEqual(got, c) {
			t.Fatalf("circuit %d: round trip differs:\n%s", i, FormatQASM(got))
		}
	}
}

func FuzzParseQASM(f *testing.F) {
	f.Add("OPENQASM 2.0;\ninclude \"qelib1.inc\";\nqreg q[3];\nh q;\ncx q[0],q[1];\nu3(pi/2,-0.5,1e-3) q[2];\n")
	f.Add("qreg a[2]; qreg b[2]; cz a, b; ccx a[0], a[1], b[0]; rz(2^-(1+1)*sqrt(2)) b[1];")
	f.Add("qreg q[1]; measure q[0] -> c[0];")
	f.Add("qreg q[2]; creg c[2]; gate g a,b { cx a,b; sx b; } g q[1],q[0]; measure q -> c; if(c==2) rzz(1) q[0],q[1]; barrier q; reset q;")
	f.Add("qreg q[1]; rz(((((1))))) q[0]; // comment")
	f.Add("OPENQASM 2.0; qreg q[2]; swap q[1],q[0]; barrier q; u2(.5,-.5e+2) q[0];")
	f.Fuzz(func(t *testing.T, src string) {
		c, err := ParseQASM(src)
		if err != nil {
			var se *SyntaxError
			if !errors.As(err, &se) || se.Line < 1 || se.Col < 1 {
				t.Fatalf("error %v is not a positioned *SyntaxError", err)
			}
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("parsed circuit is invalid: %v", err)
		}
		// What was read is written back and read again to the same circuit.
		again, err := ReadQASM(iotest.OneByteReader(strings.NewReader(FormatQASM(c))))
		if err != nil {
			t.Fatalf("reading the written form: %v", err)
		}
		if c.Qubits == 0 {
			c.Qubits = 1
		}
		if !reflect.DeepEqual(again, c) {
			t.Fatalf("round trip differs")
		}
		// A statement split in two at any byte fails or parses alone.
		half := len(src) / 2
		_, _ = ParseQASM(src[:half])
	})
}
