package cli

import (
	"strings"
	"testing"
)

func TestEverySubcommandHasHelp(t *testing.T) {
	for _, c := range commands() {
		t.Run(c.name, func(t *testing.T) {
			code, stdout, stderr := runQlaunch(t, nil, c.name, "--help")
			if code != 0 {
				t.Fatalf("qlaunch %s --help: exit %d, stderr %q", c.name, code, stderr)
			}
			if !strings.Contains(stdout+stderr, "usage: qlaunch "+c.name) {
				t.Errorf("qlaunch %s --help printed no usage line:\n%s%s", c.name, stdout, stderr)
			}
		})
	}
}

func TestDispatchExitCodes(t *testing.T) {
	tests := []struct {
		args   []string
		code   int
		stdout string // substring
		stderr string // substring
	}{
		{args: nil, code: 2, stderr: "no subcommand given"},
		{args: []string{"help"}, code: 0, stdout: "subcommands:"},
		{args: []string{"--help"}, code: 0, stdout: "usage: qlaunch TOPOLOGY.toml"},
		{args: []string{"frobnicate"}, code: 2, stderr: `unknown subcommand "frobnicate"`},
		{args: []string{"hostlist", "expand", "n[3-1]"}, code: 2, stderr: "3-1"},
		{args: []string{"hostlist", "--no-such-flag"}, code: 2},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			code, stdout, stderr := runQlaunch(t, nil, tt.args...)
			if code != tt.code {
				t.Errorf("exit %d, want %d (stderr %q)", code, tt.code, stderr)
			}
			if !strings.Contains(stdout, tt.stdout) {
				t.Errorf("stdout %q does not contain %q", stdout, tt.stdout)
			}
			if !strings.Contains(stderr, tt.stderr) {
				t.Errorf("stderr %q does not contain %q", stderr, tt.stderr)
			}
		})
	}
}

func TestExitCodeMapping(t *testing.T) {
	if got := exitCode(nil); got != 0 {
		t.Errorf("exitCode(nil) = %d", got)
	}
	if got := exitCode(usagef("bad")); got != 2 {
		t.Errorf("exitCode(usage) = %d", got)
	}
	if got := exitCode(exitStatus(7)); got != 7 {
		t.Errorf("exitCode(exitStatus(7)) = %d", got)
	}
	if got := exitCode(errString("boom")); got != 1 {
		t.Errorf("exitCode(plain error) = %d", got)
	}
}

type errString string

func (e errString) Error() string { return string(e) }
