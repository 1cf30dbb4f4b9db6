package kernels_test

import (
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/qlaunch/qlaunch/kernels"
)

// TestExecStartError checks that a command that cannot be started fails
// with the same *ExecStartError, message included, whether it runs
// directly or under the exec guard.
func TestExecStartError(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	missing := filepath.Join(dir, "missing")
	plain := write("plain", "echo never\n", 0o644)
	garbage := write("garbage", "\x01\x02 not a program\n", 0o755)
	noInterp := write("no-interp", "#!"+filepath.Join(dir, "no-such-interpreter")+"\necho never\n", 0o755)
	write("in-path-plain", "echo never\n", 0o644)
	forModes(t, func(t *testing.T, m execMode) {
		for _, c := range []struct {
			name  string
			cmd   string
			path  string // a PATH to run with; "" keeps this process's
			is    error  // a sentinel errors.Is must find
			errno syscall.Errno
			msg   string
		}{
			{"not-found", "qlaunch-test-no-such-command", "", exec.ErrNotFound, 0,
				`exec qlaunch-test-no-such-command: exec: "qlaunch-test-no-such-command": executable file not found in $PATH`},
			{"not-executable-in-path", "in-path-plain", dir, exec.ErrNotFound, 0,
				`exec in-path-plain: exec: "in-path-plain": executable file not found in $PATH`},
			{"no-such-file", missing, "", fs.ErrNotExist, syscall.ENOENT,
				"exec " + missing + ": fork/exec " + missing + ": no such file or directory"},
			{"not-executable", plain, "", fs.ErrPermission, syscall.EACCES,
				"exec " + plain + ": fork/exec " + plain + ": permission denied"},
			{"bad-format", garbage, "", syscall.ENOEXEC, syscall.ENOEXEC,
				"exec " + garbage + ": fork/exec " + garbage + ": exec format error"},
			{"no-interpreter", noInterp, "", fs.ErrNotExist, syscall.ENOENT,
				"exec " + noInterp + ": fork/exec " + noInterp + ": no such file or directory"},
		} {
			t.Run(c.name, func(t *testing.T) {
				if c.path != "" {
					t.Setenv("PATH", c.path)
				}
				out, err := m.run(t, t.Context(), nil, "--", c.cmd)
				var se *kernels.ExecStartError
				if !errors.As(err, &se) {
					t.Fatalf("got %q, %v (%T); want an *ExecStartError", out, err, err)
				}
				if se.Cmd != c.cmd || se.StderrTail != "" {
					t.Errorf("Cmd %q, StderrTail %q; want %q, none", se.Cmd, se.StderrTail, c.cmd)
				}
				if !errors.Is(err, c.is) {
					t.Errorf("errors.Is(%v, %v) = false", err, c.is)
				}
				if c.errno != 0 {
					var pe *fs.PathError
					if !errors.As(err, &pe) || *pe != (fs.PathError{Op: "fork/exec", Path: c.cmd, Err: c.errno}) {
						t.Errorf("got %#v, want a *fs.PathError fork/exec %s: %v", pe, c.cmd, c.errno)
					}
				}
				if err.Error() != c.msg {
					t.Errorf("message %q\nwant    %q", err, c.msg)
				}
			})
		}
	})
}
