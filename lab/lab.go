// Package lab finds the project's SLURM lab, the 3-node cluster on one
// machine that lab/up.sh brings up (`make lab-up`, as root), for the
// end-to-end tests in this directory and elsewhere.
//
// A test that needs the lab calls Require first. When the lab is up the test
// runs; when it is not, the test fails under CI (CI=true: the lab must have
// come up) and is skipped elsewhere with a message saying how to bring it up.
//
// The lab keeps its SLURM configuration in its own directory, not in
// /etc/slurm: SLURM commands (srun, sbatch, squeue…) find it through the
// SLURM_CONF variable, which Cluster.Environ gives.
package lab

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// InfoFile is where lab/up.sh records the settings of the running lab (with
// its default QLAB_DIR); it exists only while the lab is up.
const InfoFile = "/run/qlaunch-lab/lab.env"

// ErrNotUp means the lab is not running.
var ErrNotUp = errors.New("the SLURM lab is not up")

// Cluster describes the running lab, as lab/up.sh recorded it.
type Cluster struct {
	Dir         string   // the lab's own directory (QLAB_DIR)
	Conf        string   // its slurm.conf: what SLURM_CONF must name
	CtldPort    int      // slurmctld's port
	Nodes       []string // node names, n1..nN
	NodeList    string   // the same as a SLURM hostlist, e.g. "n[1-3]"
	CPUsPerNode int      // CPUs SLURM believes each node has
	RealCPUs    int      // CPUs of the machine
	GPUsPerNode int      // fake GPUs per node (0: none)
	TaskPlugin  string   // "task/affinity" (real CPUs) or "task/none" (fake CPUs)
	MPIDefault  string   // slurm.conf MpiDefault: none, pmix or pmi2
	PBS         bool     // spank_pbs adds PBS_* variables to every task
	MPICH       bool     // MPICH (mpich, libmpich-dev) is installed
}

// Environ is the environment SLURM commands need to reach the lab:
// SLURM_CONF naming its configuration.
func (c Cluster) Environ() []string { return []string{"SLURM_CONF=" + c.Conf} }

// Binds reports whether SLURM binds each task to its CPUs (task/affinity).
func (c Cluster) Binds() bool { return c.TaskPlugin == "task/affinity" }

// Parse reads the lab's info file: "KEY=VALUE" lines, "#" comments.
func Parse(r io.Reader) (Cluster, error) {
	var c Cluster
	var n int
	prefix := "n"
	sc := bufio.NewScanner(r)
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		key, val, ok := strings.Cut(text, "=")
		if !ok {
			return Cluster{}, fmt.Errorf("lab info line %d: %q is not KEY=VALUE", line, text)
		}
		var err error
		switch key {
		case "QLAB_DIR":
			c.Dir = val
		case "QLAB_SLURM_CONF":
			c.Conf = val
		case "QLAB_CTLD_PORT":
			c.CtldPort, err = strconv.Atoi(val)
		case "QLAB_NODE_PREFIX":
			prefix = val
		case "QLAB_NODES":
			n, err = strconv.Atoi(val)
		case "QLAB_NODELIST":
			c.NodeList = val
		case "QLAB_CPUS_PER_NODE":
			c.CPUsPerNode, err = strconv.Atoi(val)
		case "QLAB_REAL_CPUS":
			c.RealCPUs, err = strconv.Atoi(val)
		case "QLAB_GPUS_PER_NODE":
			c.GPUsPerNode, err = strconv.Atoi(val)
		case "QLAB_TASK_PLUGIN":
			c.TaskPlugin = val
		case "QLAB_MPI_DEFAULT":
			c.MPIDefault = val
		case "QLAB_PBS":
			c.PBS = val == "1"
		case "QLAB_MPICH":
			c.MPICH = val == "1"
		}
		if err != nil {
			return Cluster{}, fmt.Errorf("lab info line %d: %s: %w", line, key, err)
		}
	}
	if err := sc.Err(); err != nil {
		return Cluster{}, fmt.Errorf("lab info: %w", err)
	}
	if n < 1 || n > 200 {
		return Cluster{}, fmt.Errorf("lab info: QLAB_NODES=%d: want 1..200", n)
	}
	if c.Conf == "" {
		return Cluster{}, errors.New("lab info: no QLAB_SLURM_CONF: the lab was brought up by an older lab/up.sh; bring it down with that version's lab/down.sh and up again with `make lab-up`")
	}
	c.Nodes = make([]string, n)
	for i := range c.Nodes {
		c.Nodes[i] = prefix + strconv.Itoa(i+1)
	}
	return c, nil
}

// Detect returns the running lab, or an error wrapping ErrNotUp when its
// info file is missing or sinfo does not show every node usable.
func Detect(ctx context.Context) (Cluster, error) { return DetectAt(ctx, InfoFile) }

// DetectAt is Detect for the lab whose info file is info (a lab brought up
// with another QLAB_DIR).
func DetectAt(ctx context.Context, info string) (Cluster, error) {
	f, err := os.Open(info)
	if err != nil {
		return Cluster{}, fmt.Errorf("%w: %v", ErrNotUp, err)
	}
	defer f.Close()
	c, err := Parse(f)
	if err != nil {
		return Cluster{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	sinfo := exec.CommandContext(ctx, "sinfo", "-h", "-N", "-o", "%N %t")
	sinfo.Env = append(os.Environ(), c.Environ()...)
	out, err := sinfo.Output()
	if err != nil {
		return Cluster{}, fmt.Errorf("%w: sinfo: %v", ErrNotUp, err)
	}
	states := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if name, st, ok := strings.Cut(l, " "); ok {
			states[name] = st
		}
	}
	for _, node := range c.Nodes {
		switch st := states[node]; st {
		case "idle", "alloc", "mix", "comp", "plnd": // plnd: held for a pending job, up
		default:
			return Cluster{}, fmt.Errorf("%w: node %s is %q", ErrNotUp, node, st)
		}
	}
	return c, nil
}

// Require returns the running lab, or ends the test: with a failure when
// getenv("CI") is "true", since CI must run the lab tests, and with a skip
// that says how to bring the lab up otherwise.
func Require(t testing.TB, getenv func(string) string) Cluster {
	t.Helper()
	c, err := Detect(t.Context())
	if err == nil {
		return c
	}
	if getenv("CI") == "true" {
		t.Fatalf("CI=true but the SLURM lab is not usable: %v (CI brings it up with lab/up.sh)", err)
	}
	t.Skipf("SLURM lab not up (%v): bring it up with `make lab-up` (root; lab/up.sh)", err)
	return Cluster{}
}
