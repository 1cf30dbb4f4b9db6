package cli

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/qlaunch/qlaunch/kernels"
)

// TestKernelsCommand checks that qlaunch kernels lists every kernel of the
// binary's registry, its own ones included, with its usage line and what
// it does.
func TestKernelsCommand(t *testing.T) {
	mine := kernels.Kernel{Name: "mine", Usage: "A [B]", Doc: "does mine",
		Func: func(context.Context, kernels.Runtime, []string, []byte) ([]byte, error) { return nil, nil }}
	reg, err := Registry(mine)
	if err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	e := &env{stdin: strings.NewReader(""), stdout: &out, stderr: &errb, getenv: func(string) string { return "" }, reg: reg}
	if code := run(t.Context(), []string{"kernels"}, e); code != 0 {
		t.Fatalf("qlaunch kernels: exit %d, stderr %q", code, errb.String())
	}
	lines := strings.Split(out.String(), "\n")
	for _, k := range reg.Kernels() {
		found := false
		for _, l := range lines {
			if strings.HasPrefix(l, k.Synopsis()+" ") && strings.HasSuffix(l, k.Doc) {
				found = true
			}
		}
		if !found {
			t.Errorf("no line for %q (%q) in:\n%s", k.Synopsis(), k.Doc, out.String())
		}
	}
	if !strings.Contains(out.String(), "mine A [B]") || !strings.Contains(out.String(), "fanout N DEPTH") {
		t.Errorf("own or built-in kernel missing:\n%s", out.String())
	}
	if code, _, stderr := runQlaunch(t, nil, "kernels", "x"); code != 2 || !strings.Contains(stderr, "unexpected arguments") {
		t.Errorf("qlaunch kernels x: exit %d, %q", code, stderr)
	}
	if code, stdout, _ := runQlaunch(t, nil, "submit", "--help"); code != 0 || !strings.Contains(stdout, `"qlaunch kernels" lists the kernels`) {
		t.Errorf("submit --help does not point to qlaunch kernels: exit %d\n%s", code, stdout)
	}
}

// TestSubmitKernelErrors runs qlaunch submit under qlaunch run (real
// processes): an unknown kernel is bad input (exit 2) and the error lists
// the kernels known; so are a kernel's bad arguments, with its usage line;
// a kernel that fails is exit 1.
func TestSubmitKernelErrors(t *testing.T) {
	topo, err := filepath.Abs("../../configs/local.toml")
	if err != nil {
		t.Fatal(err)
	}
	env := []string{"QLAUNCH_ADDRESS_FILE=" + filepath.Join(t.TempDir(), "addr"), "QLAUNCH_SECRET_FILE=", "QLAUNCH_ADDR="}
	script := `"$0" submit nosuch; echo "rc=$?"; "$0" submit fanout x; echo "rc=$?"; "$0" submit fail boom; echo "rc=$?"`
	r := e2eRun(t, env, "", "run", topo, "--", "sh", "-c", script, qlaunchBin)
	if r.code != 0 {
		t.Fatalf("qlaunch run: %+v", r)
	}
	if want := "rc=2\nrc=2\nrc=1\n"; r.stdout != want {
		t.Errorf("exit statuses %q, want %q (stderr %s)", r.stdout, want, r.stderr)
	}
	reg, _ := Registry()
	for _, want := range []string{
		`qlaunch: unknown kernel "nosuch": the runtime has no kernel of that name; this qlaunch knows ` + strings.Join(reg.Names(), ", "),
		"qlaunch: fanout: takes 2 arguments, got 1 (usage: fanout N DEPTH)\n",
		"qlaunch: boom (rank 1, host ",
	} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, r.stderr)
		}
	}
}
