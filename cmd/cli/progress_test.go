package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestProgressNotATerminal: on a buffer or a file, progress draws nothing.
func TestProgressNotATerminal(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "stderr"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var buf bytes.Buffer
	for _, w := range []struct {
		name string
		e    *env
	}{
		{"buffer", &env{stderr: &buf, getenv: func(string) string { return "" }}},
		{"file", &env{stderr: f, getenv: func(string) string { return "" }}},
	} {
		for _, total := range []int{0, 10} {
			p := newProgress(w.e, total, "work")
			if _, ok := p.(noProgress); !ok {
				t.Errorf("%s, total %d: progress %T, want noProgress", w.name, total, p)
			}
			p.Add(3)
			p.Done()
		}
	}
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	if buf.Len() != 0 || st.Size() != 0 {
		t.Fatalf("wrote %q to a buffer and %d bytes to a file, want nothing", buf.String(), st.Size())
	}
}

// TestSynthStderrToFile: synth's standard error, redirected to a file, is
// its one summary line and nothing else.
func TestSynthStderrToFile(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "stderr"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out bytes.Buffer
	e := &env{stdin: strings.NewReader(""), stdout: &out, stderr: f, getenv: func(string) string { return "" }}
	if code := run(context.Background(), []string{"synth", "--local", "--target", "cnot"}, e); code != 0 {
		t.Fatalf("synth exit %d", code)
	}
	b, err := os.ReadFile(f.Name())
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	if !strings.HasPrefix(s, "synth: cnot (2 qubits) as the CNOT+U3 circuit above: 1 CNOT, the known optimum\n") || strings.Count(s, "\n") != 3 || !strings.HasSuffix(s, " s\n") || strings.ContainsAny(s, "\r\x1b") {
		t.Fatalf("stderr %q, want only the summary lines", s)
	}
}

// TestProgressOnATerminal draws a bar on a pseudo-terminal.
func TestProgressOnATerminal(t *testing.T) {
	master, slave := openPTY(t)
	e := &env{stderr: slave, getenv: func(string) string { return "" }}
	p := newProgress(e, 4, "blocks")
	if _, ok := p.(*bar); !ok {
		t.Fatalf("progress on a terminal is %T, want *bar", p)
	}
	p.Add(4)
	p.Done()
	// Everything is drawn by now and waits in the terminal's buffer: one
	// read takes it without blocking.
	buf := make([]byte, 64<<10)
	n, err := master.Read(buf)
	if err != nil {
		t.Fatalf("read the terminal: %v", err)
	}
	if got := buf[:n]; !bytes.Contains(got, []byte("blocks")) || !bytes.Contains(got, []byte("0/4")) {
		t.Fatalf("drawn %q, want the description and 0/4", got)
	}
}

// openPTY opens a pseudo-terminal pair, or skips.
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Skipf("unlock pseudo-terminal: %v", err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Skipf("pseudo-terminal number: %v", err)
	}
	s, err := os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("open pseudo-terminal %d: %v", n, err)
	}
	t.Cleanup(func() { s.Close() })
	return m, s
}

// TestProgressLine: the line drawn for a known total (share, bar, count,
// elapsed time and what is left) and for an unknown one (a spinner that
// turns with each redraw, the elapsed time), each rewritten in place.
func TestProgressLine(t *testing.T) {
	start := time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		total, done, spin int
		at                time.Duration
		want              string
	}{
		{10, 0, 0, 0, "\rblocks   0% [                              ] (0/10) 0s\x1b[K"},
		{10, 4, 0, 2 * time.Second, "\rblocks  40% [============                  ] (4/10) 2s, about 3s left\x1b[K"},
		{10, 12, 0, 90 * time.Second, "\rblocks 100% [==============================] (10/10) 1m30s\x1b[K"},
		{0, 5, 0, 1500 * time.Millisecond, "\rblocks - 1.5s\x1b[K"},
		{0, 5, 3, 1500 * time.Millisecond, "\rblocks / 1.5s\x1b[K"},
	} {
		var out bytes.Buffer
		b := &bar{w: &out, what: "blocks", total: c.total, start: start, done: c.done, spin: c.spin}
		b.drawLocked(start.Add(c.at))
		if out.String() != c.want {
			t.Errorf("total %d, done %d at %v: drew %q, want %q", c.total, c.done, c.at, out.String(), c.want)
		}
	}
}
