package lab_test

import (
	"bytes"
	"context"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/qlaunch/qlaunch/lab"
)

// binaries builds the programs the tests start, once per build flavour, into
// one temporary directory that TestMain removes.
type binaries struct {
	root string // the module root
	dir  string // where the binaries go; also the jobs' working directory

	mu    sync.Mutex
	built map[string]buildResult
}

type buildResult struct {
	path string
	err  error
}

// bins is set once by TestMain before any test runs.
var bins *binaries

func TestMain(m *testing.M) { os.Exit(testMain(m)) }

func testMain(m *testing.M) int {
	root, err := filepath.Abs("..")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	dir, err := os.MkdirTemp("", "qlaunch-lab-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	bins = &binaries{root: root, dir: dir, built: map[string]buildResult{}}
	// Build the plain binary up front when the lab is up: every lab test
	// needs it, and a build failure is then reported once. Every SLURM
	// command the tests run (and the jobs it starts) reaches the lab
	// through SLURM_CONF.
	if c, err := lab.Detect(context.Background()); err == nil {
		for _, kv := range c.Environ() {
			k, v, _ := strings.Cut(kv, "=")
			os.Setenv(k, v)
		}
		start := time.Now()
		// A failed build fails the tests that need the binary (need).
		if _, err := bins.build("qlaunch", "", "./cmd/qlaunch"); err == nil {
			fmt.Fprintf(os.Stderr, "lab: built qlaunch in %.1fs\n", time.Since(start).Seconds())
		}
	}
	return m.Run()
}

// build compiles pkg (a main package, or any package with "test:" in front
// for its test binary) with the build tags, once; MPI tags turn cgo on.
func (b *binaries) build(name, tags, pkg string) (string, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if r, ok := b.built[name]; ok {
		return r.path, r.err
	}
	out := filepath.Join(b.dir, name)
	args := []string{"build"}
	if p, ok := strings.CutPrefix(pkg, "test:"); ok {
		args, pkg = []string{"test", "-c"}, p
	}
	args = append(args, "-o", out)
	cgo := "CGO_ENABLED=0"
	if tags != "" {
		args = append(args, "-tags", tags)
		cgo = "CGO_ENABLED=1"
	}
	args = append(args, pkg)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = b.root
	cmd.Env = append(os.Environ(), cgo)
	var r buildResult
	if msg, err := cmd.CombinedOutput(); err != nil {
		r.err = fmt.Errorf("go %s: %v\n%s", strings.Join(args, " "), err, msg)
	} else {
		r.path = out
	}
	b.built[name] = r
	return r.path, r.err
}

// need returns the binary, building it on first use, or fails the test.
func need(t *testing.T, name, tags, pkg string) string {
	t.Helper()
	p, err := bins.build(name, tags, pkg)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// qlaunch is the plain (pure Go) binary.
func qlaunch(t *testing.T) string { return need(t, "qlaunch", "", "./cmd/qlaunch") }

// mpiEnv keeps Open MPI on loopback, off shared memory between lab nodes
// (they share one host), and lets it run as root.
var mpiEnv = []string{
	"OMPI_ALLOW_RUN_AS_ROOT=1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1",
	"OMPI_MCA_btl=self,tcp", "OMPI_MCA_btl_tcp_if_include=lo", "OMPI_MCA_oob_tcp_if_include=lo",
}

// launcherVar matches variables a launcher sets; they are removed from the
// environment of what a test starts, in case the tests themselves run
// inside a job. SLURM_CONF (where the lab's configuration is) stays.
var launcherVar = regexp.MustCompile(`^(SLURM_|SLURMD_|PMIX_|PMI_|OMPI_|PALS_|PBS_|MPI_LOCAL|QLAUNCH_)`)

// cleanEnv is this process's environment without launcher variables, plus extra.
func cleanEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !launcherVar.MatchString(kv) || strings.HasPrefix(kv, "SLURM_CONF=") {
			env = append(env, kv)
		}
	}
	return append(append(env, mpiEnv...), extra...)
}

// jobName is a SLURM job name unique to the test, so that its cleanup
// cancels its own jobs only.
func jobName(t *testing.T) string {
	return "e2e-" + regexp.MustCompile(`[^A-Za-z0-9]+`).ReplaceAllString(t.Name(), "-")
}

// cmd prepares a command with a deadline: on expiry it gets SIGTERM (srun
// then ends its step), and SIGKILL 10 s later. The test's cleanup cancels
// every job that carries the test's job name and waits until SLURM has
// forgotten them, so that no task outlives the test.
func cmd(t *testing.T, timeout time.Duration, env []string, name string, args ...string) *exec.Cmd {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	t.Cleanup(cancel)
	c := exec.CommandContext(ctx, name, args...)
	c.Dir = bins.dir
	c.Env = env
	c.Cancel = func() error { return c.Process.Signal(os.Interrupt) }
	c.WaitDelay = 10 * time.Second
	return c
}

// output runs c and returns its stdout; a failure carries stderr.
func output(c *exec.Cmd) (string, string, error) {
	var out, errb bytes.Buffer
	c.Stdout, c.Stderr = &out, &errb
	err := c.Run()
	if err != nil {
		err = fmt.Errorf("%s: %w\nstderr:\n%s\nstdout:\n%s", strings.Join(c.Args, " "), err, errb.String(), out.String())
	}
	return out.String(), errb.String(), err
}

// cancelJobs cancels the test's jobs and waits (15 s at most) until
// squeue no longer lists them.
func cancelJobs(t *testing.T, name string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_ = exec.CommandContext(ctx, "scancel", "--name="+name).Run()
	for ctx.Err() == nil {
		out, err := exec.CommandContext(ctx, "squeue", "-h", "-n", name, "-o", "%i %T").Output()
		if err == nil && strings.TrimSpace(string(out)) == "" {
			return
		}
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond): // polling squeue: SLURM has no completion event
		}
	}
	t.Errorf("jobs named %s still listed by squeue after scancel", name)
}

// cmdTimeout is cmd under timeout(1), so that even a stuck launcher ends.
func cmdTimeout(t *testing.T, timeout time.Duration, env []string, tool string, args ...string) *exec.Cmd {
	t.Helper()
	return cmd(t, timeout+15*time.Second, env, "timeout", append([]string{"-k", "5", fmt.Sprint(int(timeout.Seconds())), tool}, args...)...)
}

// slurm starts a SLURM client command (srun, salloc, sbatch) with the test's
// job name; the test's cleanup cancels whatever is left of the job.
func slurm(t *testing.T, timeout time.Duration, env []string, tool string, args ...string) *exec.Cmd {
	t.Helper()
	name := jobName(t)
	t.Cleanup(func() {
		cancelJobs(t, name)
		noProcessLeft(t, bins.dir)
	})
	return cmdTimeout(t, timeout, env, tool, append([]string{"--job-name=" + name}, args...)...)
}

// sbatchWait does what `sbatch --wait ARGS` does, without its slow
// polling: sbatch --wait asks for the job's state 2 s after submitting,
// then at intervals growing 4× up to 32 s (while under MinJobAge/3), so a
// job of 3 s returned after 10 s and one of 11 s after 42 s. This submits
// with --parsable under the test's job name, asks scontrol for the job's
// state every 100 ms until it is final (bounded by timeout), and returns
// the job id and, as sbatch --wait does, an error unless the job
// completed with exit code 0.
func sbatchWait(t *testing.T, timeout time.Duration, env []string, dir string, args ...string) (string, error) {
	t.Helper()
	submit := slurm(t, 30*time.Second, env, "sbatch", append([]string{"--parsable"}, args...)...)
	submit.Dir = dir
	stdout, _, err := output(submit)
	if err != nil {
		return "", err
	}
	id := strings.TrimSpace(strings.Split(stdout, ";")[0])
	if _, aerr := strconv.Atoi(id); aerr != nil {
		t.Fatalf("sbatch --parsable printed %q", stdout)
	}
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	defer cancel()
	for {
		out, _ := exec.CommandContext(ctx, "scontrol", "show", "job", "-o", id).Output()
		fields := map[string]string{}
		for _, f := range strings.Fields(string(out)) {
			if k, v, ok := strings.Cut(f, "="); ok {
				fields[k] = v
			}
		}
		switch st := fields["JobState"]; st {
		case "", "PENDING", "CONFIGURING", "RUNNING", "COMPLETING", "SUSPENDED", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "RESIZING", "SIGNALING", "STAGE_OUT":
		case "COMPLETED":
			if fields["ExitCode"] == "0:0" {
				return id, nil
			}
			return id, fmt.Errorf("sbatch %s: job %s completed with exit code %s", strings.Join(args, " "), id, fields["ExitCode"])
		default:
			return id, fmt.Errorf("sbatch %s: job %s ended %s, exit code %s (%s)", strings.Join(args, " "), id, st, fields["ExitCode"], fields["Reason"])
		}
		select {
		case <-ctx.Done():
			return id, fmt.Errorf("sbatch %s: job %s still %s after %v", strings.Join(args, " "), id, fields["JobState"], timeout)
		case <-time.After(100 * time.Millisecond): // polling scontrol: SLURM has no completion event
		}
	}
}

// labeled splits `srun -l` output into each task's lines.
func labeled(t *testing.T, out string) map[int][]string {
	t.Helper()
	m := map[int][]string{}
	for _, l := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
		var task int
		label, text, ok := strings.Cut(l, ": ")
		if _, err := fmt.Sscanf(strings.TrimSpace(label), "%d", &task); !ok || err != nil {
			t.Fatalf("unlabelled line %q in\n%s", l, out)
		}
		m[task] = append(m[task], text)
	}
	return m
}

// noProcessLeft fails the test when a process whose command line contains
// marker still runs (a zombie does not count).
func noProcessLeft(t *testing.T, marker string) {
	t.Helper()
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid := e.Name()
		if pid[0] < '0' || pid[0] > '9' {
			continue
		}
		cmdline, err := os.ReadFile("/proc/" + pid + "/cmdline")
		if err != nil || !bytes.Contains(cmdline, []byte(marker)) {
			continue
		}
		stat, _ := os.ReadFile("/proc/" + pid + "/stat")
		if i := bytes.LastIndexByte(stat, ')'); i > 0 && len(stat) > i+2 && stat[i+2] == 'Z' {
			continue
		}
		t.Errorf("process %s left: %s", pid, bytes.ReplaceAll(cmdline, []byte{0}, []byte{' '}))
	}
}

// maskCPUs turns a SLURM CPU mask ("0x3") into a cpulist ("0-1").
func maskCPUs(t *testing.T, mask string) string {
	t.Helper()
	v, ok := new(big.Int).SetString(strings.TrimPrefix(mask, "0x"), 16)
	if !ok {
		t.Fatalf("CPU mask %q", mask)
	}
	var cpus []int
	for i := range v.BitLen() {
		if v.Bit(i) == 1 {
			cpus = append(cpus, i)
		}
	}
	return cpuList(cpus)
}

// cpuList formats increasing CPU numbers as a Linux cpulist: "0-3,6".
func cpuList(cpus []int) string {
	var parts []string
	for i := 0; i < len(cpus); {
		j := i
		for j+1 < len(cpus) && cpus[j+1] == cpus[j]+1 {
			j++
		}
		if j > i {
			parts = append(parts, fmt.Sprintf("%d-%d", cpus[i], cpus[j]))
		} else {
			parts = append(parts, fmt.Sprint(cpus[i]))
		}
		i = j + 1
	}
	return strings.Join(parts, ",")
}
