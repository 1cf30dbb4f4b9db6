package cli

import (
	"bytes"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/qlaunch/qlaunch/launcher/wire"
	"github.com/qlaunch/qlaunch/topology"
)

// TestManualModeLinksCompress runs manual-mode trees (qlaunch manager, then
// qlaunch server dialling it, real processes) and sends a compressible
// 1 MiB payload through them: the server's wire counters (its metrics)
// show its links sending compressed frames, as the bootstrap's and the
// clients' do; with --compression none, the same counters show them
// plain (the counters tell the two apart).
func TestManualModeLinksCompress(t *testing.T) {
	payload := filepath.Join(t.TempDir(), "payload")
	if err := os.WriteFile(payload, bytes.Repeat([]byte("qlaunch manual mode "), 1<<16), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name       string
		flags      []string
		compressed bool
	}{
		{"default", nil, true},
		{"none", []string{"--compression", "none"}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			env := []string{"QLAUNCH_SECRET_FILE=" + dir + "/secret", "QLAUNCH_ADDR=", "QLAUNCH_ADDRESS_FILE=" + dir + "/addr"}
			mport, wport, sport := e2eFreePort(t), e2eFreePort(t), e2eFreePort(t)
			metrics := "127.0.0.1:" + strconv.Itoa(e2eFreePort(t))
			stopManager := startUntilReady(t, env, append([]string{"manager", "-n", "1", "-p", strconv.Itoa(mport), "-w", strconv.Itoa(wport), "-i", "127.0.0.1"}, c.flags...)...)
			defer stopManager()
			stopServer := startUntilReady(t, env, append([]string{"server", "-p", strconv.Itoa(sport), "-i", "127.0.0.1", "--metrics", metrics, "127.0.0.1:" + strconv.Itoa(mport)}, c.flags...)...)
			defer stopServer()
			r := e2eRun(t, env, "", "submit", "--input", payload, "len")
			if r.code != 0 || r.stdout != strconv.Itoa(20<<16)+"\n" {
				t.Fatalf("submit len: %+v", r)
			}
			r = e2eRun(t, env, "", "submit", "--input", payload, "echo")
			if r.code != 0 || len(r.stdout) != 20<<16+1 {
				t.Fatalf("submit echo: exit %d, %d bytes, %s", r.code, len(r.stdout), r.stderr)
			}
			resp, err := http.Get("http://" + metrics + "/metrics")
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			payloadOut := metricValue(t, body, `qlaunch_wire_payload_bytes_total{direction="out"}`)
			wireOut := metricValue(t, body, `qlaunch_wire_bytes_total{direction="out"}`)
			framesOut := metricValue(t, body, `qlaunch_wire_compressed_frames_total{direction="out"}`)
			// Out of the server: the payload down to the manager, the echo
			// back to the client, 2 MiB and more.
			if payloadOut < 2<<20 {
				t.Fatalf("the server sent %v payload bytes, want the two 1 MiB payloads", payloadOut)
			}
			if c.compressed && (framesOut == 0 || wireOut > payloadOut/4) {
				t.Errorf("manual-mode links send plain: %v payload bytes out as %v on the wire, %v compressed frames", payloadOut, wireOut, framesOut)
			}
			if !c.compressed && (framesOut != 0 || wireOut < payloadOut) {
				t.Errorf("--compression none: %v payload bytes out as %v on the wire, %v compressed frames", payloadOut, wireOut, framesOut)
			}
		})
	}
}

func metricValue(t *testing.T, body []byte, name string) float64 {
	t.Helper()
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + ` ([0-9.e+]+)$`).FindSubmatch(body)
	if m == nil {
		t.Fatalf("no %s in the metrics:\n%s", name, body)
	}
	v, err := strconv.ParseFloat(string(m[1]), 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestLinkDefaultsInOnePlace checks that every link's frame options come
// from one place: a role with no topology (manual mode) gets an empty
// topology file's, whose threshold is the wire's own default, and a
// spawned worker rank is given the same.
func TestLinkDefaultsInOnePlace(t *testing.T) {
	e := &env{getenv: func(string) string { return "" }}
	var lf linkFlags
	manual, files, err := lf.config(e, nil)
	if err != nil {
		t.Fatal(err)
	}
	empty, _, err := lf.config(e, topology.Default())
	if err != nil {
		t.Fatal(err)
	}
	client, err := wireOptions(topology.Default().Runtime)
	if err != nil {
		t.Fatal(err)
	}
	want := wire.Options{Compression: wire.CompressZstd}
	for name, got := range map[string]wire.Options{"manual": manual.Wire, "empty topology": empty.Wire, "client": client} {
		if got != want {
			t.Errorf("%s: wire options %+v, want %+v (zstd, the wire's threshold)", name, got, want)
		}
	}
	if topology.DefaultCompressThreshold != 0 {
		t.Errorf("the topology has a threshold default of its own (%d): 0 leaves it to the wire (%d)", topology.DefaultCompressThreshold, wire.DefaultThreshold)
	}
	if args := strings.Join(lf.args(manual, files), " "); !strings.Contains(args, "--compression zstd") {
		t.Errorf("a spawned worker rank is not given the compression: %q", args)
	}
	lf.compression, lf.compressThreshold = "s2", 512
	flagged, _, err := lf.config(e, nil)
	if err != nil || flagged.Wire != (wire.Options{Compression: wire.CompressS2, Threshold: 512}) {
		t.Errorf("--compression s2 --compress-threshold 512: %+v, %v", flagged.Wire, err)
	}
	if args := strings.Join(lf.args(flagged, files), " "); !strings.Contains(args, "--compression s2 --compress-threshold 512") {
		t.Errorf("a spawned worker rank is not given the flags: %q", args)
	}
	lf.compression = "lz4"
	if _, _, err := lf.config(e, nil); err == nil || exitCode(err) != 2 {
		t.Errorf("--compression lz4: %v, want a usage error", err)
	}
	// A topology's settings reach the link, and flags win over them
	// (bootstrap takes its link from here too, not from the topology
	// alone).
	topo := topology.Default()
	topo.Runtime.Compression, topo.Runtime.Heartbeat = topology.CompressS2, 3*time.Second
	lf = linkFlags{compression: "none"}
	got, _, err := lf.config(e, topo)
	if err != nil || got.Wire.Compression != wire.CompressNone || got.Heartbeat != 3*time.Second {
		t.Errorf("topology s2 and heartbeat 3s, --compression none: %+v, heartbeat %v, %v", got.Wire, got.Heartbeat, err)
	}
}
