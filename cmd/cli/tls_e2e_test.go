package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/qlaunch/qlaunch/launcher/launchertest"
)

// TestAttachedRunTLS runs qlaunch run on a topology with [tls] and short
// heartbeats: the worker ranks join over mutual TLS, the command's client
// finds the TLS files in its environment, and a client without them is
// refused with a message saying TLS is required.
func TestAttachedRunTLS(t *testing.T) {
	dir := t.TempDir()
	f := launchertest.TLSFiles(t, dir)
	topo := filepath.Join(dir, "tls.toml")
	text := fmt.Sprintf(`[runtime]
heartbeat = "200ms"
heartbeat_timeout = "2s"

[tls]
cert_file = %q
key_file = %q
ca_file = %q
verify_clients = true

[workers]
ranks_per_node = 2
slots_per_rank = 1
`, f.CertFile, f.KeyFile, f.CAFile)
	if err := os.WriteFile(topo, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	env := []string{"QLAUNCH_ADDRESS_FILE=" + filepath.Join(dir, "addr"), "QLAUNCH_SECRET_FILE=", "QLAUNCH_ADDR=",
		"QLAUNCH_TLS_CERT=", "QLAUNCH_TLS_KEY=", "QLAUNCH_TLS_CA="}
	r := e2eRun(t, env, "", "run", topo, "--", qlaunchBin, "submit", "fanout", "4", "2")
	if r.code != 0 || r.stdout != "16\n" {
		t.Fatalf("qlaunch run (TLS) … submit fanout 4 2: %+v", r)
	}
	// The command's environment names the files; without them, refused.
	script := `env -u QLAUNCH_TLS_CERT -u QLAUNCH_TLS_KEY -u QLAUNCH_TLS_CA ` + qlaunchBin + ` submit echo hi`
	r = e2eRun(t, env, "", "run", topo, "--", "sh", "-c", script)
	if r.code != 1 || !strings.Contains(r.stderr, "requires TLS") {
		t.Fatalf("plain client of a TLS runtime: %+v", r)
	}
	// Bad flags are bad usage.
	r = e2eRun(t, env, "", "run", "--tls-ca", filepath.Join(dir, "missing.pem"), topo, "--", "true")
	if r.code != 2 || !strings.Contains(r.stderr, "missing.pem") {
		t.Fatalf("qlaunch run --tls-ca missing: %+v", r)
	}
	r = e2eRun(t, env, "", "run", "--heartbeat", "1s", "--heartbeat-timeout", "1s", topo, "--", "true")
	if r.code != 2 || !strings.Contains(r.stderr, "two heartbeats") {
		t.Fatalf("qlaunch run --heartbeat-timeout below two heartbeats: %+v", r)
	}
	if left := e2eProcesses(qlaunchBin); len(left) > 0 {
		t.Fatalf("processes left after qlaunch run: %v", left)
	}
}
