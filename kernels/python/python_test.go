package python_test

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
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
	argv := append([]string{"run", topo, "--", python3}, args...)
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
