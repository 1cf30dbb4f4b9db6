package lab_test

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/qlaunch/qlaunch/lab"
)

// foreignConf stands for another cluster's /etc/slurm/slurm.conf.
const foreignConf = "# another SLURM cluster's configuration: the lab must leave it alone\nClusterName=foreign\nSlurmctldPort=6817\n"

// TestLabLeavesForeignSLURMAlone: with "another SLURM" on this machine (a
// listener on SLURM's default ports 6817 and 6818, and an
// /etc/slurm/slurm.conf), lab/up.sh asked for a port in use stops before
// writing anything; a second lab (its own QLAB_DIR, ports and node names)
// comes up beside the running one, runs a job and goes down; afterwards
// every file under /etc is byte-identical to before, the foreign listener
// still answers, and nothing of the second lab is left.
func TestLabLeavesForeignSLURMAlone(t *testing.T) {
	lab.Require(t, os.Getenv)
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("CI=true but the tests do not run as root: lab/up.sh needs root")
		}
		t.Skip("lab/up.sh needs root")
	}
	foreign := listenForeign(t, 6817, 6818)

	// A foreign slurm.conf, unless the machine has one already.
	const etcConf = "/etc/slurm/slurm.conf"
	if _, err := os.Lstat(etcConf); errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(filepath.Dir(etcConf), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(etcConf, []byte(foreignConf), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.Remove(etcConf) })
	}
	before := snapshot(t, "/etc")

	dir := filepath.Join(t.TempDir(), "lab")
	ctld, slurmd := freePort(t), freePort(t)
	env := cleanEnv("QLAB_DIR="+dir, "QLAB_NODES=1", "QLAB_NODE_PREFIX=qlabt", "QLAB_ADDR_BASE=127.0.0.200",
		"QLAB_CLUSTER=qlabtest", "QLAB_GPUS_PER_NODE=0", "QLAB_INSTALL_MPI=0",
		"QLAB_SLURMD_PORT0="+strconv.Itoa(slurmd-1))
	up := func(extra ...string) (string, error) {
		_, stderr, err := output(cmdTimeout(t, 90*time.Second, append(append([]string{}, env...), extra...),
			filepath.Join(bins.root, "lab", "up.sh")))
		return stderr, err
	}
	down := func() error {
		_, _, err := output(cmdTimeout(t, 60*time.Second, env, filepath.Join(bins.root, "lab", "down.sh")))
		return err
	}
	t.Cleanup(func() { _ = down() }) // after a failure half-way; a no-op otherwise

	// 1. The foreign controller's port: refused before any write.
	stderr, err := up("QLAB_CTLD_PORT=6817")
	if err == nil {
		t.Fatalf("lab/up.sh came up on the foreign SLURM's port 6817:\n%s", stderr)
	}
	if !strings.Contains(err.Error(), "TCP port 6817 is already in use") || !strings.Contains(err.Error(), "nothing was changed") {
		t.Fatalf("lab/up.sh on a port in use does not say so: %v", err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("lab/up.sh refused but made %s (%v)", dir, err)
	}
	same(t, "after the refused lab/up.sh", before, snapshot(t, "/etc"))

	// 2. Up beside the running lab, twice (the second run does nothing).
	for run := 1; run <= 2; run++ {
		if stderr, err := up("QLAB_CTLD_PORT=" + strconv.Itoa(ctld)); err != nil {
			t.Fatalf("lab/up.sh, run %d: %v", run, err)
		} else if run == 2 && !strings.Contains(stderr, "already up") {
			t.Errorf("the second lab/up.sh did not find the lab up:\n%s", stderr)
		}
	}
	second, err := lab.DetectAt(t.Context(), filepath.Join(dir, "lab.env"))
	if err != nil {
		t.Fatal(err)
	}
	if second.Conf != filepath.Join(dir, "slurm.conf") || second.CtldPort != ctld || !slices.Equal(second.Nodes, []string{"qlabt1"}) {
		t.Fatalf("the second lab: %+v", second)
	}
	hosts, err := os.ReadFile("/etc/hosts")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(hosts), "127.0.0.201 qlabt1 ") {
		t.Errorf("/etc/hosts does not name the second lab's node:\n%s", hosts)
	}
	job := cmdTimeout(t, 60*time.Second, cleanEnv(second.Environ()...), "srun", "-N1", "printenv", "SLURMD_NODENAME")
	if out, _, err := output(job); err != nil || strings.TrimSpace(out) != "qlabt1" {
		t.Fatalf("a job on the second lab printed %q: %v", out, err)
	}
	if _, err := lab.Detect(t.Context()); err != nil {
		t.Fatalf("the first lab, beside the second: %v", err)
	}
	foreign.answers(t)

	// 3. Down: /etc as before, nothing of the second lab left.
	if err := down(); err != nil {
		t.Fatal(err)
	}
	same(t, "after lab/down.sh", before, snapshot(t, "/etc"))
	if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("lab/down.sh left %s (%v)", dir, err)
	}
	if pids := processesWithEnv("SLURM_CONF=" + second.Conf); len(pids) > 0 {
		t.Errorf("processes of the second lab left: %v", pids)
	}
	foreign.answers(t)
	if _, err := lab.Detect(t.Context()); err != nil {
		t.Fatalf("the first lab, after the second went down: %v", err)
	}
}

// foreignSLURM is a plain TCP listener on SLURM's ports: "another SLURM"
// as far as a port check can tell.
type foreignSLURM struct {
	ports    []int
	accepted chan int // the port of each connection accepted
}

// listenForeign listens on every port not in use already (one in use
// stands for the foreign SLURM by itself) until the test ends.
func listenForeign(t *testing.T, ports ...int) *foreignSLURM {
	t.Helper()
	f := &foreignSLURM{accepted: make(chan int, 16)}
	for _, p := range ports {
		ln, err := net.Listen("tcp", ":"+strconv.Itoa(p))
		if errors.Is(err, syscall.EADDRINUSE) {
			t.Logf("port %d is in use already: that stands for the foreign SLURM", p)
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ln.Close() })
		f.ports = append(f.ports, p)
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				c.Close()
				select {
				case f.accepted <- p:
				default:
				}
			}
		}()
	}
	return f
}

// answers checks that each of the stand-in's listeners still accepts.
func (f *foreignSLURM) answers(t *testing.T) {
	t.Helper()
	for _, p := range f.ports {
		c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(p), 5*time.Second)
		if err != nil {
			t.Fatalf("the foreign SLURM's port %d: %v", p, err)
		}
		c.Close()
		select {
		case got := <-f.accepted:
			if got != p {
				t.Fatalf("dialled %d, the listener of %d accepted", p, got)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("port %d: the foreign listener did not accept (something else owns the port now)", p)
		}
	}
}

// freePort returns a TCP port nothing listens on now.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", ":0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// snapshot describes every entry under root: type, mode, owner, and the
// content's hash (a symbolic link's target).
func snapshot(t *testing.T, root string) map[string]string {
	t.Helper()
	m := map[string]string{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			m[path] = "error: " + err.Error()
			return nil
		}
		info, err := d.Info()
		if err != nil {
			m[path] = "error: " + err.Error()
			return nil
		}
		desc := info.Mode().String()
		if st, ok := info.Sys().(*syscall.Stat_t); ok {
			desc += fmt.Sprintf(" %d:%d", st.Uid, st.Gid)
		}
		switch {
		case info.Mode()&fs.ModeSymlink != 0:
			target, _ := os.Readlink(path)
			desc += " -> " + target
		case info.Mode().IsRegular():
			b, err := os.ReadFile(path)
			if err != nil {
				desc += " unreadable: " + err.Error()
			} else {
				desc += fmt.Sprintf(" %x", sha256.Sum256(b))
			}
		}
		m[path] = desc
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// same fails the test naming every entry that differs.
func same(t *testing.T, when string, before, after map[string]string) {
	t.Helper()
	var diffs []string
	for _, p := range slices.Sorted(maps.Keys(before)) {
		if a, ok := after[p]; !ok {
			diffs = append(diffs, "removed "+p)
		} else if a != before[p] {
			diffs = append(diffs, fmt.Sprintf("changed %s: %s -> %s", p, before[p], a))
		}
	}
	for _, p := range slices.Sorted(maps.Keys(after)) {
		if _, ok := before[p]; !ok {
			diffs = append(diffs, "added "+p)
		}
	}
	if len(diffs) > 0 {
		t.Errorf("/etc %s differs from before:\n%s", when, strings.Join(diffs, "\n"))
	}
}

// processesWithEnv lists the live processes whose environment holds kv.
func processesWithEnv(kv string) []string {
	var pids []string
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		env, err := os.ReadFile("/proc/" + e.Name() + "/environ")
		if err != nil || !slices.ContainsFunc(bytes.Split(env, []byte{0}), func(b []byte) bool { return string(b) == kv }) {
			continue
		}
		stat, _ := os.ReadFile("/proc/" + e.Name() + "/stat")
		if i := bytes.LastIndexByte(stat, ')'); i > 0 && len(stat) > i+2 && stat[i+2] == 'Z' {
			continue
		}
		pids = append(pids, e.Name())
	}
	return pids
}
