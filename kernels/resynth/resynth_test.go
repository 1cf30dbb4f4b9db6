package resynth

import (
	"context"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/qlaunch/qlaunch/kernels"
	"github.com/qlaunch/qlaunch/kernels/circuit"
	"github.com/qlaunch/qlaunch/kernels/kerneltest"
)

func op(g circuit.Gate, qs ...int) circuit.Op {
	o, err := circuit.NewOp(g, qs, make([]float64, g.NumParams())...)
	if err != nil {
		panic(err)
	}
	return o
}

func TestPartitionExact(t *testing.T) {
	c := &circuit.Circuit{Qubits: 5, Ops: []circuit.Op{
		op(circuit.CX, 0, 1), // block 0 {0,1}
		op(circuit.CX, 3, 4), // block 1 {3,4}
		op(circuit.CX, 1, 2), // block 0 {0,1,2}
		op(circuit.CX, 2, 3), // newest of blocks 0 and 1 is 1: block 1 {2,3,4}
		op(circuit.H, 0),     // block 0
		op(circuit.CX, 0, 4), // block 1 would hold 4 qubits: block 2 {0,4}
	}}
	got := Partition(c, 3)
	want := []Block{
		{Qubits: []int{0, 1, 2}, Ops: []circuit.Op{op(circuit.CX, 0, 1), op(circuit.CX, 1, 2), op(circuit.H, 0)}},
		{Qubits: []int{2, 3, 4}, Ops: []circuit.Op{op(circuit.CX, 3, 4), op(circuit.CX, 2, 3)}},
		{Qubits: []int{0, 4}, Ops: []circuit.Op{op(circuit.CX, 0, 4)}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Partition =\n%+v\nwant\n%+v", got, want)
	}
}

// TestPartitionBackward partitions a circuit from its end: the blocks'
// edges fall elsewhere than Partition's, and a measurement stays a fence
// between the ops on either side of it.
func TestPartitionBackward(t *testing.T) {
	measure := circuit.Op{Gate: circuit.Measure, Qubits: [3]int{0}}
	c := &circuit.Circuit{Qubits: 4, Cregs: []circuit.Register{{Name: "c", Size: 1}}, Ops: []circuit.Op{
		op(circuit.CX, 0, 1),
		op(circuit.CX, 1, 2),
		op(circuit.CX, 2, 3),
		op(circuit.CX, 0, 1),
		measure,
		op(circuit.CX, 0, 1),
	}}
	forward := []Block{
		{Qubits: []int{0, 1, 2}, Ops: []circuit.Op{op(circuit.CX, 0, 1), op(circuit.CX, 1, 2), op(circuit.CX, 0, 1)}},
		{Qubits: []int{2, 3}, Ops: []circuit.Op{op(circuit.CX, 2, 3)}},
		{Qubits: []int{0}, Ops: []circuit.Op{measure}, Fence: true},
		{Qubits: []int{0, 1}, Ops: []circuit.Op{op(circuit.CX, 0, 1)}},
	}
	backward := []Block{
		{Qubits: []int{0, 1}, Ops: []circuit.Op{op(circuit.CX, 0, 1)}},
		{Qubits: []int{1, 2, 3}, Ops: []circuit.Op{op(circuit.CX, 1, 2), op(circuit.CX, 2, 3)}},
		{Qubits: []int{0, 1}, Ops: []circuit.Op{op(circuit.CX, 0, 1)}},
		{Qubits: []int{0}, Ops: []circuit.Op{measure}, Fence: true},
		{Qubits: []int{0, 1}, Ops: []circuit.Op{op(circuit.CX, 0, 1)}},
	}
	if got := Partition(c, 3); !reflect.DeepEqual(got, forward) {
		t.Errorf("Partition =\n%+v\nwant\n%+v", got, forward)
	}
	if got := PartitionBackward(c, 3); !reflect.DeepEqual(got, backward) {
		t.Errorf("PartitionBackward =\n%+v\nwant\n%+v", got, backward)
	}
}

func randomCircuit(rng *rand.Rand, qubits, gates int) *circuit.Circuit {
	c := circuit.New(qubits)
	for range gates {
		switch rng.IntN(3) {
		case 0:
			c.Append(circuit.U3Op(rng.IntN(qubits), rng.Float64()*6, rng.Float64()*6, rng.Float64()*6))
		case 1:
			p := rng.Perm(qubits)
			c.Append(circuit.CNOTOp(p[0], p[1]))
		default:
			p := rng.Perm(qubits)
			c.Append(op(circuit.CCX, p[0], p[1], p[2]))
		}
	}
	return c
}

func TestPartitionKeepsTheUnitary(t *testing.T) {
	for seed := range uint64(6) {
		rng := rand.New(rand.NewPCG(seed, 1))
		c := randomCircuit(rng, 5, 50)
		for _, tc := range []struct {
			width    int
			backward bool
		}{{2, false}, {3, false}, {2, true}, {3, true}} {
			width := tc.width
			blocks := Partition(c, width)
			if tc.backward {
				blocks = PartitionBackward(c, width)
			}
			total := 0
			for i, b := range blocks {
				if len(b.Qubits) > max(width, 3) {
					t.Fatalf("seed %d: block %d on %d qubits", seed, i, len(b.Qubits))
				}
				total += len(b.Ops)
			}
			if total != len(c.Ops) {
				t.Fatalf("seed %d: blocks hold %d operations, circuit %d", seed, total, len(c.Ops))
			}
			u, _ := c.Unitary()
			v, _ := Assemble(c.Qubits, blocks).Unitary()
			if d := circuit.Distance(u, v); d > 1e-12 {
				t.Fatalf("seed %d width %d backward %v: reassembled circuit at distance %g", seed, width, tc.backward, d)
			}
		}
	}
}

func newRuntime(t *testing.T, slots int) *kerneltest.Runtime {
	t.Helper()
	reg, err := kernels.NewRegistry(Kernels()...)
	if err != nil {
		t.Fatal(err)
	}
	return kerneltest.New(reg, slots)
}

// redundant returns a circuit with wasted CNOTs: on each neighbouring pair
// a 2-qubit block of six CNOTs (at most three are ever needed) and a
// cancelling pair across three qubits.
func redundant(qubits int, rng *rand.Rand) *circuit.Circuit {
	c := circuit.New(qubits)
	for q := 0; q+1 < qubits; q += 2 {
		for range 6 {
			c.Append(circuit.U3Op(q, rng.Float64()*6, rng.Float64()*6, rng.Float64()*6), circuit.CNOTOp(q, q+1))
		}
	}
	c.Append(circuit.CNOTOp(0, 2), circuit.CNOTOp(0, 2))
	return c
}

func TestResynthKernelReducesCNOTs(t *testing.T) {
	tests := []struct {
		name        string
		c           *circuit.Circuit
		blockQubits int
	}{
		{"four qubits, pairs", redundant(4, rand.New(rand.NewPCG(1, 1))), 2},
		{"four qubits, triples", redundant(4, rand.New(rand.NewPCG(2, 2))), 3},
	}
	rt := newRuntime(t, 2)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			payload, _ := json.Marshal(Request{QASM: circuit.FormatQASM(tc.c), Seed: 3, BlockQubits: tc.blockQubits})
			out, err := rt.Run(context.Background(), kernels.Task{Kernel: KernelResynth, Payload: payload})
			if err != nil {
				t.Fatal(err)
			}
			var res Result
			if err := json.Unmarshal(out, &res); err != nil {
				t.Fatal(err)
			}
			t.Logf("CNOTs %d → %d, %d of %d blocks replaced", res.CNOTsBefore, res.CNOTsAfter, res.Replaced, res.Blocks)
			if res.CNOTsBefore != tc.c.CNOTs() || res.CNOTsAfter >= res.CNOTsBefore || res.Replaced == 0 {
				t.Errorf("CNOTs %d → %d, %d replaced: want fewer", res.CNOTsBefore, res.CNOTsAfter, res.Replaced)
			}
			got, err := circuit.ParseQASM(res.QASM)
			if err != nil {
				t.Fatal(err)
			}
			if got.CNOTs() != res.CNOTsAfter {
				t.Errorf("QASM has %d CNOTs, result says %d", got.CNOTs(), res.CNOTsAfter)
			}
			u, _ := tc.c.Unitary()
			v, _ := got.Unitary()
			if d := circuit.Distance(u, v); d >= 1e-10 {
				t.Errorf("resynthesised circuit at distance %g", d)
			}
		})
	}
}

func TestResynthBadRequests(t *testing.T) {
	rt := newRuntime(t, 1)
	for name, payload := range map[string]string{
		"not json":      "{",
		"bad qasm":      `{"qasm": "qreg q[1]; measure q[0];"}`,
		"block width":   `{"qasm": "qreg q[1];", "block_qubits": 5}`,
		"bad threshold": `{"qasm": "qreg q[1];", "threshold": -1}`,
	} {
		t.Run(name, func(t *testing.T) {
			_, err := rt.Run(context.Background(), kernels.Task{Kernel: KernelResynth, Payload: []byte(payload)})
			var re *RequestError
			if !errors.As(err, &re) || !re.BadInput() {
				t.Errorf("error %v, want a *RequestError", err)
			}
		})
	}
}
