package lab_test

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/qlaunch/qlaunch/lab"
)

// TestSbatchScript: `sbatch --wait` of the script `qlaunch script slurm`
// prints for a shipped topology runs its client to completion, the job
// exits 0 and no qlaunch process is left.
func TestSbatchScript(t *testing.T) {
	c := lab.Require(t, os.Getenv)
	needNodes(t, c, 3)
	for _, cfg := range []string{"slurm-cpu.toml", "hierarchy.toml"} {
		t.Run(cfg, func(t *testing.T) {
			topo := filepath.Join(bins.root, "configs", cfg)
			if _, err := os.Stat(topo); err != nil {
				t.Skipf("configs/%s not in the tree yet", cfg)
			}
			bin := qlaunch(t)
			script, stderr, err := output(cmd(t, 30*time.Second, cleanEnv(), bin, "script", "slurm", topo, "--nodes", "3",
				"--", bin, "submit", "fanout", "10", "2"))
			if err != nil && strings.Contains(stderr, "not built yet") {
				t.Skip("qlaunch script is not built yet")
			}
			if err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			path := filepath.Join(dir, "job.sh")
			// The script names the binary as PATH finds it.
			if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
				t.Fatal(err)
			}
			env := cleanEnv("PATH=" + bins.dir + ":" + os.Getenv("PATH"))
			outFile := filepath.Join(dir, "job.out")
			c := slurm(t, 180*time.Second, env, "sbatch", "--wait", "-o", outFile, path)
			c.Dir = dir
			if _, _, err := output(c); err != nil {
				b, _ := os.ReadFile(outFile)
				t.Fatalf("%v\njob output:\n%s", err, b)
			}
			b, err := os.ReadFile(outFile)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(b), "100\n") {
				t.Fatalf("the client's result 100 is not in the job output:\n%s", b)
			}
		})
	}
}

// TestSbatchScriptRankMissing: in a job from `qlaunch script slurm`, one
// worker rank never starts (its qlaunch hangs before it runs, as on a node
// that cannot run it). The job fails within the ready timeout, and its
// output names that rank and its host: qlaunch wait reports it. Nothing is
// left running.
func TestSbatchScriptRankMissing(t *testing.T) {
	c := lab.Require(t, os.Getenv)
	needNodes(t, c, 3)
	topo := filepath.Join(bins.root, "configs", "slurm-cpu.toml")
	bin := qlaunch(t)
	dir := t.TempDir()
	// The job runs this in place of qlaunch: the bootstrap of the last
	// rank hangs (under a name that carries the binaries' directory, so
	// that a leftover is found); everything else is the real qlaunch.
	wrapper := filepath.Join(bins.dir, "qlaunch-hung-rank")
	const readyTimeout = 10 * time.Second
	script, _, err := output(cmd(t, 30*time.Second, cleanEnv(), bin, "script", "slurm", topo, "--nodes", "3",
		"--qlaunch", wrapper, "--timeout", readyTimeout.String(), "--", bin, "submit", "fanout", "10", "2"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^#SBATCH --ntasks=(\d+)$`).FindStringSubmatch(script)
	if m == nil {
		t.Fatalf("no --ntasks in the script:\n%s", script)
	}
	ntasks, _ := strconv.Atoi(m[1])
	hung := ntasks - 1
	nodeFile := filepath.Join(dir, "hung-node")
	wrap := fmt.Sprintf(`#!/bin/bash
if [ "${1%%.toml}" != "$1" ] && [ "${SLURM_PROCID:-}" = %d ]; then
  echo "$SLURMD_NODENAME" >%q
  exec -a %q sleep 300
fi
exec %q "$@"
`, hung, nodeFile, filepath.Join(bins.dir, "hung-rank-sleep"), bin)
	if err := os.WriteFile(wrapper, []byte(wrap), 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "job.sh")
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	outFile := filepath.Join(dir, "job.out")
	job := slurm(t, 120*time.Second, cleanEnv(), "sbatch", "--wait", "-o", outFile, path)
	job.Dir = dir
	start := time.Now()
	_, _, err = output(job)
	took := time.Since(start)
	b, _ := os.ReadFile(outFile)
	if err == nil {
		t.Fatalf("the job succeeded with rank %d hung; output:\n%s", hung, b)
	}
	node, rerr := os.ReadFile(nodeFile)
	if rerr != nil {
		t.Fatalf("rank %d never ran the wrapper: %v; job output:\n%s", hung, rerr, b)
	}
	want := fmt.Sprintf("qlaunch: wait: timed out after %v: %d of %d ranks joined; missing:\n  rank %d (worker) on %s: never connected\n",
		readyTimeout, ntasks-1, ntasks, hung, strings.TrimSpace(string(node)))
	if !strings.Contains(string(b), want) {
		t.Fatalf("the job output does not name the missing rank; want %q in:\n%s", want, b)
	}
	// The runtime stops soon after the ready timeout, not at the sleep's
	// end: from the first rank's start to the last one's stop, as the
	// ranks' logs say (sbatch --wait itself polls the job's end at growing
	// intervals, so its own duration says little).
	var first, last time.Time
	for _, m := range regexp.MustCompile(`(?m)^time=(\S+) `).FindAllStringSubmatch(string(b), -1) {
		at, err := time.Parse(time.RFC3339Nano, m[1])
		if err != nil {
			continue
		}
		if first.IsZero() || at.Before(first) {
			first = at
		}
		if at.After(last) {
			last = at
		}
	}
	if ran := last.Sub(first); first.IsZero() || ran > readyTimeout+10*time.Second {
		t.Fatalf("the runtime ran %v (ready timeout %v); job output:\n%s", ran, readyTimeout, b)
	}
	t.Logf("the runtime ran %v with a ready timeout of %v; sbatch --wait returned after %v",
		last.Sub(first).Round(10*time.Millisecond), readyTimeout, took.Round(time.Second))
}
