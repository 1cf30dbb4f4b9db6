package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestCustomKernelBinary builds the example and runs its kernel on a real
// runtime started by the example binary itself (qlaunch run: a server and
// worker-rank processes of that binary): one task, a task mapping child
// tasks, bad arguments (exit 2), and the listing and batch script that name
// the binary.
func TestCustomKernelBinary(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "wc")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	topo, err := filepath.Abs("../../configs/local.toml")
	if err != nil {
		t.Fatal(err)
	}
	input := filepath.Join(dir, "input.txt")
	if err := os.WriteFile(input, []byte("one two three\nfour  five\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	env := []string{"QLAUNCH_ADDRESS_FILE=" + filepath.Join(dir, "addr"), "QLAUNCH_SECRET_FILE=", "QLAUNCH_ADDR="}
	script := `"$0" submit --input "$1" wordcount; "$0" submit --input "$1" wordcount 4; "$0" submit wordcount x; echo "rc=$?"`
	code, stdout, stderr := runBin(t, bin, env, "run", topo, "--", "sh", "-c", script, bin, input)
	if code != 0 {
		t.Fatalf("wc run: exit %d\n%s", code, stderr)
	}
	if want := "5\n20\nrc=2\n"; stdout != want {
		t.Errorf("stdout %q, want %q; stderr:\n%s", stdout, want, stderr)
	}
	if want := `qlaunch: wordcount: want one positive N, got ["x"] (usage: wordcount [N])`; !strings.Contains(stderr, want) {
		t.Errorf("stderr lacks %q:\n%s", want, stderr)
	}

	code, stdout, _ = runBin(t, bin, nil, "kernels")
	if code != 0 || !strings.Contains(stdout, "wordcount [N]") || !strings.Contains(stdout, "fanout N DEPTH") {
		t.Errorf("wc kernels: exit %d, want wordcount and the stock kernels:\n%s", code, stdout)
	}
	cpu, _ := filepath.Abs("../../configs/slurm-cpu.toml")
	code, stdout, stderr = runBin(t, bin, nil, "script", "slurm", cpu, "--nodes", "2", "--qlaunch", bin, "--", bin, "submit", "wordcount", "3")
	if code != 0 || !strings.Contains(stdout, "QLAUNCH="+bin+"\n") {
		t.Errorf("wc script slurm --qlaunch %s: exit %d, the script does not start the binary:\n%s%s", bin, code, stdout, stderr)
	}
}

func runBin(t *testing.T, bin string, env []string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("%s %v: %v", bin, args, err)
	}
	return code, out.String(), errb.String()
}
