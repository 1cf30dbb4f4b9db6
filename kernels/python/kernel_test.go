package python_test

import (
	"context"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/qlaunch/qlaunch/kernels"
	"github.com/qlaunch/qlaunch/kernels/kerneltest"
	"github.com/qlaunch/qlaunch/kernels/python"
)

// These tests run the kernel in process (kerneltest's runtime, so the race
// detector sees the kernel's goroutines) with real executors. Payloads are
// built by the Python package, as a client would.

// payloads returns, for each "CALL|VALUE" (CALL calls a function of
// python/tests/helpers.py, "nested(5, 2)"; VALUE is a Python expression,
// possibly empty), the task payload of CALL and the pickle of VALUE.
func payloads(t *testing.T, pythonPath string, exprs ...string) (pls, want [][]byte) {
	t.Helper()
	checkPython(t)
	script := `import sys
from qlaunch import _task
import helpers
for e in sys.argv[1:]:
    call, _, value = e.partition("|")
    name, _, rest = call.partition("(")
    args = eval("(" + rest[:-1] + ",)") if rest[:-1] else ()
    print(_task.payload(_task.encode_fn(getattr(helpers, name)), args, {}).hex())
    print(_task.dumps(eval(value)).hex() if value else "-")
`
	cmd := exec.Command(python3, append([]string{"-c", script}, exprs...)...)
	cmd.Env = append(os.Environ(), "PYTHONPATH="+pythonPath)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("building payloads: %v", err)
	}
	lines := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
	if len(lines) != 2*len(exprs) {
		t.Fatalf("building payloads: %d lines for %d expressions", len(lines), len(exprs))
	}
	for i := 0; i < len(lines); i += 2 {
		p, err1 := hex.DecodeString(lines[i])
		w, err2 := hex.DecodeString(strings.TrimPrefix(lines[i+1], "-"))
		if err1 != nil || err2 != nil {
			t.Fatalf("building payloads: bad hex")
		}
		pls, want = append(pls, p), append(want, w)
	}
	return pls, want
}

func newPool(t *testing.T) (*python.Pool, string) {
	t.Helper()
	root := repoRoot(t)
	path := filepath.Join(root, "python") + string(os.PathListSeparator) + filepath.Join(root, "python", "tests")
	p := python.NewPool(python.Options{
		Python:  python3,
		Environ: func() []string { return append(os.Environ(), "PYTHONPATH="+path) },
	})
	t.Cleanup(func() {
		p.Close()
		if pids := p.Executors(); len(pids) != 0 {
			t.Errorf("executors left after Close: %v", pids)
		}
	})
	return p, path
}

func TestKernelInProcess(t *testing.T) {
	p, path := newPool(t)
	reg, err := kernels.NewRegistry(p.Kernel())
	if err != nil {
		t.Fatal(err)
	}
	pls, want := payloads(t, path, "square(12)|144", "nested(6, 2)|36", "fail('no')|", "unpicklable()|")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for _, slots := range []int{1, 2} {
		rt := kerneltest.New(reg, slots)
		for i, expr := range []string{"square", "nested"} {
			out, err := rt.Run(ctx, kernels.Task{Kernel: python.Name, Args: []string{path}, Payload: pls[i]})
			if err != nil || string(out) != string(want[i]) {
				t.Errorf("%d slots: %s: got %x, %v; want %x", slots, expr, out, err, want[i])
			}
		}
		_, err := rt.Run(ctx, kernels.Task{Kernel: python.Name, Args: []string{path}, Payload: pls[2]})
		if err == nil || !strings.Contains(err.Error(), "ValueError: no") || !strings.Contains(err.Error(), "Traceback") {
			t.Errorf("%d slots: fail: got %v, want the remote traceback", slots, err)
		}
		_, err = rt.Run(ctx, kernels.Task{Kernel: python.Name, Args: []string{path}, Payload: pls[3]})
		if err == nil || !strings.Contains(err.Error(), "could not be pickled") {
			t.Errorf("%d slots: unpicklable: got %v", slots, err)
		}
	}
	if n := len(p.Executors()); n < 1 || n > 2 {
		t.Errorf("%d executors for at most 2 slots", n)
	}
}

func TestKernelExecutorKilled(t *testing.T) {
	p, path := newPool(t)
	reg, err := kernels.NewRegistry(p.Kernel())
	if err != nil {
		t.Fatal(err)
	}
	pls, want := payloads(t, path, "die()|", "square(3)|9")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rt := kerneltest.New(reg, 1)
	if _, err := rt.Run(ctx, kernels.Task{Kernel: python.Name, Args: []string{path}, Payload: pls[1]}); err != nil {
		t.Fatal(err)
	}
	before := p.Executors()
	_, err = rt.Run(ctx, kernels.Task{Kernel: python.Name, Args: []string{path}, Payload: pls[0]})
	if err == nil || !strings.Contains(err.Error(), "killed by signal 9") {
		t.Fatalf("a task whose executor was killed: got %v, want killed by signal 9", err)
	}
	out, err := rt.Run(ctx, kernels.Task{Kernel: python.Name, Args: []string{path}, Payload: pls[1]})
	if err != nil || string(out) != string(want[1]) {
		t.Fatalf("after the kill: %x, %v", out, err)
	}
	after := p.Executors()
	if len(before) != 1 || len(after) != 1 || before[0] == after[0] {
		t.Errorf("executors before the kill %v, after %v: want one, replaced", before, after)
	}
}

func TestKernelNoInterpreter(t *testing.T) {
	p := python.NewPool(python.Options{Python: filepath.Join(t.TempDir(), "no-python")})
	defer p.Close()
	reg, _ := kernels.NewRegistry(p.Kernel())
	_, err := kerneltest.New(reg, 1).Run(context.Background(), kernels.Task{Kernel: python.Name, Payload: []byte{0, 0, 0, 0}})
	if err == nil || !strings.Contains(err.Error(), "QLAUNCH_PYTHON") {
		t.Errorf("got %v, want an error saying how to choose the interpreter", err)
	}
}
