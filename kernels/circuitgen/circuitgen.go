// Package circuitgen generates benchmark circuits for the compiler, as
// textbook decompositions into cx and single-qubit gates (so that
// resynthesis has the redundancy a real front end leaves):
//
//   - Heisenberg(n, steps): Trotterised XXX chain, each bond's
//     exp(−iθ(XX+YY+ZZ)) as three two-CNOT Pauli rotations;
//   - TFIM(n, steps): transverse-field Ising chain, ZZ rotations and rx;
//   - Hubbard(sites, steps): 1D Fermi–Hubbard under Jordan–Wigner, hopping
//     as XX+YY rotations and on-site interaction as ZZ, 2·sites qubits;
//   - QAOA(n, layers): MaxCut on a ring, ZZ rotations and rx mixers;
//   - QFT(n): with controlled phases as two CNOTs each, and the final
//     swaps;
//   - Adder(bits): the Cuccaro ripple-carry adder (MAJ and UMA, ccx
//     decomposed into six CNOTs), 2·bits+2 qubits;
//   - Grover(n, iterations): multi-controlled Z by a ladder of ccx on
//     ancillas, 2n−1 qubits;
//   - Random(n, gates, seed): cx and u3 at random.
//
// Named returns a circuit by a name such as "heisenberg:6:2" (see Names).
package circuitgen

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"

	"github.com/qlaunch/qlaunch/kernels/circuit"
)

type builder struct{ c *circuit.Circuit }

func (b *builder) one(g circuit.Gate, q int, p ...float64) {
	op, err := circuit.NewOp(g, []int{q}, p...)
	if err != nil {
		panic(err)
	}
	b.c.Append(op)
}
func (b *builder) cx(a, t int) { b.c.Append(circuit.CNOTOp(a, t)) }

// zz appends exp(−iθ/2 Z⊗Z) as cx, rz, cx.
func (b *builder) zz(a, c int, theta float64) {
	b.cx(a, c)
	b.one(circuit.RZ, c, theta)
	b.cx(a, c)
}

// xx appends exp(−iθ/2 X⊗X) as h on both, zz, h on both.
func (b *builder) xx(a, c int, theta float64) {
	b.one(circuit.H, a)
	b.one(circuit.H, c)
	b.zz(a, c, theta)
	b.one(circuit.H, a)
	b.one(circuit.H, c)
}

// yy appends exp(−iθ/2 Y⊗Y) with rx(π/2) basis changes.
func (b *builder) yy(a, c int, theta float64) {
	b.one(circuit.RX, a, math.Pi/2)
	b.one(circuit.RX, c, math.Pi/2)
	b.zz(a, c, theta)
	b.one(circuit.RX, a, -math.Pi/2)
	b.one(circuit.RX, c, -math.Pi/2)
}

// ccx appends qelib1.inc's six-CNOT Toffoli.
func (b *builder) ccx(a, c, t int) {
	b.one(circuit.H, t)
	b.cx(c, t)
	b.one(circuit.Tdg, t)
	b.cx(a, t)
	b.one(circuit.T, t)
	b.cx(c, t)
	b.one(circuit.Tdg, t)
	b.cx(a, t)
	b.one(circuit.T, c)
	b.one(circuit.T, t)
	b.one(circuit.H, t)
	b.cx(a, c)
	b.one(circuit.T, a)
	b.one(circuit.Tdg, c)
	b.cx(a, c)
}

// cphase appends the controlled phase cu1(λ) with two CNOTs.
func (b *builder) cphase(a, t int, lambda float64) {
	b.one(circuit.U1, a, lambda/2)
	b.cx(a, t)
	b.one(circuit.U1, t, -lambda/2)
	b.cx(a, t)
	b.one(circuit.U1, t, lambda/2)
}

func newBuilder(n int) *builder { return &builder{c: circuit.New(n)} }

const dt = 0.1

// Heisenberg returns steps Trotter steps of the XXX chain on n qubits.
func Heisenberg(n, steps int) *circuit.Circuit {
	b := newBuilder(n)
	for q := 0; q < n; q += 2 {
		b.one(circuit.X, q) // a Néel state
	}
	for range steps {
		for _, parity := range []int{0, 1} {
			for q := parity; q+1 < n; q += 2 {
				b.xx(q, q+1, 2*dt)
				b.yy(q, q+1, 2*dt)
				b.zz(q, q+1, 2*dt)
			}
		}
	}
	return b.c
}

// TFIM returns steps Trotter steps of the transverse-field Ising chain.
func TFIM(n, steps int) *circuit.Circuit {
	b := newBuilder(n)
	for range steps {
		for q := 0; q+1 < n; q++ {
			b.zz(q, q+1, 2*dt)
		}
		for q := range n {
			b.one(circuit.RX, q, 2*dt*0.7)
		}
	}
	return b.c
}

// Hubbard returns steps Trotter steps of the 1D Fermi–Hubbard chain of
// sites sites: spin up on qubits 0…sites−1, spin down on sites…2·sites−1.
func Hubbard(sites, steps int) *circuit.Circuit {
	b := newBuilder(2 * sites)
	for range steps {
		for spin := range 2 {
			off := spin * sites
			for s := 0; s+1 < sites; s++ {
				b.xx(off+s, off+s+1, dt)
				b.yy(off+s, off+s+1, dt)
			}
		}
		for s := range sites {
			b.zz(s, s+sites, 2*dt)
		}
	}
	return b.c
}

// QAOA returns layers of MaxCut QAOA on a ring of n qubits.
func QAOA(n, layers int) *circuit.Circuit {
	b := newBuilder(n)
	for q := range n {
		b.one(circuit.H, q)
	}
	for l := range layers {
		gamma, beta := 0.4+0.1*float64(l), 0.3
		for q := range n {
			if q+1 < n || n > 2 {
				b.zz(q, (q+1)%n, gamma)
			}
		}
		for q := range n {
			b.one(circuit.RX, q, 2*beta)
		}
	}
	return b.c
}

// QFT returns the quantum Fourier transform on n qubits.
func QFT(n int) *circuit.Circuit {
	b := newBuilder(n)
	for j := range n {
		b.one(circuit.H, j)
		for k := j + 1; k < n; k++ {
			b.cphase(k, j, math.Pi/float64(int(1)<<(k-j)))
		}
	}
	for j := 0; j < n/2; j++ {
		b.cx(j, n-1-j)
		b.cx(n-1-j, j)
		b.cx(j, n-1-j)
	}
	return b.c
}

// Adder returns the Cuccaro ripple-carry adder of two bits-bit numbers:
// qubit 0 the carry in, then a_i, b_i interleaved, the last the carry out.
func Adder(bits int) *circuit.Circuit {
	n := 2*bits + 2
	b := newBuilder(n)
	a := func(i int) int { return 1 + 2*i }
	bb := func(i int) int { return 2 + 2*i }
	for i := range bits {
		if i%2 == 0 {
			b.one(circuit.X, a(i))
		}
		b.one(circuit.X, bb(i))
	}
	maj := func(c, y, x int) { b.cx(x, y); b.cx(x, c); b.ccx(c, y, x) }
	uma := func(c, y, x int) { b.ccx(c, y, x); b.cx(x, c); b.cx(c, y) }
	maj(0, bb(0), a(0))
	for i := 1; i < bits; i++ {
		maj(a(i-1), bb(i), a(i))
	}
	b.cx(a(bits-1), n-1)
	for i := bits - 1; i >= 1; i-- {
		uma(a(i-1), bb(i), a(i))
	}
	uma(0, bb(0), a(0))
	return b.c
}

// Grover returns iterations of Grover search for |1…1⟩ on n qubits, the
// multi-controlled Z by a ccx ladder on n−1 ancillas (qubits n…2n−2).
func Grover(n, iterations int) *circuit.Circuit {
	b := newBuilder(2*n - 1)
	mcz := func() {
		// Compute the AND of qubits 0…n−2 into the ancillas, apply a
		// controlled Z onto qubit n−1, uncompute.
		if n == 2 {
			b.one(circuit.H, 1)
			b.cx(0, 1)
			b.one(circuit.H, 1)
			return
		}
		b.ccx(0, 1, n)
		for i := 2; i < n-1; i++ {
			b.ccx(i, n+i-2, n+i-1)
		}
		last := n + n - 3
		b.one(circuit.H, n-1)
		b.cx(last, n-1)
		b.one(circuit.H, n-1)
		for i := n - 2; i >= 2; i-- {
			b.ccx(i, n+i-2, n+i-1)
		}
		b.ccx(0, 1, n)
	}
	for q := range n {
		b.one(circuit.H, q)
	}
	for range iterations {
		mcz() // the oracle marks |1…1⟩
		for q := range n {
			b.one(circuit.H, q)
			b.one(circuit.X, q)
		}
		mcz()
		for q := range n {
			b.one(circuit.X, q)
			b.one(circuit.H, q)
		}
	}
	return b.c
}

// Random returns gates random cx and u3 gates on n qubits.
func Random(n, gates int, seed uint64) *circuit.Circuit {
	rng := rand.New(rand.NewPCG(seed, 0xc1c))
	b := newBuilder(n)
	for range gates {
		if rng.IntN(2) == 0 {
			b.c.Append(circuit.U3Op(rng.IntN(n), rng.Float64()*2*math.Pi, rng.Float64()*2*math.Pi, rng.Float64()*2*math.Pi))
		} else {
			p := rng.Perm(n)
			b.cx(p[0], p[1])
		}
	}
	return b.c
}

// Names lists the forms Named accepts.
func Names() []string {
	return []string{"heisenberg:N:STEPS", "tfim:N:STEPS", "hubbard:SITES:STEPS", "qaoa:N:LAYERS", "qft:N",
		"adder:BITS", "grover:N:ITERATIONS", "random:N:GATES:SEED"}
}

// MaxQubits bounds the circuits Named makes.
const MaxQubits = 64

// Named returns the circuit called name (see Names).
func Named(name string) (*circuit.Circuit, error) {
	parts := strings.Split(name, ":")
	nums := make([]int, len(parts)-1)
	for i, p := range parts[1:] {
		v, err := strconv.Atoi(p)
		if err != nil || v < 1 || v > 100000 {
			return nil, fmt.Errorf("circuitgen: %q: %q is not a positive integer", name, p)
		}
		nums[i] = v
	}
	want := map[string]int{"heisenberg": 2, "tfim": 2, "hubbard": 2, "qaoa": 2, "qft": 1, "adder": 1, "grover": 2, "random": 3}
	k, ok := want[parts[0]]
	if !ok || len(nums) != k {
		return nil, fmt.Errorf("circuitgen: %q: want one of %s", name, strings.Join(Names(), ", "))
	}
	n := nums[0]
	qubits := map[string]int{"hubbard": 2 * n, "adder": 2*n + 2, "grover": 2*n - 1}[parts[0]]
	if qubits == 0 {
		qubits = n
	}
	if n < 2 || qubits > MaxQubits {
		return nil, fmt.Errorf("circuitgen: %q: %d qubits (2 to %d)", name, qubits, MaxQubits)
	}
	switch parts[0] {
	case "heisenberg":
		return Heisenberg(n, nums[1]), nil
	case "tfim":
		return TFIM(n, nums[1]), nil
	case "hubbard":
		return Hubbard(n, nums[1]), nil
	case "qaoa":
		return QAOA(n, nums[1]), nil
	case "qft":
		return QFT(n), nil
	case "adder":
		return Adder(n), nil
	case "grover":
		return Grover(n, nums[1]), nil
	}
	return Random(n, nums[1], uint64(nums[2])), nil
}
