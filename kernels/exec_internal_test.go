package kernels

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
)

func TestExecOutputLimit(t *testing.T) {
	const limit = 1000
	for _, c := range []struct {
		name    string
		args    []string
		wantLen int
		tooBig  bool
	}{
		{"under", []string{"head", "-c", "999", "/dev/zero"}, 999, false},
		{"at", []string{"head", "-c", "1000", "/dev/zero"}, 1000, false},
		{"over", []string{"head", "-c", "1001", "/dev/zero"}, 0, true},
		{"endless", []string{"yes"}, 0, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			out, err := execKernel(limit, nil)(t.Context(), nil, c.args, nil)
			if c.tooBig {
				if !errors.Is(err, ErrExecOutputTooLarge) {
					t.Errorf("got %d bytes, %v; want ErrExecOutputTooLarge", len(out), err)
				}
				return
			}
			if err != nil || len(out) != c.wantLen {
				t.Errorf("got %d bytes, %v; want %d", len(out), err, c.wantLen)
			}
		})
	}
}

func TestTailBuffer(t *testing.T) {
	in := make([]byte, 1000)
	for i := range in {
		in[i] = byte('a' + i%26)
	}
	for _, chunk := range []int{1, 7, 10, 11, 33, 999, 1000} {
		t.Run(fmt.Sprintf("chunk=%d", chunk), func(t *testing.T) {
			tb := tailBuffer{max: 10}
			for p := in; len(p) > 0; {
				n := min(chunk, len(p))
				if w, err := tb.Write(p[:n]); w != n || err != nil {
					t.Fatalf("Write: %d, %v", w, err)
				}
				p = p[n:]
			}
			if got := tb.bytes(); !bytes.Equal(got, in[len(in)-10:]) {
				t.Errorf("tail %q, want %q", got, in[len(in)-10:])
			}
		})
	}
	var tb tailBuffer
	tb.max = 10
	tb.Write([]byte("abc"))
	if got := tb.bytes(); string(got) != "abc" {
		t.Errorf("short tail %q, want abc", got)
	}
}
