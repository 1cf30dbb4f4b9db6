package jobscript

import (
	"os/exec"
	"strings"
	"testing"
)

func TestQuote(t *testing.T) {
	for in, want := range map[string]string{
		"":          "''",
		"plain-1.x": "plain-1.x",
		"a b":       "'a b'",
		"it's":      `'it'\''s'`,
		"$HOME":     "'$HOME'",
		"x=1,y:2":   "x=1,y:2",
	} {
		if got := Quote(in); got != want {
			t.Errorf("Quote(%q) = %s, want %s", in, got, want)
		}
	}
	if got, want := Join([]string{"sh", "-c", "echo $X; exit 3"}), `sh -c 'echo $X; exit 3'`; got != want {
		t.Errorf("Join = %s, want %s", got, want)
	}
}

// TestJoinFirstWord: the first word is the command's name even when bash
// would read it bare as an assignment, a reserved word or a job spec; the
// other words with the same characters stay bare.
func TestJoinFirstWord(t *testing.T) {
	for _, c := range []struct {
		words []string
		want  string
	}{
		{[]string{"A=1", "B=2"}, "'A=1' B=2"},
		{[]string{"time", "x"}, "'time' x"},
		{[]string{"if"}, "'if'"},
		{[]string{"%1"}, "'%1'"},
		{[]string{"./run", "x=1"}, "./run x=1"},
		{[]string{"it's", "if"}, `'it'\''s' if`},
		{nil, ""},
	} {
		if got := Join(c.words); got != c.want {
			t.Errorf("Join(%q) = %s, want %s", c.words, got, c.want)
		}
	}
	// bash runs the quoted first word as a command, which is not found.
	out, err := exec.Command("bash", "-c", Join([]string{"A=1", "B=2"})+"; echo \"status $?\"").CombinedOutput()
	if err != nil || !strings.HasSuffix(string(out), "status 127\n") {
		t.Fatalf("bash: %v\n%s", err, out)
	}
}

func TestCheckWord(t *testing.T) {
	for _, c := range []struct {
		value string
		want  string
	}{
		{"proj-42", ""},
		{"", ""},
		{"a b", `account "a b": no spaces, quotes or shell characters allowed`},
		{"x$y", `account "x$y": no spaces, quotes or shell characters allowed`},
		{"it's", `account "it's": no spaces, quotes or shell characters allowed`},
	} {
		got := ""
		if err := CheckWord("account", c.value); err != nil {
			got = err.Error()
		}
		if got != c.want {
			t.Errorf("CheckWord(%q) = %q, want %q", c.value, got, c.want)
		}
	}
}

// TestBody checks the parts of the body its fields fill in (the
// schedulers' golden scripts check the whole) and that bash parses it.
func TestBody(t *testing.T) {
	var b strings.Builder
	Body{
		Topology: "my topo.toml", Client: []string{"true"},
		Setup: []string{"cd /tmp"}, Launcher: "mylauncher", JobDir: `"/jobs"`, JobID: "${JOB}",
		Interrupt:  []string{"kill -INT \"$runtime_pid\""},
		ExtraFiles: []string{`"${HOSTS:-}"`},
		Start:      []string{"sleep 1 &"},
	}.Write(&b)
	got := b.String()
	for _, want := range []string{
		"set -euo pipefail\ncd /tmp\n\nQLAUNCH=qlaunch\nTOPOLOGY='my topo.toml'\n",
		"which mylauncher passes on.\njobdir=\"/jobs\"\n",
		"export QLAUNCH_ADDRESS_FILE=\"$jobdir/job-${JOB}.addr\"\n",
		"  if [ -n \"$runtime_pid\" ]; then\n    kill -INT \"$runtime_pid\"\n    runtime_status=0\n",
		"  rm -f \"${QLAUNCH_ADDRESS_FILE:-}\" \"${QLAUNCH_SECRET_FILE:-}\" \"${QLAUNCH_ERROR_FILE:-}\" \"${HOSTS:-}\"\n",
		"export QLAUNCH_ERROR_FILE=\"$jobdir/job-${JOB}.errors\"\n",
		"\nsleep 1 &\nruntime_pid=$!\n",
		"--timeout 10m --pid \"$runtime_pid\"\n",
		"\ntrue <&0 &\nclient_pid=$!\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("body lacks %q:\n%s", want, got)
		}
	}
	cmd := exec.Command("bash", "-n")
	cmd.Stdin = strings.NewReader(got)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("bash -n: %v\n%s", err, out)
	}
}
