package metrics_test

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/qlaunch/qlaunch/kernels"
	"github.com/qlaunch/qlaunch/launcher"
	"github.com/qlaunch/qlaunch/launcher/launchertest"
	"github.com/qlaunch/qlaunch/launcher/metrics"
	"github.com/qlaunch/qlaunch/launcher/wire"
)

// scrape serves mon's metrics on a loopback port, scrapes /metrics once
// over HTTP and returns every sample as "name{labels}" → value.
func scrape(t *testing.T, mon *launcher.Monitor) map[string]float64 {
	t.Helper()
	ln, err := metrics.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	served := make(chan error, 1)
	go func() { served <- metrics.Serve(ctx, ln, mon, slog.New(slog.NewTextHandler(t.Output(), nil))) }()
	defer func() {
		cancel()
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	}()
	resp, err := http.Get("http://" + ln.Addr().String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape: %v %s\n%s", err, resp.Status, body)
	}
	samples := map[string]float64{}
	sc := bufio.NewScanner(bytes.NewReader(body))
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("sample %q: %v", line, err)
		}
		samples[line[:i]] = v
	}
	return samples
}

// TestScrapeAfterWorkload runs a known workload (100 noop tasks, 5 that
// fail) through a tree, scrapes the server's endpoint over HTTP and checks
// the counters exactly.
func TestScrapeAfterWorkload(t *testing.T) {
	for _, comp := range []wire.Compression{wire.CompressNone, wire.CompressZstd} {
		t.Run(comp.String(), func(t *testing.T) {
			mon := launcher.NewMonitor()
			shape := launchertest.Shape{Workers: []int{2}, Managers: []launchertest.Shape{{Workers: []int{1, 3}}}}
			tr := launchertest.Start(t, shape, launchertest.Options{Monitor: mon, Wire: wire.Options{Compression: comp, Threshold: 64}})
			c := tr.Client()
			ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
			defer cancel()
			tasks := make([]kernels.Task, 100)
			for i := range tasks {
				tasks[i] = kernels.Task{Kernel: "noop"}
			}
			// One task with a large, compressible payload.
			tasks[0] = kernels.Task{Kernel: "echo", Payload: bytes.Repeat([]byte("qlaunch "), 8192)}
			f, err := c.Map(ctx, tasks)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.Wait(ctx, f); err != nil {
				t.Fatal(err)
			}
			for range 5 {
				f, err := c.Submit(ctx, kernels.Task{Kernel: "fail", Args: []string{"on purpose"}})
				if err != nil {
					t.Fatal(err)
				}
				if _, err := c.Wait(ctx, f); err == nil {
					t.Fatal("fail kernel succeeded")
				}
			}
			got := scrape(t, mon)
			want := map[string]float64{
				"qlaunch_tasks_submitted_total":                        105,
				"qlaunch_tasks_completed_total":                        100,
				"qlaunch_tasks_failed_total":                           5,
				"qlaunch_tasks_cancelled_total":                        0,
				"qlaunch_tasks_retried_total":                          0,
				"qlaunch_queue_depth":                                  0,
				"qlaunch_tasks_in_flight":                              0,
				"qlaunch_ranks":                                        5,
				"qlaunch_slots":                                        6,
				"qlaunch_clients":                                      1,
				"qlaunch_scrape_status_errors_total":                   0,
				`qlaunch_rank_up{host="host0",rank="0",role="server"}`: 1,
			}
			for k, v := range want {
				if g, ok := got[k]; !ok || g != v {
					t.Errorf("%s = %v (present %v), want %v", k, g, ok, v)
				}
			}
			// Every worker rank has a line; their done counts add up to
			// the workload, their slots to the tree's.
			var done, slots float64
			workers := 0
			for k, v := range got {
				if strings.HasPrefix(k, "qlaunch_rank_tasks_done_total{") && strings.Contains(k, `role="worker"`) {
					done += v
					workers++
				}
				if strings.HasPrefix(k, "qlaunch_rank_slots{") {
					slots += v
				}
				if strings.HasPrefix(k, "qlaunch_rank_heartbeat_age_seconds{") && (v < 0 || v > 60) {
					t.Errorf("%s = %v", k, v)
				}
			}
			if done != 105 || workers != 3 || slots != 6 {
				t.Errorf("workers %d report %v tasks done and %v slots, want 3, 105, 6", workers, done, slots)
			}
			// Bytes before and after compression: plain frames cost their
			// payload, a 6-byte header and, after the handshake, a 16-byte
			// MAC tag; compressed ones less than their payload.
			for _, dir := range []string{"in", "out"} {
				payload := got[`qlaunch_wire_payload_bytes_total{direction="`+dir+`"}`]
				onWire := got[`qlaunch_wire_bytes_total{direction="`+dir+`"}`]
				frames := got[`qlaunch_wire_frames_total{direction="`+dir+`"}`]
				compressed := got[`qlaunch_wire_compressed_frames_total{direction="`+dir+`"}`]
				if payload < 64*1024 || frames == 0 {
					t.Errorf("%s: payload %v bytes in %v frames, want over 64 KiB", dir, payload, frames)
				}
				switch comp {
				case wire.CompressNone:
					tags := (onWire - payload - 6*frames) / 16
					if onWire != payload+6*frames+16*tags || tags < frames-8 || tags > frames || compressed != 0 {
						t.Errorf("%s: %v bytes on the wire, %v compressed frames; want payload %v + 6 × %v frames + 16 × (all but the handshakes' few), none compressed", dir, onWire, compressed, payload, frames)
					}
				default:
					if onWire >= payload/4 || compressed == 0 {
						t.Errorf("%s: %v bytes on the wire for %v of payload (%v compressed frames); want under a quarter", dir, onWire, payload, compressed)
					}
				}
			}
		})
	}
}

// TestNotRunning: a monitor of no running server yields no qlaunch metrics
// (the Go runtime's still).
func TestNotRunning(t *testing.T) {
	got := scrape(t, launcher.NewMonitor())
	for k := range got {
		if strings.HasPrefix(k, "qlaunch_") {
			t.Errorf("sample %s from a stopped server", k)
		}
	}
	if _, ok := got["go_goroutines"]; !ok {
		t.Errorf("no go_goroutines sample")
	}
}
