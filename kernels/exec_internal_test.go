package kernels

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"syscall"
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

func TestGuardedStartFailure(t *testing.T) {
	enoexec := &fs.PathError{Op: "fork/exec", Path: "/bin/x", Err: syscall.ENOEXEC}
	for _, c := range []struct {
		name   string
		status string
		tail   string
		want   error // the ExecStartError's Err
		msg    string
	}{
		{"errno", guardStartStatus(enoexec), "", enoexec,
			"exec x: fork/exec /bin/x: exec format error"},
		{"errno-with-tail", guardStartStatus(enoexec), "guard: oops\n", enoexec,
			"exec x: fork/exec /bin/x: exec format error: guard: oops"},
		{"no-errno", guardStartStatus(errors.New("exec: no command")), "", errors.New("exec: no command"),
			"exec x: exec: no command"},
		{"unnumbered", guardStatusStart + "something odd", "", errors.New("something odd"),
			"exec x: something odd"},
	} {
		t.Run(c.name, func(t *testing.T) {
			out, err := guardedResult("x", "/bin/x", c.status, nil, []byte(c.tail))
			var se *ExecStartError
			if !errors.As(err, &se) {
				t.Fatalf("got %q, %v; want an *ExecStartError", out, err)
			}
			if se.Cmd != "x" || se.StderrTail != c.tail || se.Err.Error() != c.want.Error() {
				t.Errorf("got %+v, want Cmd x, StderrTail %q, Err %v", *se, c.tail, c.want)
			}
			if pe, ok := c.want.(*fs.PathError); ok {
				if got, ok := se.Err.(*fs.PathError); !ok || *got != *pe {
					t.Errorf("Err %#v, want %#v", se.Err, pe)
				}
				if !errors.Is(err, pe.Err) {
					t.Errorf("errors.Is(%v, %v) = false", err, pe.Err)
				}
			}
			if err.Error() != c.msg {
				t.Errorf("message %q, want %q", err, c.msg)
			}
		})
	}
}
