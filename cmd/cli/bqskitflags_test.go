package cli

import (
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/qlaunch/qlaunch/launcher/wire"
)

// TestWorkerCPUs: one number is BQSKit's start CPU (N consecutive CPUs),
// a cpulist is the set itself.
func TestWorkerCPUs(t *testing.T) {
	for _, c := range []struct {
		arg   string
		slots int
		want  []int
		err   string
	}{
		{"0", 4, []int{0, 1, 2, 3}, ""},
		{"6", 2, []int{6, 7}, ""},
		{"0-1,4", 8, []int{0, 1, 4}, ""},
		{"3,5", 1, []int{3, 5}, ""},
		{"14", 4, nil, "out of range"},
		{"-1", 1, nil, "out of range"},
		{"a", 1, nil, "a"},
	} {
		got, err := workerCPUs(c.arg, c.slots, 16)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("workerCPUs(%q, %d): %v, %v; want an error with %q", c.arg, c.slots, got, err, c.err)
			}
			continue
		}
		if err != nil || !slices.Equal(got, c.want) {
			t.Errorf("workerCPUs(%q, %d) = %v, %v; want %v", c.arg, c.slots, got, err, c.want)
		}
	}
}

// TestBQSKitWorkerFlags: a manual worker rank started as a BQSKit job
// script starts bqskit-worker (`worker 2 -c 0 -t 3`) runs its slots on
// CPUs 0 and 1 with 3 BLAS threads, under a manager started with -x; the
// BQSKit flags qlaunch does not mean alike are refused, saying what to
// write instead.
func TestBQSKitWorkerFlags(t *testing.T) {
	dir := t.TempDir()
	env := []string{"QLAUNCH_SECRET_FILE=" + filepath.Join(dir, "secret"), "QLAUNCH_ADDR=", "QLAUNCH_ADDRESS_FILE=" + filepath.Join(dir, "addr"),
		"OPENBLAS_NUM_THREADS=", "OMP_NUM_THREADS=", "MKL_NUM_THREADS="}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"manager", "-x", "-n", "4"}, "-x with -n 4"},
		{[]string{"worker", "1", "-l"}, "leave -l out"},
		{[]string{"worker", "1", "-t", "0"}, "want 1 or more"},
	} {
		if r := e2eRun(t, env, "", c.args...); r.code != 2 || !strings.Contains(r.stderr, c.want) {
			t.Errorf("qlaunch %v: exit %d, stderr %q; want exit 2 and %q", c.args, r.code, r.stderr, c.want)
		}
	}
	// The job's secret exists before any rank starts: the worker rank only
	// reads it, the manager and server would create it.
	if _, err := wire.EnsureSecretFile(filepath.Join(dir, "secret")); err != nil {
		t.Fatal(err)
	}
	mport, wport, sport := e2eFreePort(t), e2eFreePort(t), e2eFreePort(t)
	e2eStart(t, env, "manager", "-x", "-p", strconv.Itoa(mport), "-w", strconv.Itoa(wport), "-i", "127.0.0.1")
	e2eStart(t, env, "server", "-p", strconv.Itoa(sport), "-i", "127.0.0.1", "--ranks", "3", "127.0.0.1:"+strconv.Itoa(mport))
	e2eStart(t, env, "worker", "2", "-c", "0", "-t", "3", "-p", strconv.Itoa(wport), "--rank", "2")
	if r := e2eRun(t, env, "", "wait", "--ranks", "3", "--timeout", "20s"); r.code != 0 {
		t.Fatalf("wait: %+v", r)
	}
	r := e2eRun(t, env, "", "submit", "exec", "--", "sh", "-c", `grep Cpus_allowed_list /proc/self/status; echo "blas=$OPENBLAS_NUM_THREADS"`)
	if r.code != 0 || !strings.Contains(r.stdout, "Cpus_allowed_list:\t0-1") || !strings.Contains(r.stdout, "blas=3") {
		t.Fatalf("a task of `worker 2 -c 0 -t 3`: %+v; want CPUs 0-1 and 3 BLAS threads", r)
	}
}
