package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/qlaunch/qlaunch/kernels"
	"github.com/qlaunch/qlaunch/launcher"
	"github.com/qlaunch/qlaunch/launcher/bench"
)

// startBenchRuntime starts an attached runtime with in-process worker
// ranks (one rank of 2 slots, as configs/local.toml on 2 cores) and
// returns the environment a client command finds it through.
func startBenchRuntime(t *testing.T) map[string]string {
	t.Helper()
	reg, err := kernels.NewRegistry(append(kernels.Builtin(), bench.Kernels()...)...)
	if err != nil {
		t.Fatal(err)
	}
	secret := filepath.Join(t.TempDir(), "secret")
	a, err := launcher.StartAttached(t.Context(), launcher.AttachedConfig{
		NodeConfig: launcher.NodeConfig{Host: "bench-test", Registry: reg}, InProcess: true, SecretFile: secret,
		Workers: []launcher.WorkerSpec{{Rank: 1, Slots: 2}},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	return map[string]string{"QLAUNCH_ADDR": a.Addr, "QLAUNCH_SECRET_FILE": secret}
}

func benchRun(t *testing.T, vars map[string]string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	e := &env{stdin: strings.NewReader(""), stdout: &out, stderr: &errb, getenv: func(k string) string { return vars[k] }}
	code = run(context.Background(), append([]string{"bench"}, args...), e)
	return code, out.String(), errb.String()
}

func TestBenchJSON(t *testing.T) {
	vars := startBenchRuntime(t)
	type line struct {
		workload, variant string
		tasks             int
		figures           []string
	}
	tests := []struct {
		args []string
		want []line
	}{
		{[]string{"--workload", "tiny", "--tasks", "300"}, []line{{"tiny", "", 300, []string{"tasks_per_s"}}}},
		{[]string{"--workload", "client-map", "--tasks", "200"}, []line{{"client-map", "", 200, []string{"tasks_per_s"}}}},
		{[]string{"--workload", "latency", "--tasks", "30"}, []line{{"latency", "", 30, []string{"median_us", "p99_us"}}}},
		{[]string{"--workload", "payload", "--tasks", "4", "--payload", "100000"}, []line{
			{"payload", "random", 4, []string{"MB_per_s"}},
			{"payload", "repetitive", 4, []string{"MB_per_s"}},
		}},
		{[]string{"--workload", "nested"}, []line{{"nested", "", 10100, []string{"tasks_per_s"}}}},
		{[]string{"--workload", "loopback", "--tasks", "500"}, []line{
			{"loopback", "round-trip", 2000, []string{"median_us", "p99_us"}},
			{"loopback", "pipelined", 500, []string{"msgs_per_s"}},
			{"loopback", "bulk", 64, []string{"MB_per_s"}},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.args[1], func(t *testing.T) {
			code, stdout, stderr := benchRun(t, vars, append(tc.args, "--repeat", "2", "--format", "json")...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			lines := strings.Split(strings.TrimSuffix(stdout, "\n"), "\n")
			// Ratios against the run's baselines come last: only payload
			// has one alone (repetitive against random).
			wantRatios := 0
			if tc.args[1] == "payload" {
				wantRatios = 1
			}
			ratios := 0
			for len(lines) > 0 && strings.HasPrefix(lines[len(lines)-1], `{"workload":"ratio",`) {
				lines, ratios = lines[:len(lines)-1], ratios+1
			}
			if ratios != wantRatios {
				t.Errorf("%d ratio lines, want %d:\n%s", ratios, wantRatios, stdout)
			}
			if len(lines) != 1+len(tc.want) {
				t.Fatalf("%d lines, want a header and %d:\n%s", len(lines), len(tc.want), stdout)
			}
			var h map[string]any
			if err := json.Unmarshal([]byte(lines[0]), &h); err != nil || h["workload"] != "header" {
				t.Fatalf("header %s (%v)", lines[0], err)
			}
			wantTree := "2 ranks: 1 server, 0 managers, 1 worker ranks; 2 worker slots; depth 1"
			if tc.args[1] == "loopback" {
				wantTree = "" // it needs no runtime, and dials none
			}
			if h["tree"] != wantTree {
				t.Errorf("header tree %q, want %q", h["tree"], wantTree)
			}
			for i, w := range tc.want {
				var m map[string]any
				if err := json.Unmarshal([]byte(lines[i+1]), &m); err != nil {
					t.Fatalf("line %d: %v: %s", i+1, err, lines[i+1])
				}
				variant, _ := m["variant"].(string)
				if m["workload"] != w.workload || variant != w.variant || m["tasks"] != float64(w.tasks) || m["repeat"] != float64(2) {
					t.Errorf("line %s, want workload %s variant %q tasks %d repeat 2", lines[i+1], w.workload, w.variant, w.tasks)
				}
				for _, k := range append([]string{"seconds"}, w.figures...) {
					for _, key := range []string{k, k + "_min", k + "_max"} {
						if v, ok := m[key].(float64); !ok || v <= 0 {
							t.Errorf("%s: %s = %v, want a positive number", lines[i+1], key, m[key])
						}
					}
				}
			}
			if stderr != "" {
				t.Errorf("stderr not empty when piped: %q", stderr)
			}
		})
	}
}

func TestBenchText(t *testing.T) {
	vars := startBenchRuntime(t)
	code, stdout, stderr := benchRun(t, vars, "--workload", "tiny", "--tasks", "100", "--repeat", "1")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{"machine: ", "tree:    2 ranks: 1 server, 0 managers, 1 worker ranks; 2 worker slots; depth 1\n", "go:      go", "build:   ", "WORKLOAD", "tiny    100", "tasks_per_s"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, stdout)
		}
	}
}

func TestBenchUsage(t *testing.T) {
	tests := []struct {
		name string
		args []string
		vars map[string]string
		code int
		want string
	}{
		{"unknown workload", []string{"--workload", "warp"}, nil, 2, `qlaunch: bench: unknown workload "warp" (want one of loopback, chain, tiny, client-map, latency, payload, nested, startup or all)` + "\n"},
		{"bad format", []string{"--format", "xml"}, nil, 2, "qlaunch: bench: unknown format \"xml\"\n"},
		{"bad repeat", []string{"--repeat", "0"}, nil, 2, "qlaunch: bench: --tasks must be ≥ 0, --payload and --repeat > 0\n"},
		{"argument", []string{"tiny"}, nil, 2, "qlaunch: bench: unexpected argument \"tiny\"\n"},
		{"no topology", []string{"--workload", "startup", "--topology", "/nonexistent.toml"}, nil, 2,
			"qlaunch: bench: startup: stat /nonexistent.toml: no such file or directory (set --topology)\n"},
		{"no runtime", []string{"--workload", "tiny", "--address-file", "/nonexistent/addr"}, nil, 1, "qlaunch: bench: no runtime found"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, _, stderr := benchRun(t, tc.vars, tc.args...)
			if code != tc.code || !strings.HasPrefix(stderr, tc.want) {
				t.Errorf("exit %d, stderr %q; want %d, %q", code, stderr, tc.code, tc.want)
			}
		})
	}
}
