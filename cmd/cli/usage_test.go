package cli

import (
	"bytes"
	"errors"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"

	"github.com/qlaunch/qlaunch/launcher/wire"
	"github.com/qlaunch/qlaunch/topology"
)

// TestUsageErrorsWrap checks that a usage error made from another error
// keeps it: errors.Is sees the cause through the usage error, the exit
// status is 2 and the message is the one usagef formats.
func TestUsageErrorsWrap(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing.pem")
	e := &env{stdin: strings.NewReader(""), stdout: new(bytes.Buffer), stderr: new(bytes.Buffer),
		getenv: func(string) string { return "" }}
	tests := []struct {
		name   string
		call   func() error
		causes []error
		msg    string
	}{
		{
			name: "tls CA file missing",
			call: func() error {
				_, _, err := (&tlsFlags{ca: missing}).load(e, nil)
				return err
			},
			causes: []error{fs.ErrNotExist, wire.ErrTLS},
			msg:    wire.ErrTLS.Error() + ": CA file: open " + missing + ": no such file or directory",
		},
		{
			name:   "submit input missing",
			call:   func() error { return cmdSubmit(t.Context(), e, []string{"--input", missing, "echo"}) },
			causes: []error{fs.ErrNotExist},
			msg:    "submit: open " + missing + ": no such file or directory",
		},
		{
			name: "bench startup topology missing",
			call: func() error {
				_, _, _, err := startupCommand(missing)
				return err
			},
			causes: []error{fs.ErrNotExist},
			msg:    "bench: startup: stat " + missing + ": no such file or directory (set --topology)",
		},
		{
			name:   "worker cpus syntax",
			call:   func() error { return cmdWorker(t.Context(), e, []string{"--cpus", "x", "4"}) },
			causes: []error{topology.ErrCPUListSyntax},
			msg:    `worker: --cpus: cpulist "x" at "x": ` + topology.ErrCPUListSyntax.Error(),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			var u usageError
			if !errors.As(err, &u) {
				t.Fatalf("error %v (%T) is not a usage error", err, err)
			}
			for _, c := range tt.causes {
				if !errors.Is(err, c) {
					t.Errorf("errors.Is(%v, %v) = false", err, c)
				}
			}
			if got := err.Error(); got != tt.msg {
				t.Errorf("message %q, want %q", got, tt.msg)
			}
			if got := exitCode(err); got != 2 {
				t.Errorf("exit status %d, want 2", got)
			}
		})
	}
}
