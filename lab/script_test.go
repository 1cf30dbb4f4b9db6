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

// TestSbatchScript: sbatch of the script `qlaunch script slurm`
// prints for a shipped topology runs its client to completion, the job
// exits 0 and no qlaunch process is left.
func TestSbatchScript(t *testing.T) {
	c := lab.Require(t, os.Getenv)
	needNodes(t, c, 3)
	for _, cfg := range []string{"slurm-cpu.toml", "hierarchy.toml"} {
		t.Run(cfg, func(t *testing.T) {
			topo := filepath.Join(bins.root, "configs", cfg)
			bin := qlaunch(t)
			script, _, err := output(cmd(t, 30*time.Second, cleanEnv(), bin, "script", "slurm", topo, "--nodes", "3",
				"--", bin, "submit", "fanout", "10", "2"))
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
			if _, err := sbatchWait(t, 180*time.Second, env, dir, "-o", outFile, path); err != nil {
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
	start := time.Now()
	_, err = sbatchWait(t, 120*time.Second, cleanEnv(), dir, "-o", outFile, path)
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
	// ranks' logs say (the job's end is found by polling, so the wait's
	// own duration says a little more).
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
	t.Logf("the runtime ran %v with a ready timeout of %v; the job ended %v after its submission",
		last.Sub(first).Round(10*time.Millisecond), readyTimeout, took.Round(time.Second))
}

// jobTimes returns how long job id ran, from its StartTime to its EndTime
// (whole seconds: what scontrol shows).
func jobTimes(t *testing.T, id string) time.Duration {
	t.Helper()
	out, _, err := output(cmd(t, 30*time.Second, cleanEnv(), "scontrol", "show", "job", "-o", id))
	if err != nil {
		t.Fatal(err)
	}
	var start, end time.Time
	for _, f := range strings.Fields(out) {
		k, v, _ := strings.Cut(f, "=")
		switch k {
		case "StartTime":
			start, err = time.ParseInLocation("2006-01-02T15:04:05", v, time.Local)
		case "EndTime":
			end, err = time.ParseInLocation("2006-01-02T15:04:05", v, time.Local)
		}
		if err != nil {
			t.Fatalf("scontrol show job %s: %s: %v", id, f, err)
		}
	}
	if start.IsZero() || end.IsZero() {
		t.Fatalf("scontrol show job %s: no StartTime or EndTime:\n%s", id, out)
	}
	return end.Sub(start)
}

// sbatchScript writes the script qlaunch script slurm prints for topo
// with the client, submits it and waits for its end (sbatchWait), and
// returns the job's id, its output, how long it ran, and the job's failure.
func sbatchScript(t *testing.T, topo string, client ...string) (id, out string, ran time.Duration, err error) {
	t.Helper()
	bin := qlaunch(t)
	script, _, serr := output(cmd(t, 30*time.Second, cleanEnv(), bin, append([]string{"script", "slurm", topo, "--nodes", "3", "--"}, client...)...))
	if serr != nil {
		t.Fatal(serr)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "job.sh")
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	outFile := filepath.Join(dir, "job.out")
	env := cleanEnv("PATH=" + bins.dir + ":" + os.Getenv("PATH"))
	id, err = sbatchWait(t, 120*time.Second, env, dir, "-o", outFile, path)
	if id == "" {
		t.Fatal(err)
	}
	b, rerr := os.ReadFile(outFile)
	if rerr != nil {
		t.Fatal(rerr)
	}
	return id, string(b), jobTimes(t, id), err
}

// TestSbatchScriptRanksFailAtStart: in a job from qlaunch script slurm
// whose ranks all fail at start (the topology's network names no
// interface), the job ends within 5 s, not at the ready timeout, and its
// output quotes the first rank's error.
func TestSbatchScriptRanksFailAtStart(t *testing.T) {
	c := lab.Require(t, os.Getenv)
	needNodes(t, c, 3)
	src, err := os.ReadFile(filepath.Join(bins.root, "configs", "slurm-cpu.toml"))
	if err != nil {
		t.Fatal(err)
	}
	topo := filepath.Join(t.TempDir(), "bad-network.toml")
	text := strings.Replace(string(src), "[runtime]\n", "[runtime]\nnetwork = \"qlnone0\"\n", 1)
	if err := os.WriteFile(topo, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	_, out, ran, err := sbatchScript(t, topo, qlaunch(t), "submit", "fanout", "10", "2")
	if err == nil {
		t.Fatalf("the job succeeded with every rank failing; output:\n%s", out)
	}
	m := regexp.MustCompile(`(?m)^qlaunch: wait: .*first rank error: rank \d+ on n\d.*no interface qlnone0.*$`).FindString(out)
	if m == "" {
		t.Fatalf("the job output does not quote the first rank's error from qlaunch wait:\n%s", out)
	}
	if ran > 5*time.Second {
		t.Fatalf("the job ran %v (want at most 5 s); output:\n%s", ran, out)
	}
	t.Logf("the job ran %v and said: %s", ran, m)
}

// TestSbatchScriptRuntimeDiesDuringClient: the runtime's step is killed
// while the client runs (a client that would sleep 300 s); the job stops
// the client at once and fails, saying the runtime ended.
func TestSbatchScriptRuntimeDiesDuringClient(t *testing.T) {
	c := lab.Require(t, os.Getenv)
	needNodes(t, c, 3)
	topo := filepath.Join(bins.root, "configs", "slurm-cpu.toml")
	_, out, ran, err := sbatchScript(t, topo, "sh", "-c", `scancel --signal=KILL "$SLURM_JOB_ID.0" && exec sleep 300`)
	if err == nil {
		t.Fatalf("the job succeeded with its runtime killed; output:\n%s", out)
	}
	if !strings.Contains(out, "qlaunch: the runtime ended while the client ran") {
		t.Fatalf("the job output does not say the runtime ended:\n%s", out)
	}
	if ran > 10*time.Second {
		t.Fatalf("the job ran %v: the client was not stopped; output:\n%s", ran, out)
	}
	t.Logf("the job ran %v", ran)
}
