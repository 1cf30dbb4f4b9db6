package circuit

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
)

// MarshalJSON encodes m as rows of [re, im] pairs:
// [[[re, im], …], …], with floats in their shortest exact form.
func (m Matrix) MarshalJSON() ([]byte, error) {
	b := make([]byte, 0, 2+len(m.Data)*24)
	b = append(b, '[')
	for r := range m.Dim {
		if r > 0 {
			b = append(b, ',')
		}
		b = append(b, '[')
		for c := range m.Dim {
			if c > 0 {
				b = append(b, ',')
			}
			v := m.Data[r*m.Dim+c]
			if math.IsNaN(real(v)) || math.IsNaN(imag(v)) || math.IsInf(real(v), 0) || math.IsInf(imag(v), 0) {
				return nil, fmt.Errorf("circuit: matrix entry (%d, %d) is not finite: %w", r, c, ErrNotUnitary)
			}
			b = append(b, '[')
			b = strconv.AppendFloat(b, real(v), 'g', -1, 64)
			b = append(b, ',')
			b = strconv.AppendFloat(b, imag(v), 'g', -1, 64)
			b = append(b, ']')
		}
		b = append(b, ']')
	}
	return append(b, ']'), nil
}

// UnmarshalJSON decodes the form MarshalJSON writes. The matrix must be
// square with at most 2^MaxUnitaryQubits rows; unitarity is not checked
// (see Validate).
func (m *Matrix) UnmarshalJSON(b []byte) error {
	var rows [][][2]float64
	if err := json.Unmarshal(b, &rows); err != nil {
		return fmt.Errorf("circuit: matrix: %w", err)
	}
	n := len(rows)
	if n > 1<<MaxUnitaryQubits {
		return fmt.Errorf("circuit: matrix of %d rows: %w", n, ErrTooLarge)
	}
	out := NewMatrix(n)
	for r, row := range rows {
		if len(row) != n {
			return fmt.Errorf("circuit: matrix row %d has %d entries, want %d: %w", r, len(row), n, ErrNotUnitary)
		}
		for c, v := range row {
			out.Data[r*n+c] = complex(v[0], v[1])
		}
	}
	*m = out
	return nil
}
