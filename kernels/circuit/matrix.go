package circuit

import (
	"fmt"
	"math"
	"math/cmplx"
	"math/rand/v2"
)

// Matrix is a dense square complex matrix of dimension Dim, row-major:
// element (r, c) is Data[r*Dim+c].
type Matrix struct {
	Dim  int
	Data []complex128
}

// NewMatrix returns the zero matrix of dimension dim.
func NewMatrix(dim int) Matrix {
	return Matrix{Dim: dim, Data: make([]complex128, dim*dim)}
}

// Identity returns the identity of dimension dim.
func Identity(dim int) Matrix {
	m := NewMatrix(dim)
	for i := range dim {
		m.Data[i*dim+i] = 1
	}
	return m
}

// At returns element (r, c).
func (m Matrix) At(r, c int) complex128 { return m.Data[r*m.Dim+c] }

// Set sets element (r, c).
func (m Matrix) Set(r, c int, v complex128) { m.Data[r*m.Dim+c] = v }

// Clone returns a deep copy of m.
func (m Matrix) Clone() Matrix {
	return Matrix{Dim: m.Dim, Data: append([]complex128(nil), m.Data...)}
}

// Qubits returns log2(Dim), or -1 when Dim is not a power of two.
func (m Matrix) Qubits() int {
	for n := 0; n < 31; n++ {
		if 1<<n == m.Dim {
			return n
		}
	}
	return -1
}

// Mul returns the product a·b.
func Mul(a, b Matrix) Matrix {
	n := a.Dim
	out := NewMatrix(n)
	for i := range n {
		row := out.Data[i*n : (i+1)*n]
		for k := range n {
			aik := a.Data[i*n+k]
			if aik == 0 {
				continue
			}
			brow := b.Data[k*n : (k+1)*n]
			for j := range n {
				row[j] += aik * brow[j]
			}
		}
	}
	return out
}

// Dagger returns the conjugate transpose of m.
func (m Matrix) Dagger() Matrix {
	n := m.Dim
	out := NewMatrix(n)
	for i := range n {
		for j := range n {
			out.Data[j*n+i] = cmplx.Conj(m.Data[i*n+j])
		}
	}
	return out
}

// Validate reports whether m is a unitary on whole qubits: Dim a power of
// two no larger than 2^MaxUnitaryQubits, finite entries, and U†U within
// tol of the identity in every entry.
func (m Matrix) Validate(tol float64) error {
	if m.Dim < 1 || m.Qubits() < 0 {
		return fmt.Errorf("circuit: matrix dimension %d is not a power of two: %w", m.Dim, ErrNotUnitary)
	}
	if m.Qubits() > MaxUnitaryQubits {
		return fmt.Errorf("circuit: %d-qubit matrix: %w", m.Qubits(), ErrTooLarge)
	}
	if len(m.Data) != m.Dim*m.Dim {
		return fmt.Errorf("circuit: matrix of dimension %d has %d entries: %w", m.Dim, len(m.Data), ErrNotUnitary)
	}
	for _, v := range m.Data {
		if math.IsNaN(real(v)) || math.IsNaN(imag(v)) || math.IsInf(real(v), 0) || math.IsInf(imag(v), 0) {
			return fmt.Errorf("circuit: matrix has a non-finite entry: %w", ErrNotUnitary)
		}
	}
	p := Mul(m.Dagger(), m)
	for i := range m.Dim {
		for j := range m.Dim {
			want := complex128(0)
			if i == j {
				want = 1
			}
			if cmplx.Abs(p.Data[i*m.Dim+j]-want) > tol {
				return fmt.Errorf("circuit: U†U differs from the identity at (%d, %d) by %.3g: %w",
					i, j, cmplx.Abs(p.Data[i*m.Dim+j]-want), ErrNotUnitary)
			}
		}
	}
	return nil
}

// Distance returns the Hilbert–Schmidt cost 1 − |Tr(U†V)|/N between two
// unitaries of dimension N: 0 when they are equal up to a global phase. It
// panics when the dimensions differ.
func Distance(u, v Matrix) float64 {
	if u.Dim != v.Dim || len(u.Data) != len(v.Data) {
		panic(fmt.Sprintf("circuit: distance between dimensions %d and %d", u.Dim, v.Dim))
	}
	var tr complex128
	for i, x := range u.Data {
		tr += cmplx.Conj(x) * v.Data[i]
	}
	d := 1 - cmplx.Abs(tr)/float64(u.Dim)
	if d < 0 {
		return 0
	}
	return d
}

// RandomUnitary returns a unitary on qubits qubits drawn from the Haar
// measure with rng (Gram–Schmidt on a complex Gaussian matrix).
func RandomUnitary(qubits int, rng *rand.Rand) Matrix {
	n := 1 << qubits
	m := NewMatrix(n)
	for i := range m.Data {
		m.Data[i] = complex(rng.NormFloat64(), rng.NormFloat64())
	}
	// Orthonormalise the columns (modified Gram–Schmidt); the Gaussian
	// columns make the result Haar-distributed.
	for j := range n {
		for k := range j {
			var dot complex128
			for i := range n {
				dot += cmplx.Conj(m.Data[i*n+k]) * m.Data[i*n+j]
			}
			for i := range n {
				m.Data[i*n+j] -= dot * m.Data[i*n+k]
			}
		}
		var norm float64
		for i := range n {
			v := m.Data[i*n+j]
			norm += real(v)*real(v) + imag(v)*imag(v)
		}
		s := complex(1/math.Sqrt(norm), 0)
		for i := range n {
			m.Data[i*n+j] *= s
		}
	}
	return m
}
