package bench_test

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"testing"

	"github.com/qlaunch/qlaunch/launcher/bench"
)

// hopEnv makes this test binary run bench.ServeHop instead of the tests:
// the chain workload's processes are copies of the test binary.
const hopEnv = "QLAUNCH_BENCH_TEST_HOP"

func TestMain(m *testing.M) {
	if os.Getenv(hopEnv) == "1" {
		if err := bench.ServeHop(os.Args[1:], os.Stdin, os.Stdout, os.Stderr); err != nil {
			os.Stderr.WriteString(err.Error() + "\n")
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func TestChain(t *testing.T) {
	t.Setenv(hopEnv, "1")
	rs, err := bench.Run(t.Context(), nil, "chain", bench.Options{Repeat: 1, Hop: []string{os.Args[0]}})
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		variant string
		tasks   int
		figures []string
	}{
		{"round-trip", 2000, []string{"median_us", "p99_us"}},
		{"bulk", 64, []string{"MB_per_s"}},
	}
	if len(rs) != len(want) {
		t.Fatalf("%d results, want %d: %+v", len(rs), len(want), rs)
	}
	for i, w := range want {
		r := rs[i]
		if r.Workload != "chain" || r.Variant != w.variant || r.Tasks != w.tasks || strings.Join(figures(r), ",") != strings.Join(w.figures, ",") {
			t.Errorf("result %d = %s/%s %d tasks %v, want chain/%s %d tasks %v", i, r.Workload, r.Variant, r.Tasks, figures(r), w.variant, w.tasks, w.figures)
		}
		for _, f := range r.Figures {
			if !(f.Stat.Min > 0 && f.Stat.Min <= f.Stat.Median && f.Stat.Median <= f.Stat.Max) {
				t.Errorf("%s/%s %s = %+v, want 0 < min ≤ median ≤ max", r.Workload, r.Variant, f.Name, f.Stat)
			}
		}
	}
}

// startHop runs bench.ServeHop in this process and returns its address
// and a function that ends it and returns its error.
func startHop(t *testing.T, args ...string) (string, func() error) {
	t.Helper()
	return startHopLog(t, io.Discard, args...)
}

func startHopLog(t *testing.T, stderr io.Writer, args ...string) (string, func() error) {
	t.Helper()
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	done := make(chan error, 1)
	go func() {
		err := bench.ServeHop(args, inR, outW, stderr)
		outW.CloseWithError(err)
		done <- err
	}()
	line, err := bufio.NewReader(outR).ReadString('\n')
	if err != nil {
		t.Fatalf("hop %v: no address: %v", args, err)
	}
	go io.Copy(io.Discard, outR)
	return strings.TrimSpace(line), func() error {
		inW.Close()
		return <-done
	}
}

func TestServeHopRelaysBothWays(t *testing.T) {
	echo, stopEcho := startHop(t, "echo")
	relay, stopRelay := startHop(t, "relay", echo)
	c, err := net.Dial("tcp", relay)
	if err != nil {
		t.Fatal(err)
	}
	msg := bytes.Repeat([]byte("0123456789abcdef"), 4) // one 64-byte echo message
	if _, err := c.Write(append([]byte{'e'}, msg...)); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, msg) {
		t.Fatalf("echo through the relay = %q, want %q", got, msg)
	}
	c.Close()
	if err := stopRelay(); err != nil {
		t.Errorf("relay: %v", err)
	}
	if err := stopEcho(); err != nil {
		t.Errorf("echo: %v", err)
	}
}

func TestServeHopUsage(t *testing.T) {
	for _, args := range [][]string{nil, {"relay"}, {"echo", "x"}, {"warp"}} {
		err := bench.ServeHop(args, strings.NewReader(""), io.Discard, io.Discard)
		if !errors.Is(err, bench.ErrHopUsage) {
			t.Errorf("ServeHop(%q) = %v, want ErrHopUsage", args, err)
		}
	}
}

func TestServeHopRelayUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gone := ln.Addr().String()
	ln.Close() // nothing listens there now
	// Read only after stop: ServeHop has returned by then.
	var stderr bytes.Buffer
	relay, stop := startHopLog(t, &stderr, "relay", gone)
	c, err := net.Dial("tcp", relay)
	if err != nil {
		t.Fatal(err)
	}
	// The relay closes what it cannot forward: the read ends.
	if n, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatalf("read %d bytes through a relay to nowhere", n)
	}
	c.Close()
	if err := stop(); err != nil {
		t.Errorf("relay: %v", err)
	}
	want := "bench-hop relay: dial tcp " + gone + ": connect: connection refused\n"
	if got := stderr.String(); got != want {
		t.Errorf("relay stderr %q, want %q", got, want)
	}
}
