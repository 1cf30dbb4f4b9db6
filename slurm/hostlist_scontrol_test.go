package slurm

import (
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// scontrol runs `scontrol show WHAT ARG` and returns its stdout, trimmed.
func scontrol(t *testing.T, what, arg string) string {
	t.Helper()
	out, err := exec.Command("scontrol", "show", what, arg).Output()
	if err != nil {
		t.Fatalf("scontrol show %s %q: %v", what, arg, err)
	}
	return strings.TrimSpace(string(out))
}

// TestAgainstScontrol compares this package with the installed SLURM on
// random inputs, where SLURM is installed and answers without a cluster.
// Expressions with a suffix after ']', or that SLURM accepts by accident,
// differ on purpose (see the package documentation) and are not drawn.
func TestAgainstScontrol(t *testing.T) {
	if _, err := exec.LookPath("scontrol"); err != nil {
		t.Skip("scontrol not installed")
	}
	// scontrol reads a configuration even to expand a hostlist, and retries
	// for a minute when there is none: give it a minimal one of its own (no
	// cluster need run, and the machine's, if any, is not read).
	conf := filepath.Join(t.TempDir(), "slurm.conf")
	if err := os.WriteFile(conf, []byte("ClusterName=hostlist\nSlurmctldHost=localhost\nNodeName=n1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SLURM_CONF", conf)
	if out, err := exec.Command("scontrol", "show", "hostlist", "n1,n2").Output(); err != nil || strings.TrimSpace(string(out)) != "n[1-2]" {
		t.Skipf("scontrol does not answer offline: %q, %v", out, err)
	}
	r := rand.New(rand.NewPCG(7, 8))
	t.Log("seed 7,8")
	for i := range 60 {
		hosts := randomHosts(r)
		if len(hosts) == 0 {
			continue
		}
		arg := strings.Join(hosts, ",")
		if got, want := Compress(hosts), scontrol(t, "hostlist", arg); got != want {
			t.Errorf("case %d: Compress(%q) = %q; scontrol show hostlist: %q", i, arg, got, want)
		}
		if got, want := CompressSorted(hosts), scontrol(t, "hostlistsorted", arg); got != want {
			t.Errorf("case %d: CompressSorted(%q) = %q; scontrol show hostlistsorted: %q", i, arg, got, want)
		}
	}
	checked := 0
	for checked < 60 {
		expr := randomExpr(r)
		hosts, err := Expand(expr)
		if err != nil || strings.Contains(expr, "]b") || strings.Contains(expr, "]-") || strings.Contains(expr, "]_") || strings.Contains(expr, "]]") {
			continue
		}
		checked++
		want := strings.Fields(scontrol(t, "hostnames", expr))
		if !slices.Equal(hosts, want) {
			t.Errorf("Expand(%q) = %q; scontrol show hostnames: %q", expr, hosts, want)
		}
	}
}
