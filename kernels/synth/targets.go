package synth

import (
	"fmt"
	"math"
	"math/cmplx"
	"math/rand/v2"
	"strconv"
	"strings"

	"github.com/qlaunch/qlaunch/kernels/circuit"
)

// TargetError reports a target name that Target does not know.
type TargetError struct{ Name, Msg string }

func (e *TargetError) Error() string { return fmt.Sprintf("synth: target %q: %s", e.Name, e.Msg) }

// BadInput marks the error as the caller's fault.
func (e *TargetError) BadInput() bool { return true }

// TargetNames lists the fixed names Target accepts (plus random:QUBITS:SEED).
func TargetNames() []string { return []string{"cnot", "swap", "qft2", "qft3", "toffoli"} }

// Target returns the unitary called name: cnot, swap, qft2, qft3 (the
// quantum Fourier transform F[j][k] = ω^{jk}/√N), toffoli (controls 0
// and 1, target 2), or random:QUBITS:SEED (Haar-random, 1 to 6 qubits).
func Target(name string) (circuit.Matrix, error) {
	switch name {
	case "cnot":
		return circuitUnitary(2, circuit.CNOTOp(0, 1))
	case "swap":
		return circuitUnitary(2, circuit.Op{Gate: circuit.Swap, Qubits: [3]int{0, 1}})
	case "toffoli":
		return circuitUnitary(3, circuit.Op{Gate: circuit.CCX, Qubits: [3]int{0, 1, 2}})
	case "qft2":
		return QFT(2), nil
	case "qft3":
		return QFT(3), nil
	}
	if rest, ok := strings.CutPrefix(name, "random:"); ok {
		qs, ss, ok := strings.Cut(rest, ":")
		if !ok {
			return circuit.Matrix{}, &TargetError{name, "want random:QUBITS:SEED"}
		}
		q, err := strconv.Atoi(qs)
		if err != nil || q < 1 || q > 6 {
			return circuit.Matrix{}, &TargetError{name, "QUBITS must be 1 to 6"}
		}
		seed, err := strconv.ParseUint(ss, 10, 64)
		if err != nil {
			return circuit.Matrix{}, &TargetError{name, "SEED must be a non-negative integer"}
		}
		return circuit.RandomUnitary(q, rand.New(rand.NewPCG(seed, 0x5eed))), nil
	}
	return circuit.Matrix{}, &TargetError{name, "unknown; want one of " + strings.Join(TargetNames(), ", ") + " or random:QUBITS:SEED"}
}

func circuitUnitary(qubits int, ops ...circuit.Op) (circuit.Matrix, error) {
	return (&circuit.Circuit{Qubits: qubits, Ops: ops}).Unitary()
}

// QFT returns the quantum Fourier transform on qubits qubits.
func QFT(qubits int) circuit.Matrix {
	n := 1 << qubits
	m := circuit.NewMatrix(n)
	s := 1 / math.Sqrt(float64(n))
	for j := range n {
		for k := range n {
			m.Set(j, k, cmplx.Rect(s, 2*math.Pi*float64((j*k)%n)/float64(n)))
		}
	}
	return m
}
