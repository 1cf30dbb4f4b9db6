package resynth

import (
	"context"
	"fmt"
	"math"
	"math/cmplx"
	"slices"
	"strings"

	"github.com/qlaunch/qlaunch/kernels/circuit"
	"github.com/qlaunch/qlaunch/kernels/instantiate"
)

// DefaultGates is the gate set by default: CNOT and U3.
const DefaultGates = "cx,u3"

// GatePresets lists the gate sets with names of their own.
func GatePresets() []string {
	return []string{"cx,u3", "cz,rz,sx", "zz,rz,sx", "rxx,rz,sx", "ryy,rz,sx", "sqrtiswap,rz,sx"}
}

// GateSet is a machine's native gates: one constant two-qubit gate and a
// single-qubit basis, u3 or rz and sx.
type GateSet struct {
	spec string
	two  circuit.Op  // the two-qubit gate on qubits 0 and 1; Defined for a defined one
	def  circuit.Def // its definition (for a built-in, the op alone)
	mat  circuit.Matrix
	rzsx bool // single-qubit basis rz, sx (else u3)
}

// GateSetError reports a gate set that cannot be used.
type GateSetError struct{ Spec, Msg string }

func (e *GateSetError) Error() string {
	return fmt.Sprintf("resynth: gate set %q: %s (presets: %s; or NAME,rz,sx with a gate matrix)",
		e.Spec, e.Msg, strings.Join(GatePresets(), " "))
}

// BadInput marks the error as the caller's fault.
func (e *GateSetError) BadInput() bool { return true }

// ParseGateSet reads a gate set: a comma-separated list of one two-qubit
// gate and a single-qubit basis, u3 or both rz and sx. The two-qubit gate
// is cx, cz, zz (rzz(π/2)), rxx (rxx(π/2)), ryy (ryy(π/2)), sqrtiswap, or
// any other name for the gate whose 4×4 unitary matrix is given (nil
// otherwise): its definition, written into the output, is a CNOT circuit
// found by instantiation, within 1e-15 of the matrix.
func ParseGateSet(ctx context.Context, spec string, matrix *circuit.Matrix) (*GateSet, error) {
	g := &GateSet{spec: spec}
	var names []string
	for _, n := range strings.Split(spec, ",") {
		names = append(names, strings.TrimSpace(n))
	}
	var one []string
	twoName := ""
	for _, n := range names {
		switch n {
		case "u3", "rz", "sx":
			if slices.Contains(one, n) {
				return nil, &GateSetError{spec, n + " twice"}
			}
			one = append(one, n)
			continue
		case "":
			return nil, &GateSetError{spec, "empty gate name"}
		}
		if twoName != "" {
			return nil, &GateSetError{spec, "two two-qubit gates, " + twoName + " and " + n}
		}
		twoName = n
	}
	slices.Sort(one)
	switch {
	case slices.Equal(one, []string{"u3"}):
	case slices.Equal(one, []string{"rz", "sx"}):
		g.rzsx = true
	default:
		return nil, &GateSetError{spec, "want the single-qubit basis u3, or rz and sx"}
	}
	op := func(gate circuit.Gate, p float64) circuit.Op {
		return circuit.Op{Gate: gate, Qubits: [3]int{0, 1}, Params: [3]float64{p}}
	}
	rx := func(q int, p float64) circuit.Op {
		return circuit.Op{Gate: circuit.RX, Qubits: [3]int{q}, Params: [3]float64{p}}
	}
	// ryy(θ) = (rx(−π/2)⊗rx(−π/2))·rzz(θ)·(rx(π/2)⊗rx(π/2)).
	ryy := func(p float64) []circuit.Op {
		return []circuit.Op{rx(0, math.Pi/2), rx(1, math.Pi/2), op(circuit.RZZ, p), rx(0, -math.Pi/2), rx(1, -math.Pi/2)}
	}
	if matrix != nil && (twoName == "cx" || twoName == "cz" || twoName == "zz" || twoName == "rxx" || twoName == "ryy" || twoName == "sqrtiswap") {
		return nil, &GateSetError{spec, "a gate matrix is given for the preset gate " + twoName}
	}
	switch twoName {
	case "cx":
		g.two = circuit.CNOTOp(0, 1)
	case "cz":
		g.two = op(circuit.CZ, 0)
	case "zz", "rzz":
		g.two = op(circuit.RZZ, math.Pi/2)
	case "rxx":
		g.two = op(circuit.RXX, math.Pi/2)
	case "ryy":
		g.def = circuit.Def{Name: "ryy", Body: ryy(math.Pi / 2)}
	case "sqrtiswap":
		// √iSWAP = exp(iπ/8 (XX+YY)) = rxx(−π/4)·ryy(−π/4).
		g.def = circuit.Def{Name: "sqrtiswap", Body: append([]circuit.Op{op(circuit.RXX, -math.Pi/4)}, ryy(-math.Pi/4)...)}
	case "":
		return nil, &GateSetError{spec, "no two-qubit gate"}
	default:
		if matrix == nil {
			return nil, &GateSetError{spec, "unknown two-qubit gate " + twoName + " and no gate matrix"}
		}
		if !validName(twoName) {
			return nil, &GateSetError{spec, "gate name " + twoName + " is not an OpenQASM identifier"}
		}
		if _, builtin := circuit.GateByName(twoName); builtin {
			return nil, &GateSetError{spec, twoName + " is a built-in gate of qelib1.inc"}
		}
		body, err := defineTwoQubit(ctx, *matrix)
		if err != nil {
			return nil, &GateSetError{spec, err.Error()}
		}
		g.def = circuit.Def{Name: twoName, Body: body}
	}
	if g.def.Name != "" {
		g.two = circuit.Op{Gate: circuit.Defined, Qubits: [3]int{0, 1}}
	} else {
		g.def = circuit.Def{Name: twoName, Body: []circuit.Op{g.two}}
	}
	m, err := g.def.Matrix()
	if err != nil {
		return nil, &GateSetError{spec, err.Error()}
	}
	g.mat = m
	if entanglingPower(m) < 1e-6 {
		return nil, &GateSetError{spec, "the two-qubit gate does not entangle (it is a product of single-qubit gates, up to a swap)"}
	}
	return g, nil
}

func validName(s string) bool {
	for i := range len(s) {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' || i > 0 && c >= '0' && c <= '9') {
			return false
		}
	}
	return s != ""
}

// defineTwoQubit returns a circuit of at most three CNOTs and U3 gates
// within 1e-15 of the two-qubit unitary m.
func defineTwoQubit(ctx context.Context, m circuit.Matrix) ([]circuit.Op, error) {
	if m.Dim != 4 {
		return nil, fmt.Errorf("gate matrix of dimension %d, want 4", m.Dim)
	}
	if err := m.Validate(1e-8); err != nil {
		return nil, err
	}
	tmpl := instantiate.Template{Qubits: 2, Blocks: []instantiate.Block{{0, 1}, {0, 1}, {0, 1}}}
	res, err := instantiate.Instantiate(ctx, &instantiate.Request{Target: m, Template: tmpl, Seed: 1,
		Options: instantiate.Options{Threshold: 1e-15, Starts: 16}})
	if err != nil {
		return nil, err
	}
	if res.Distance >= 1e-14 {
		return nil, fmt.Errorf("no CNOT circuit found for the gate matrix (distance %g)", res.Distance)
	}
	return tmpl.Circuit(res.Params).Ops, nil
}

// entanglingPower returns how far m is from a product of single-qubit
// gates, up to a swap: 0 for a local gate.
func entanglingPower(m circuit.Matrix) float64 {
	// The operator Schmidt rank is 1 exactly for a product gate: reshape
	// m as R[(i1 j1), (i2 j2)] and measure the weight beyond its largest
	// singular value through R·R† (4×4).
	sw := circuit.Identity(4)
	sw.Data[5], sw.Data[6], sw.Data[9], sw.Data[10] = 0, 1, 1, 0
	return min(schmidtExcess(m), schmidtExcess(circuit.Mul(sw, m)))
}

func schmidtExcess(m circuit.Matrix) float64 {
	var r [4][4]complex128
	for i := range 4 {
		for j := range 4 {
			i1, i2, j1, j2 := i>>1, i&1, j>>1, j&1
			r[i1*2+j1][i2*2+j2] = m.Data[i*4+j]
		}
	}
	// Frobenius² of R is 4; a rank-one R has Tr((RR†)²) = 16.
	var rr [4][4]complex128
	for a := range 4 {
		for b := range 4 {
			for k := range 4 {
				rr[a][b] += r[a][k] * cmplx.Conj(r[b][k])
			}
		}
	}
	var t float64
	for a := range 4 {
		for b := range 4 {
			t += real(rr[a][b] * rr[b][a])
		}
	}
	return 1 - t/16
}

// Matrix returns the two-qubit gate's unitary.
func (g *GateSet) Matrix() circuit.Matrix { return g.mat }

// String returns the gate set as given.
func (g *GateSet) String() string { return g.spec }

// Def returns the two-qubit gate as a definition (for a built-in gate, a
// body of that gate alone).
func (g *GateSet) Def() circuit.Def { return g.def }

// isCX reports whether the two-qubit gate is the CNOT.
func (g *GateSet) isCX() bool { return g.two.Gate == circuit.CX }

// on returns the two-qubit gate on qubits a and b (a defined gate as
// Defs[defIndex]).
func (g *GateSet) on(a, b, defIndex int) circuit.Op {
	op := g.two
	op.Qubits = [3]int{a, b}
	if op.Gate == circuit.Defined {
		op.Arg = defIndex
	}
	return op
}

// nativeTwo reports whether op, a gate of circuit c, is the set's
// two-qubit gate (on either orientation for symmetric gates; a CNOT on
// any orientation, the set holding every CNOT).
func (g *GateSet) nativeTwo(op circuit.Op, defs []circuit.Def) bool {
	if op.Gate.Arity() != 2 || !op.Gate.Unitary() {
		return false
	}
	if op.Gate == circuit.Defined {
		if g.two.Gate != circuit.Defined || op.Arg < 0 || op.Arg >= len(defs) || defs[op.Arg].Name != g.def.Name {
			return false
		}
		m, err := defs[op.Arg].Matrix()
		return err == nil && circuit.Distance(m, g.mat) < 1e-14
	}
	return op.Gate == g.two.Gate && op.Params == g.two.Params
}

// nativeOne reports whether op is a gate of the single-qubit basis.
func (g *GateSet) nativeOne(op circuit.Op) bool {
	if g.rzsx {
		return op.Gate == circuit.RZ || op.Gate == circuit.SX
	}
	return op.Gate == circuit.U3
}

// oneQubit returns the basis gates on qubit q for the 2×2 unitary u (up
// to a global phase); none for the identity.
func (g *GateSet) oneQubit(q int, u [4]complex128) []circuit.Op {
	theta, phi, lambda := zyz(u)
	const eps = 1e-12
	zero := func(a float64) bool { return math.Abs(math.Remainder(a, 2*math.Pi)) < eps }
	if !g.rzsx {
		if zero(theta) && zero(phi+lambda) {
			return nil
		}
		return []circuit.Op{circuit.U3Op(q, theta, phi, lambda)}
	}
	rz := func(a float64) []circuit.Op {
		a = math.Remainder(a, 2*math.Pi)
		if math.Abs(a) < eps {
			return nil
		}
		return []circuit.Op{{Gate: circuit.RZ, Qubits: [3]int{q}, Params: [3]float64{a}}}
	}
	sx := circuit.Op{Gate: circuit.SX, Qubits: [3]int{q}}
	var out []circuit.Op
	switch {
	case zero(theta):
		out = rz(phi + lambda)
	case zero(theta - math.Pi/2):
		// u3(π/2, φ, λ) = rz(φ+π/2)·sx·rz(λ−π/2), up to phase.
		out = append(append(rz(lambda-math.Pi/2), sx), rz(phi+math.Pi/2)...)
	default:
		// u3(θ, φ, λ) = rz(φ+π)·sx·rz(θ+π)·sx·rz(λ), up to phase.
		out = append(append(append(append(rz(lambda), sx), rz(theta+math.Pi)...), sx), rz(phi+math.Pi)...)
	}
	return out
}

// zyz returns u3 angles (θ, φ, λ) of the 2×2 unitary u, up to a global
// phase.
func zyz(u [4]complex128) (theta, phi, lambda float64) {
	a, c := cmplx.Abs(u[0]), cmplx.Abs(u[2])
	theta = 2 * math.Atan2(c, a)
	switch {
	case c < 1e-14: // diagonal: phase e^{i(φ+λ)} on |1⟩
		return 0, 0, cmplx.Phase(u[3]) - cmplx.Phase(u[0])
	case a < 1e-14: // anti-diagonal
		return math.Pi, cmplx.Phase(u[2]) - cmplx.Phase(-u[1]), 0
	}
	g := cmplx.Phase(u[0])
	return theta, cmplx.Phase(u[2]) - g, cmplx.Phase(-u[1]) - g
}
