package lab_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/qlaunch/qlaunch/kernels"
	"github.com/qlaunch/qlaunch/lab"
	"github.com/qlaunch/qlaunch/launcher/client"
	"github.com/qlaunch/qlaunch/launcher/wire"
	"github.com/qlaunch/qlaunch/topology"
)

// job is a qlaunch tree started by a launcher for one test.
type job struct {
	t        *testing.T
	dir      string // holds the topology, the address and secret files
	topo     string
	plan     *topology.Plan
	env      []string
	cmd      *exec.Cmd
	out, err bytes.Buffer
	done     chan error
}

// newJob writes the topology (with the job's own address file) and
// computes the plan every rank should compute for nodes × tasksPerNode.
func newJob(t *testing.T, c lab.Cluster, toml string, nodes []string, tasksPerNode []int) *job {
	t.Helper()
	dir := t.TempDir()
	j := &job{t: t, dir: dir, topo: filepath.Join(dir, "topology.toml"), done: make(chan error, 1)}
	toml = fmt.Sprintf("[runtime]\naddress_file = %q\n", filepath.Join(dir, "addr")) + toml
	if err := os.WriteFile(j.topo, []byte(toml), 0o644); err != nil {
		t.Fatal(err)
	}
	top, err := topology.Load(j.topo)
	if err != nil {
		t.Fatal(err)
	}
	if j.plan, err = top.WithCPUsPerNode(c.RealCPUs).Plan(nodes, tasksPerNode); err != nil {
		t.Fatal(err)
	}
	j.env = cleanEnv("QLAUNCH_SECRET_FILE=" + filepath.Join(dir, "secret"))
	return j
}

// start runs the launcher command c (already given j.env) in the background.
func (j *job) start(c *exec.Cmd) {
	j.t.Helper()
	c.Stdout, c.Stderr = &j.out, &j.err
	if err := c.Start(); err != nil {
		j.t.Fatal(err)
	}
	j.cmd = c
	go func() { j.done <- c.Wait() }()
}

// qlaunchCmd runs the plain binary with the job's files.
func (j *job) qlaunch(args ...string) (string, error) {
	j.t.Helper()
	c := cmd(j.t, 90*time.Second, j.env, qlaunch(j.t), args...)
	out, _, err := output(c)
	return out, err
}

// wait waits until every rank of the plan has joined.
func (j *job) wait() {
	j.t.Helper()
	if ended, err := j.join(); ended {
		j.t.Fatalf("the launcher ended before the tree joined: %v\n%s", err, j.err.String())
	}
}

// waitUnlessMPIInitCrash waits like wait, but returns false instead of
// failing when the launcher ended because Open MPI crashed inside
// MPI_Init_thread (mpiInitCrashed).
func (j *job) waitUnlessMPIInitCrash() bool {
	j.t.Helper()
	ended, err := j.join()
	if !ended {
		return true
	}
	stderr := j.err.String()
	if mpiInitCrashed(stderr) {
		return false
	}
	j.t.Fatalf("the launcher ended before the tree joined: %v\n%s", err, stderr)
	return false
}

// join waits until every rank of the plan has joined (ended false) or the
// launcher ended first (ended true, with its error).
func (j *job) join() (ended bool, err error) {
	j.t.Helper()
	waited := make(chan error, 1)
	go func() {
		_, err := j.qlaunch("wait", "--address-file", filepath.Join(j.dir, "addr"), "--timeout", "60s",
			"--ranks", strconv.Itoa(len(j.plan.Ranks)))
		waited <- err
	}()
	select {
	case err := <-waited:
		if err == nil {
			return false, nil
		}
		// The tree did not form while the launcher runs on (under srun,
		// the other ranks wait in MPI_Init for one that crashed): end it,
		// then read what it wrote, and say it ended.
		j.cmd.Process.Kill()
		ended := <-j.done
		j.done <- ended
		if mpiInitCrashed(j.err.String()) {
			return true, err
		}
		j.t.Fatalf("%v\nlauncher stderr:\n%s", err, j.err.String())
		return true, err
	case err := <-j.done:
		j.done <- err
		return true, err
	}
}

// finish waits for the launcher to end and returns its error.
func (j *job) finish() error {
	select {
	case err := <-j.done:
		return err
	case <-time.After(60 * time.Second):
		return fmt.Errorf("launcher still running 60s after the stop")
	}
}

// dial connects a client to the job's server.
func (j *job) dial() *client.Client {
	j.t.Helper()
	addr, err := os.ReadFile(filepath.Join(j.dir, "addr"))
	if err != nil {
		j.t.Fatal(err)
	}
	s, err := wire.LoadSecretFile(filepath.Join(j.dir, "secret"))
	if err != nil {
		j.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(j.t.Context(), 30*time.Second)
	defer cancel()
	cl, err := client.Dial(ctx, strings.TrimSpace(strings.SplitN(string(addr), "\n", 2)[0]), client.Options{Secret: s}) // the address is the first line
	if err != nil {
		j.t.Fatal(err)
	}
	j.t.Cleanup(func() { cl.Close() })
	return cl
}

// report is what an exec task prints about the worker rank running it.
type report struct {
	rank                         int
	host, node, cpus, blas, gpus string
}

// reportCmd prints, from inside the worker rank's environment, the rank's
// templated variables, node (SLURMD_NODENAME or the template), affinity and
// BLAS and GPU variables.
const reportCmd = `sleep 0.2; printf '%s|%s|%s|%s|%s|%s\n' "$E2E_RANK" "$E2E_HOST" "${SLURMD_NODENAME-$E2E_HOST}" ` +
	`"$(sed -n 's/^Cpus_allowed_list:[[:space:]]*//p' /proc/self/status)" "$OPENBLAS_NUM_THREADS" "${CUDA_VISIBLE_DEVICES-unset}"`

// execEverywhere runs enough exec tasks that every worker rank runs some,
// and returns each rank's report.
func (j *job) execEverywhere() map[int]report {
	j.t.Helper()
	cl := j.dial()
	slots := 0
	workers := map[int]bool{}
	for _, r := range j.plan.Ranks {
		if r.Roles.Has(topology.RoleWorker) {
			slots += r.Workers
			workers[r.Rank] = true
		}
	}
	ctx, cancel := context.WithTimeout(j.t.Context(), 60*time.Second)
	defer cancel()
	got := map[int]report{}
	for round := 0; round < 5 && len(got) < len(workers); round++ {
		ts := make([]kernels.Task, 4*slots)
		for i := range ts {
			ts[i] = kernels.Task{Kernel: "exec", Args: []string{"sh", "-c", reportCmd}}
		}
		f, err := cl.Map(ctx, ts)
		if err != nil {
			j.t.Fatal(err)
		}
		res, err := cl.Wait(ctx, f)
		if err != nil {
			j.t.Fatal(err)
		}
		for _, b := range res {
			p := strings.Split(strings.TrimSpace(string(b)), "|")
			if len(p) != 6 {
				j.t.Fatalf("exec printed %q", b)
			}
			r, err := strconv.Atoi(p[0])
			if err != nil {
				j.t.Fatalf("exec printed %q", b)
			}
			got[r] = report{rank: r, host: p[1], node: p[2], cpus: p[3], blas: p[4], gpus: p[5]}
		}
	}
	if len(got) != len(workers) {
		j.t.Fatalf("exec tasks ran on worker ranks %v, want all of %v", keys(got), workers)
	}
	return got
}

func keys(m map[int]report) []int {
	var ks []int
	for k := range m {
		ks = append(ks, k)
	}
	sort.Ints(ks)
	return ks
}

// checkReports compares every worker rank's report with its plan entry.
func (j *job) checkReports(got map[int]report, realCPUs int) {
	j.t.Helper()
	for _, e := range j.plan.Ranks {
		if !e.Roles.Has(topology.RoleWorker) {
			continue
		}
		g := got[e.Rank]
		wantCPUs := e.CPUs
		if wantCPUs == "" {
			wantCPUs = fmt.Sprintf("0-%d", realCPUs-1)
			if realCPUs == 1 {
				wantCPUs = "0"
			}
		}
		wantGPUs := "unset"
		if v, ok := e.Env["CUDA_VISIBLE_DEVICES"]; ok {
			wantGPUs = v
		}
		want := report{rank: e.Rank, host: e.Host, node: e.Host, cpus: wantCPUs, blas: e.Env["OPENBLAS_NUM_THREADS"], gpus: wantGPUs}
		if g != want {
			j.t.Errorf("worker rank %d reports %+v, plan says %+v", e.Rank, g, want)
		}
	}
}

const workerEnv = `
[workers.env]
E2E_RANK = "{rank}"
E2E_HOST = "{host}"
`

// TestSrunBoot: `srun -N3 qlaunch TOPOLOGY.toml` forms the tree of the plan;
// an exec task on every worker rank sees the rank, node, CPUs and
// environment the plan gives it; scancel -s INT ends the step cleanly.
func TestSrunBoot(t *testing.T) {
	c := lab.Require(t, os.Getenv)
	needNodes(t, c, 3)
	j := newJob(t, c, "[workers]\nranks_per_node = 2\npin = \"compact\"\n"+workerEnv, c.Nodes[:3], nil)
	j.start(slurm(t, 120*time.Second, j.env, "srun", "-N3", "-n"+strconv.Itoa(len(j.plan.Ranks)), "-O", "--cpu-bind=none",
		qlaunch(t), j.topo))
	j.wait()
	j.checkReports(j.execEverywhere(), c.RealCPUs)
	if out, err := exec.Command("scancel", "-s", "INT", "--name="+jobName(t)).CombinedOutput(); err != nil {
		t.Fatalf("scancel: %v %s", err, out)
	}
	if err := j.finish(); err != nil {
		t.Fatalf("srun after scancel -s INT: %v\n%s", err, j.err.String())
	}
	// Every rank, whatever its role, logs exactly one ready line.
	if n := strings.Count(j.err.String(), "msg=ready"); n != len(j.plan.Ranks) {
		t.Errorf("%d ready lines from %d ranks:\n%s", n, len(j.plan.Ranks), j.err.String())
	}
}

// TestSrunBootGPUs: with 2 fake GPUs per node (srun --gres=gpu:2 gives every
// task CUDA_VISIBLE_DEVICES=0,1), each worker rank sees exactly the GPUs the
// topology gives it.
func TestSrunBootGPUs(t *testing.T) {
	c := lab.Require(t, os.Getenv)
	needNodes(t, c, 3)
	if c.GPUsPerNode < 2 {
		t.Fatalf("the lab has %d GPUs per node; lab/up.sh's default (QLAB_GPUS_PER_NODE=2) is needed", c.GPUsPerNode)
	}
	j := newJob(t, c, "[workers]\ngpus_per_node = 2\nranks_per_gpu = 1\npin = \"compact\"\n"+workerEnv, c.Nodes[:3], nil)
	j.start(slurm(t, 120*time.Second, j.env, "srun", "-N3", "-n"+strconv.Itoa(len(j.plan.Ranks)), "-O", "--cpu-bind=none",
		"--gres=gpu:2", qlaunch(t), j.topo))
	j.wait()
	got := j.execEverywhere()
	j.checkReports(got, c.RealCPUs)
	for r, g := range got {
		if g.gpus != "0" && g.gpus != "1" {
			t.Errorf("worker rank %d sees CUDA_VISIBLE_DEVICES=%q, want one GPU", r, g.gpus)
		}
	}
	stopServer(t, j)
}

// stopServer sends SIGINT to the server rank's process alone; the whole
// step must end, every rank exiting 0.
func stopServer(t *testing.T, j *job) {
	t.Helper()
	pid := findRank(t, j.topo, "0")
	if err := syscall.Kill(pid, syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if err := j.finish(); err != nil {
		t.Fatalf("launcher after SIGINT to the server: %v\n%s", err, j.err.String())
	}
}

// findRank returns the pid of the qlaunch process running topo with
// SLURM_PROCID (or OMPI/PMI rank) procid. Ranks of allocations that
// joined the job (qlaunch TOPO --join, in jobs of their own) run topo
// with the same rank numbers: they are not the job's.
func findRank(t *testing.T, topo, procid string) int {
	t.Helper()
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err != nil || !bytes.Contains(cmdline, []byte(topo)) || !bytes.Contains(cmdline, []byte(bins.dir)) ||
			bytes.Contains(cmdline, []byte("\x00--join")) {
			continue
		}
		env, _ := os.ReadFile("/proc/" + e.Name() + "/environ")
		for _, kv := range bytes.Split(env, []byte{0}) {
			for _, k := range []string{"SLURM_PROCID=", "OMPI_COMM_WORLD_RANK=", "PMI_RANK=", "PBS_VNODENUM="} {
				if string(kv) == k+procid {
					return pid
				}
			}
		}
	}
	t.Fatalf("no qlaunch process of rank %s runs %s", procid, topo)
	return 0
}
