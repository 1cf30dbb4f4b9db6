package lab_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/qlaunch/qlaunch/lab"
)

// readmeCluster returns the README's cluster section: the salloc line's
// options, and the lines that run in the allocation's shell.
func readmeCluster(t *testing.T) (salloc []string, body []string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(bins.root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)takes its role from the topology file:\n\n```sh\n(.*?)```").FindSubmatch(b)
	if m == nil {
		t.Fatal("README.md: no sh block after \"takes its role from the topology file:\"")
	}
	lines := strings.Split(strings.TrimSpace(string(m[1])), "\n")
	first, _, _ := strings.Cut(lines[0], "#")
	f := strings.Fields(first)
	if len(f) == 0 || f[0] != "salloc" {
		t.Fatalf("README.md: the cluster section starts with %q, not salloc", lines[0])
	}
	return f[1:], lines[1:]
}

// TestReadmeClusterSection runs the README's cluster section on the lab as
// printed: in the allocation salloc gives, each line in turn, in one
// folder; twice, then once with the runtime killed (SIGKILL to srun, its
// ranks killed with the allocation) instead of stopped, then once more.
// Every run prints the client's 10000.
func TestReadmeClusterSection(t *testing.T) {
	c := lab.Require(t, os.Getenv)
	needNodes(t, c, 3)
	salloc, body := readmeCluster(t)
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "configs"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"slurm-cpu.toml"} {
		b, err := os.ReadFile(filepath.Join(bins.root, "configs", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "configs", f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	qlaunch(t) // bins.dir/qlaunch, first on PATH
	env := cleanEnv("PATH=" + bins.dir + ":" + os.Getenv("PATH"))
	stop := body[len(body)-1]
	if !strings.HasPrefix(stop, "kill -INT %1") {
		t.Fatalf("the section's last line %q does not stop the runtime with kill -INT %%1", stop)
	}
	killed := append(append([]string{}, body[:len(body)-1]...), "kill -KILL %1; wait")
	for i, lines := range [][]string{body, body, killed, body} {
		script := "set -e\n" + strings.Join(lines, "\n") + "\n"
		job := slurm(t, 120*time.Second, env, "salloc", append(append([]string{}, salloc...), "bash", "-c", script)...)
		job.Dir = dir
		start := time.Now()
		out, stderr, err := output(job)
		if err != nil {
			t.Fatalf("run %d:\n%s\n%v", i+1, script, err)
		}
		if !regexp.MustCompile(`(?m)^10000$`).MatchString(out) {
			t.Fatalf("run %d printed no 10000:\n%s\nstderr:\n%s", i+1, out, stderr)
		}
		t.Logf("run %d (%s) took %v", i+1, lines[len(lines)-1], time.Since(start).Round(100*time.Millisecond))
	}
}
