package cli

import (
	"bytes"
	"strings"
	"testing"
)

func TestHostlistCommand(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		stdin      string
		code       int
		stdout     string
		stderrHas  string
		stdoutHas  string
		stderrNone bool
	}{
		{name: "expand", args: []string{"expand", "n[1-3],gpu[01-02]"}, stdout: "n1\nn2\nn3\ngpu01\ngpu02\n", stderrNone: true},
		{name: "expand several", args: []string{"expand", "a[1-2]", "b1", "node[1-2]x"}, stdout: "a1\na2\nb1\nnode1x\nnode2x\n"},
		{name: "expand order of three groups", args: []string{"expand", "a[1-2]b[1-2]c[1-2]"},
			stdout: "a1b1c1\na1b1c2\na2b1c1\na2b1c2\na1b2c1\na1b2c2\na2b2c1\na2b2c2\n"},
		{name: "expand empty", args: []string{"expand", ""}, stdout: ""},
		{name: "expand stdin", args: []string{"expand"}, stdin: "n[1-2]\r\nm3\n", stdout: "n1\nn2\nm3\n"},
		{name: "expand invalid", args: []string{"expand", "n[1-2]", "n[3-1]"}, code: 2, stdout: "",
			stderrHas: `invalid hostlist "n[3-1]": "3-1" at offset 2: low bound 3 is above high bound 1`},
		{name: "expand unclosed", args: []string{"expand", "n[1-3"}, code: 2, stderrHas: `"[1-3" at offset 1: no ']' closes the '['`},
		{name: "expand too many", args: []string{"expand", "n[1-65536][1-65536]"}, code: 2, stderrHas: "more than 4194304"},
		{name: "expand range too big", args: []string{"expand", "n[0-65536]"}, code: 2, stderrHas: `"0-65536"`},
		{name: "compress", args: []string{"compress", "n1", "n2", "n3", "n5"}, stdout: "n[1-3,5]\n"},
		{name: "compress expression", args: []string{"compress", "n1,n2,n3,n5"}, stdout: "n[1-3,5]\n"},
		{name: "compress keeps order", args: []string{"compress", "n3", "n1", "n2", "n2"}, stdout: "n[3,1-2,2]\n"},
		{name: "compress sorted", args: []string{"compress", "--sorted", "n3", "n1", "n2", "n2"}, stdout: "n[1-2,2-3]\n"},
		{name: "compress unique", args: []string{"compress", "--unique", "n3", "n1", "n2", "n2"}, stdout: "n[1-3]\n"},
		{name: "compress stdin", args: []string{"compress"}, stdin: "rack1-n01\nrack1-n02\n\nrack2-n01\n", stdout: "rack1-n[01-02],rack2-n01\n"},
		{name: "compress stdin sorted", args: []string{"compress", "-sorted"}, stdin: "n10\nn9\n", stdout: "n[9-10]\n"},
		{name: "compress nothing", args: []string{"compress"}, stdin: "", stdout: "\n"},
		{name: "compress both flags", args: []string{"compress", "--sorted", "--unique", "n1"}, code: 2, stderrHas: "exclude each other"},
		{name: "compress invalid", args: []string{"compress", "n1", "x[a]"}, code: 2, stderrHas: `"a" at offset 2`},
		{name: "count", args: []string{"count", "n[1-1000][1-1000]"}, stdout: "1000000\n"},
		{name: "count sums", args: []string{"count", "n[1-3]", "m1,m1", ""}, stdout: "5\n"},
		{name: "count stdin", args: []string{"count"}, stdin: "a1\na2\na[3-4]\n", stdout: "4\n"},
		{name: "count invalid", args: []string{"count", "n[1,,3]"}, code: 2, stderrHas: "empty range element"},
		{name: "count huge", args: []string{"count", "n[1-65536][1-65536][1-65536][1-65536][1-65536]"}, code: 2, stderrHas: "too many hosts"},
		{name: "help", args: []string{"--help"}, stdoutHas: "expand|compress|count"},
		{name: "expand help", args: []string{"expand", "--help"}, stdoutHas: "usage: qlaunch hostlist expand"},
		{name: "compress help", args: []string{"compress", "--help"}, stdoutHas: "-unique"},
		{name: "count help", args: []string{"count", "-h"}, stdoutHas: "usage: qlaunch hostlist count"},
		{name: "no action", args: nil, code: 2, stderrHas: "no action given"},
		{name: "unknown action", args: []string{"shrink", "n1"}, code: 2, stderrHas: `unknown action "shrink"`},
		{name: "unknown flag", args: []string{"count", "--fast", "n1"}, code: 2, stderrHas: "-fast"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			e := &env{stdin: strings.NewReader(tt.stdin), stdout: &stdout, stderr: &stderr, getenv: func(string) string { return "" }}
			code := run(t.Context(), append([]string{"hostlist"}, tt.args...), e)
			if code != tt.code {
				t.Fatalf("exit %d; want %d\nstdout: %s\nstderr: %s", code, tt.code, stdout.String(), stderr.String())
			}
			if tt.stdoutHas == "" && stdout.String() != tt.stdout {
				t.Errorf("stdout %q; want %q", stdout.String(), tt.stdout)
			}
			if tt.stdoutHas != "" && !strings.Contains(stdout.String(), tt.stdoutHas) {
				t.Errorf("stdout %q does not contain %q", stdout.String(), tt.stdoutHas)
			}
			if !strings.Contains(stderr.String(), tt.stderrHas) {
				t.Errorf("stderr %q does not contain %q", stderr.String(), tt.stderrHas)
			}
			if (tt.stderrNone || tt.code == 0) && stderr.Len() != 0 {
				t.Errorf("stderr %q; want none", stderr.String())
			}
		})
	}
}
