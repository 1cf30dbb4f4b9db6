package circuit

import (
	"bytes"
	"slices"
	"testing"
)

// FuzzMatrixJSON decodes untrusted matrices (a synthesis request's target
// unitary): a decoded matrix is square, within the size limit, and writes
// back to JSON that decodes to the same entries, bit for bit.
func FuzzMatrixJSON(f *testing.F) {
	for _, s := range []string{
		`[[[0.1,1],[-2e-300,0]],[[0,0],[3.141592653589793,-0.5]]]`,
		`[]`, `[[[1,0]]]`, `[[[1,0]],[[0,1]]]`, `[[1,2]]`, `{}`, `[[[1e309,0]]]`, `[[[-0,0]]]`, `null`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var m Matrix
		if err := m.UnmarshalJSON(b); err != nil {
			return
		}
		if m.Dim > 1<<MaxUnitaryQubits || len(m.Data) != m.Dim*m.Dim {
			t.Fatalf("UnmarshalJSON(%q): %d×%d matrix with %d entries", b, m.Dim, m.Dim, len(m.Data))
		}
		out, err := m.MarshalJSON()
		if err != nil {
			t.Fatalf("MarshalJSON of a decoded matrix: %v", err)
		}
		var back Matrix
		if err := back.UnmarshalJSON(out); err != nil {
			t.Fatalf("UnmarshalJSON(%s): %v", out, err)
		}
		if back.Dim != m.Dim || !slices.Equal(back.Data, m.Data) {
			t.Fatalf("round trip of %q through %s differs", b, out)
		}
		again, _ := back.MarshalJSON()
		if !bytes.Equal(again, out) {
			t.Fatalf("MarshalJSON is not stable: %s then %s", out, again)
		}
	})
}
