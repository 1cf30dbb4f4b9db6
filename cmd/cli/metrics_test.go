package cli

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestRunMetrics: qlaunch run --metrics serves the server's metrics while
// the command runs; after two noop tasks the counters say so exactly.
func TestRunMetrics(t *testing.T) {
	topo, err := filepath.Abs("../../configs/local.toml")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	addr := "127.0.0.1:" + strconv.Itoa(e2eFreePort(t))
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, qlaunchBin, "run", "--metrics", addr, topo, "--",
		"sh", "-c", qlaunchBin+" submit noop && "+qlaunchBin+" submit noop && echo ran && { read x || true; }")
	cmd.Env = append(os.Environ(), "QLAUNCH_ADDRESS_FILE="+filepath.Join(dir, "addr"), "QLAUNCH_SECRET_FILE=", "QLAUNCH_ADDR=")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	defer stdin.Close()
	lines := bufio.NewScanner(stdout)
	for lines.Scan() && lines.Text() != "ran" {
	}
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		"\nqlaunch_tasks_submitted_total 2\n", "\nqlaunch_tasks_completed_total 2\n",
		"\nqlaunch_tasks_failed_total 0\n", "\nqlaunch_ranks 2\n",
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("no %q in the metrics:\n%s", strings.TrimSpace(want), body)
		}
	}
	stdin.Close()
	io.Copy(io.Discard, stdout)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("qlaunch run: %v\n%s", err, stderr.String())
	}
}
