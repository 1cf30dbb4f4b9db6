package python_test

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The Python side's tests (python/tests) run here against real processes:
// qlaunch run starts a server and a worker rank, and the unittest suite is
// its client. They need Debian's python3 with python3-cloudpickle and
// python3-zstandard (.ci/deps installs them).

const python3 = "/usr/bin/python3"

var (
	buildOnce  sync.Once
	qlaunchBin string
	buildErr   error
	buildDir   string
)

// qlaunch builds the qlaunch binary once per test binary, on first use (a
// fuzzing worker never needs it).
func qlaunch(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		if buildDir, buildErr = os.MkdirTemp("", "qlaunch-python-test"); buildErr != nil {
			return
		}
		qlaunchBin = filepath.Join(buildDir, "qlaunch")
		out, err := exec.Command("go", "build", "-o", qlaunchBin, "github.com/qlaunch/qlaunch/cmd/qlaunch").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build ./cmd/qlaunch: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return qlaunchBin
}

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// checkPython fails, saying what to install, when python3 lacks the
// packages the qlaunch package needs.
func checkPython(t *testing.T) {
	t.Helper()
	out, err := exec.Command(python3, "-c", "import cloudpickle, zstandard").CombinedOutput()
	if err != nil {
		t.Fatalf("%s cannot import cloudpickle and zstandard (apt-get install python3-cloudpickle python3-zstandard, or run .ci/deps): %v\n%s", python3, err, out)
	}
}

// runSuite runs `qlaunch run TOPOLOGY -- python3 -m unittest ARGS…` and
// returns its combined output; it fails the test unless the suite passed
// and no executor of the run is left afterwards.
func runSuite(t *testing.T, topo string, args ...string) string {
	t.Helper()
	root := repoRoot(t)
	pythonPath := filepath.Join(root, "python") + string(os.PathListSeparator) + filepath.Join(root, "python", "tests")
	return runPython(t, topo, []string{"PYTHONPATH=" + pythonPath}, append([]string{"-m", "unittest"}, args...)...)
}

// runPython runs `qlaunch run TOPOLOGY -- python3 ARGS…` with env added to
// the environment and returns its combined output; it fails the test
// unless the command succeeded and no process of the run is left
// afterwards.
func runPython(t *testing.T, topo string, env []string, args ...string) string {
	t.Helper()
	checkPython(t)
	mark := make([]byte, 8)
	_, _ = rand.Read(mark)
	markEnv := "QLAUNCH_TEST_MARK=" + hex.EncodeToString(mark)
	argv := []string{"run"}
	for len(topo) > 0 && topo[0] == '-' { // flags of qlaunch run, then the topology: "--heartbeat=20ms TOPO"
		flag, rest, _ := strings.Cut(topo, " ")
		argv, topo = append(argv, flag), rest
	}
	argv = append(append(argv, topo, "--", python3), args...)
	cmd := exec.Command(qlaunch(t), argv...)
	cmd.Dir = t.TempDir()
	cmd.Env = append(append(os.Environ(), env...),
		"QLAUNCH_ADDRESS_FILE="+filepath.Join(cmd.Dir, "addr"),
		markEnv)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("qlaunch run … python3 %s: %v\n%s", strings.Join(args, " "), err, out.String())
		}
	case <-time.After(8 * time.Minute):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("python3 %s did not finish in 8 minutes:\n%s", strings.Join(args, " "), out.String())
	}
	if pids := marked(markEnv); len(pids) > 0 {
		// Executors die with their rank (SIGKILL on parent death); give
		// the kernel a bounded moment to deliver it.
		deadline := time.Now().Add(5 * time.Second)
		for len(pids) > 0 && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
			pids = marked(markEnv)
		}
		if len(pids) > 0 {
			t.Errorf("processes of the run left after it exited: %v", pids)
		}
	}
	return out.String()
}

// marked returns the live processes whose environment holds kv.
func marked(kv string) []string {
	if runtime.GOOS != "linux" {
		return nil
	}
	ents, _ := os.ReadDir("/proc")
	var pids []string
	for _, e := range ents {
		if e.Name()[0] < '0' || e.Name()[0] > '9' {
			continue
		}
		env, err := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
		if err != nil || !bytes.Contains(env, []byte(kv)) {
			continue
		}
		stat, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if i := bytes.LastIndexByte(stat, ')'); i > 0 && len(stat) > i+2 && stat[i+2] == 'Z' {
			continue // a zombie, about to be reaped
		}
		pids = append(pids, e.Name())
	}
	return pids
}

// TestPythonSuite runs the whole Python suite on this machine's local
// topology (one worker rank, one slot per core).
func TestPythonSuite(t *testing.T) {
	root := repoRoot(t)
	out := runSuite(t, filepath.Join(root, "configs", "local.toml"),
		"discover", "-s", filepath.Join(root, "python", "tests"), "-v")
	if !strings.Contains(out, "OK") {
		t.Errorf("the suite's output has no OK:\n%s", out)
	}
	t.Log(out)
}

// TestPythonOneSlot runs the in-task tests on a single worker slot: nested
// fork-join must not deadlock when the only slot's task waits.
func TestPythonOneSlot(t *testing.T) {
	topo := filepath.Join(t.TempDir(), "one.toml")
	err := os.WriteFile(topo, []byte("[server]\nplacement = \"shared\"\n[workers]\nranks_per_node = 1\nslots_per_rank = 1\npin = \"none\"\n"), 0o644)
	if err != nil {
		t.Fatal(err)
	}
	out := runSuite(t, topo, "test_client.InTaskTest", "-v")
	t.Log(out)
}

// TestPythonExample runs the README's example as a new user would, with no
// PYTHONPATH: the script finds the package in the repository, and the
// executors find it through the client's sys.path.
func TestPythonExample(t *testing.T) {
	root := repoRoot(t)
	env := []string{"PYTHONPATH="}
	out := runPython(t, filepath.Join(root, "configs", "local.toml"), env, filepath.Join(root, "examples", "python", "hello.py"))
	for _, want := range []string{
		"squares: [0, 1, 4, 9, 16, 25, 36, 49, 64, 81]",
		"nested map: 1000 leaves",
		"optimizing 3 blocks",
		"pass: {'optimized': [[1, 2, 3], [7, 8, 9], [4, 5, 6]]}",
		"Go kernel fanout 10 2: 100",
		"ValueError: invalid literal for int()",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the example's output lacks %q:\n%s", want, out)
		}
	}
}

// TestPythonClientAnswersHeartbeats keeps a Python client idle for many
// heartbeat timeouts: the runtime drops a silent client, so the client's
// next task succeeds only if its reader answered every heartbeat.
func TestPythonClientAnswersHeartbeats(t *testing.T) {
	root := repoRoot(t)
	script := `import time, qlaunch
c = qlaunch.Client()
assert c.submit(abs, -2).result(30) == 2
time.sleep(1.0)  # the idle period under test: 10 heartbeat timeouts
assert c.submit(abs, -3).result(30) == 3
print("still connected")
`
	out := runPython(t, "--heartbeat=20ms --heartbeat-timeout=100ms "+filepath.Join(root, "configs", "local.toml"),
		[]string{"PYTHONPATH=" + filepath.Join(root, "python")}, "-c", script)
	if !strings.Contains(out, "still connected") {
		t.Errorf("output:\n%s", out)
	}
}

// TestPythonTopologyEnv: executors run with their worker rank's
// environment from the topology (templates expanded), which also overrides
// the default of one BLAS thread.
func TestPythonTopologyEnv(t *testing.T) {
	root := repoRoot(t)
	topo := filepath.Join(t.TempDir(), "env.toml")
	err := os.WriteFile(topo, []byte(`[server]
placement = "shared"
[workers]
ranks_per_node = 1
slots_per_rank = 2
pin = "none"
[workers.env]
QLAUNCH_TEST_RANK = "rank-{rank}"
OMP_NUM_THREADS = "3"
`), 0o644)
	if err != nil {
		t.Fatal(err)
	}
	script := `import os, qlaunch
with qlaunch.Client() as c:
    print(c.submit(lambda: (os.environ.get("QLAUNCH_TEST_RANK"), os.environ.get("OMP_NUM_THREADS"), os.environ.get("MKL_NUM_THREADS"))).result(30))
`
	out := runPython(t, topo, []string{"PYTHONPATH=" + filepath.Join(root, "python")}, "-c", script)
	if !strings.Contains(out, "('rank-1', '3', '1')") {
		t.Errorf("the executor's environment is not its rank's:\n%s", out)
	}
}

// TestPythonPinning: executors inherit their worker rank's CPU set. Two
// ranks of one slot, pinned compact, on a machine of at least two CPUs:
// every task runs on exactly one CPU, and tasks of both ranks report their
// rank's own.
func TestPythonPinning(t *testing.T) {
	if runtime.NumCPU() < 2 {
		t.Skip("needs two CPUs to pin two ranks apart")
	}
	root := repoRoot(t)
	topo := filepath.Join(t.TempDir(), "pin.toml")
	err := os.WriteFile(topo, []byte("[server]\nplacement = \"shared\"\n[workers]\nranks_per_node = 2\nslots_per_rank = 1\ncpus_per_node = 2\npin = \"compact\"\n"), 0o644)
	if err != nil {
		t.Fatal(err)
	}
	script := `import os, qlaunch, helpers
with qlaunch.Client() as c:
    sets = c.map(helpers.affinity, range(200)).result(60)
print("sizes", sorted(set(len(s) for s in sets)), "distinct", len(set(map(tuple, sets))))
`
	pythonPath := filepath.Join(root, "python") + string(os.PathListSeparator) + filepath.Join(root, "python", "tests")
	out := runPython(t, topo, []string{"PYTHONPATH=" + pythonPath}, "-c", script)
	if !strings.Contains(out, "sizes [1] distinct 2") {
		t.Errorf("tasks did not run pinned to one CPU each, on both ranks:\n%s", out)
	}
}

// TestPyflakes keeps the Python code free of what pyflakes finds (unused
// imports and names, undefined names), as go vet does for Go.
func TestPyflakes(t *testing.T) {
	root := repoRoot(t)
	if out, err := exec.Command(python3, "-m", "pyflakes", "--version").CombinedOutput(); err != nil {
		t.Fatalf("%s has no pyflakes (apt-get install python3-pyflakes, or run .ci/deps): %v\n%s", python3, err, out)
	}
	out, err := exec.Command(python3, "-m", "pyflakes", filepath.Join(root, "python"), filepath.Join(root, "examples", "python")).CombinedOutput()
	if err != nil || len(out) > 0 {
		t.Errorf("pyflakes: %v\n%s", err, out)
	}
}

// TestPythonInterruptLeavesNothing interrupts qlaunch run while a Python
// task runs: the run exits and no process of it (executors included) is
// left.
func TestPythonInterruptLeavesNothing(t *testing.T) {
	checkPython(t)
	root := repoRoot(t)
	dir := t.TempDir()
	started := filepath.Join(dir, "started")
	script := `import sys, time, qlaunch
def long(path):
    open(path, "w").close()
    time.sleep(600)
with qlaunch.Client() as c:
    c.submit(long, sys.argv[1]).result()
`
	mark := "QLAUNCH_TEST_MARK=interrupt-" + filepath.Base(dir)
	cmd := exec.Command(qlaunch(t), "run", filepath.Join(root, "configs", "local.toml"), "--", python3, "-c", script, started)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "PYTHONPATH="+filepath.Join(root, "python"), "QLAUNCH_ADDRESS_FILE="+filepath.Join(dir, "addr"), mark)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	deadline := time.Now().Add(60 * time.Second)
	for !fileExists(started) {
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			<-done
			t.Fatalf("the task did not start within a minute:\n%s", out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if len(marked(mark)) < 3 {
		t.Errorf("want the run, its worker rank and an executor alive, got %v", marked(mark))
	}
	_ = cmd.Process.Signal(os.Interrupt)
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("qlaunch run did not exit within 30 s of SIGINT:\n%s", out.String())
	}
	left := marked(mark)
	for end := time.Now().Add(5 * time.Second); len(left) > 0 && time.Now().Before(end); left = marked(mark) {
		time.Sleep(20 * time.Millisecond)
	}
	if len(left) > 0 {
		t.Errorf("processes left after the interrupt: %v\n%s", left, out.String())
	}
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// TestPythonBench runs the Python benchmarks briefly, as make bench does,
// and checks their report: every workload measured, and ratios against
// the Go kernels of the same run, the peers and the goals. Absolute
// figures are not checked: they depend on the machine's load.
func TestPythonBench(t *testing.T) {
	root := repoRoot(t)
	topo := filepath.Join(root, "configs", "local.toml")
	out := runPython(t, topo, []string{"PYTHONPATH=" + filepath.Join(root, "python")},
		"-m", "qlaunch.bench", "--tasks", "200", "--repeat", "1", "--json", "--qlaunch", qlaunch(t), "--topology", topo)
	start, end := strings.Index(out, "\n{\n"), strings.LastIndex(out, "\n}\n")
	if strings.HasPrefix(out, "{\n") {
		start = -1
	}
	if end < 0 || start >= end {
		t.Fatalf("no JSON report in the output:\n%s", out)
	}
	var rep map[string]json.RawMessage
	if err := json.Unmarshal([]byte(out[start+1:end+2]), &rep); err != nil {
		t.Fatalf("the report is not JSON: %v\n%s", err, out)
	}
	for _, w := range []string{"client-map", "client-map-go", "task-map", "task-map-go", "round-trip", "round-trip-go",
		"task-round-trip", "nested", "nested-go", "startup"} {
		var fig struct {
			Value float64
			Unit  string
		}
		if err := json.Unmarshal(rep[w], &fig); err != nil || fig.Value <= 0 || fig.Unit == "" {
			t.Errorf("workload %s: want a positive figure with a unit, got %s (%v)", w, rep[w], err)
		}
	}
	var ratios []struct {
		Figure, Against string
		Speedup         float64
	}
	if err := json.Unmarshal(rep["ratios"], &ratios); err != nil {
		t.Fatalf("ratios: %v\n%s", err, out)
	}
	seen := map[string]bool{}
	for _, r := range ratios {
		if r.Speedup <= 0 {
			t.Errorf("ratio %s against %s: %g", r.Figure, r.Against, r.Speedup)
		}
		seen[r.Figure+" / "+r.Against] = true
	}
	for _, want := range []string{
		"task-map / task-map-go (same run)", "task-map / BQSKit+NODELAY W1 in-task", "task-map / goal 100000 tasks/s",
		"client-map / Dask local W1", "round-trip / BQSKit+NODELAY W2 client", "nested / BQSKit+NODELAY W4",
		"startup / BQSKit W5 start-up",
	} {
		if !seen[want] {
			t.Errorf("no ratio %s in %v", want, ratios)
		}
	}
}

// TestPythonTopologySettings: the topology's [python] table reaches the
// executors: the interpreter, path entries first on PYTHONPATH (a module
// only there imports), and the thread variables over the rank's.
func TestPythonTopologySettings(t *testing.T) {
	root := repoRoot(t)
	dir := t.TempDir()
	lib := filepath.Join(dir, "lib")
	if err := os.Mkdir(lib, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(lib, "qlaunch_topo_mod.py"), []byte("WHERE = 'from python.path'\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// A link of its own, so that the executor's sys.executable tells it
	// from the default interpreter.
	interp := filepath.Join(dir, "topo-python3")
	if err := os.Symlink(python3, interp); err != nil {
		t.Fatal(err)
	}
	topo := filepath.Join(dir, "py.toml")
	err := os.WriteFile(topo, []byte(fmt.Sprintf(`[server]
placement = "shared"
[workers]
ranks_per_node = 1
slots_per_rank = 2
pin = "none"
[workers.env]
OMP_NUM_THREADS = "7"
[python]
interpreter = %q
path = [%q]
threads = 2
`, interp, lib)), 0o644)
	if err != nil {
		t.Fatal(err)
	}
	script := `import os, sys, qlaunch
def probe():
    import qlaunch_topo_mod
    return (sys.executable, qlaunch_topo_mod.WHERE, os.environ["OMP_NUM_THREADS"], os.environ["MKL_NUM_THREADS"], os.environ["NUMEXPR_NUM_THREADS"])
with qlaunch.Client() as c:
    print("probe", c.submit(probe).result(60))
`
	out := runPython(t, topo, []string{"PYTHONPATH=" + filepath.Join(root, "python")}, "-c", script)
	if !strings.Contains(out, fmt.Sprintf("probe ('%s', 'from python.path', '2', '2', '2')", interp)) {
		t.Errorf("the executor does not run with [python]'s settings:\n%s", out)
	}
}

// TestPythonTopologyBadKey: a mistake in [python] stops qlaunch run before
// anything starts, with the file, line and key.
func TestPythonTopologyBadKey(t *testing.T) {
	topo := filepath.Join(t.TempDir(), "bad.toml")
	if err := os.WriteFile(topo, []byte("[workers]\nslots_per_rank = 1\n[python]\ninterpreter = \"/usr/bin/python3\"\nthread = 2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(qlaunch(t), "run", topo, "--", "true").CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 2 {
		t.Fatalf("qlaunch run with a bad [python] key: %v, want exit status 2\n%s", err, out)
	}
	if want := topo + ":5:1: python.thread: unknown key"; !strings.Contains(string(out), want) {
		t.Errorf("output lacks %q:\n%s", want, out)
	}
}

// TestPythonRetryableRankKilled kills the worker rank (-9) while it runs a
// task of a function marked qlaunch.retryable: the runtime starts a
// replacement rank and places the task again there, so the client gets the
// result of the second run; nothing of the run is left afterwards.
func TestPythonRetryableRankKilled(t *testing.T) {
	checkPython(t)
	root := repoRoot(t)
	dir := t.TempDir()
	started := filepath.Join(dir, "started")
	topo := filepath.Join(dir, "one.toml")
	if err := os.WriteFile(topo, []byte("[server]\nplacement = \"shared\"\n[workers]\nranks_per_node = 1\nslots_per_rank = 1\npin = \"none\"\nrestarts = 2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	script := `import os, sys, time, qlaunch

@qlaunch.retryable
def once(path):
    if os.path.exists(path):
        return "second run"
    with open(path + ".tmp", "w") as f:
        f.write(str(os.getppid()))
    os.rename(path + ".tmp", path)
    time.sleep(600)

with qlaunch.Client() as c:
    print("result:", c.submit(once, sys.argv[1]).result(120))
`
	mark := "QLAUNCH_TEST_MARK=retry-" + filepath.Base(dir)
	cmd := exec.Command(qlaunch(t), "run", topo, "--", python3, "-c", script, started)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "PYTHONPATH="+filepath.Join(root, "python"), "QLAUNCH_ADDRESS_FILE="+filepath.Join(dir, "addr"), mark)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	stop := func(format string, a ...any) {
		t.Helper()
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf(format+"\n%s", append(a, out.String())...)
	}
	var rank int
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if b, err := os.ReadFile(started); err == nil {
			if _, err := fmt.Sscan(string(b), &rank); err != nil {
				stop("started file %q: %v", b, err)
			}
			break
		}
		if time.Now().After(deadline) {
			stop("the task did not start within a minute")
		}
	}
	argv, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", rank))
	if !bytes.Contains(argv, []byte("worker")) {
		stop("the executor's parent %d is not a worker rank: %q", rank, argv)
	}
	if err := syscall.Kill(rank, syscall.SIGKILL); err != nil {
		stop("kill -9 %d: %v", rank, err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("qlaunch run: %v\n%s", err, out.String())
		}
	case <-time.After(2 * time.Minute):
		stop("the run did not finish within 2 minutes of the kill")
	}
	if !strings.Contains(out.String(), "result: second run") {
		t.Errorf("the retryable task's result did not arrive:\n%s", out.String())
	}
	left := marked(mark)
	for end := time.Now().Add(5 * time.Second); len(left) > 0 && time.Now().Before(end); left = marked(mark) {
		time.Sleep(20 * time.Millisecond)
	}
	if len(left) > 0 {
		t.Errorf("processes left after the run: %v\n%s", left, out.String())
	}
}
