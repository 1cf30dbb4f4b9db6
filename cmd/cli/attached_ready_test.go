package cli

import (
	"bytes"
	"os/exec"
	"strings"
	"testing"

	"github.com/qlaunch/qlaunch/launcher"
)

// TestRunWhileReadyInterruptsCommand: the command starts while the
// worker ranks start; when the runtime cannot become ready (its only
// rank's process ends), the command is interrupted and the run fails
// with the runtime's error.
func TestRunWhileReadyInterruptsCommand(t *testing.T) {
	a, err := launcher.LaunchAttached(launcher.AttachedConfig{
		NodeConfig: launcher.NodeConfig{Host: "here"}, Workers: []launcher.WorkerSpec{{Rank: 1, Slots: 1}}, Restarts: -1,
		Command: func(launcher.WorkerSpec, string, string) *exec.Cmd { return exec.Command("/bin/false") },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	var stdout, stderr bytes.Buffer
	e := &env{stdin: strings.NewReader(""), stdout: &stdout, stderr: &stderr, getenv: func(string) string { return "" }}
	readyCalled := false
	code, runErr, err := runWhileReady(t.Context(), e, a, []string{"sh", "-c", "echo started; exec sleep 60"}, nil,
		func() { readyCalled = true })
	if err == nil || !strings.Contains(err.Error(), "before the runtime was ready") {
		t.Fatalf("err = %v, want the rank's failure before the runtime was ready", err)
	}
	if readyCalled {
		t.Fatal("ready called")
	}
	// sleep got the SIGINT, or was interrupted before it started: 128+2
	// either way (runChild).
	if runErr != nil || code != 130 {
		t.Fatalf("command: code %d, err %v, want 130 (interrupted); stdout %q stderr %q", code, runErr, stdout.String(), stderr.String())
	}
}
