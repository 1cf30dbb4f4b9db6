package cli

import (
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

type zeros struct{}

func (zeros) Read(b []byte) (int, error) { clear(b); return len(b), nil }

// TestReadInputBounded: an endless input is refused after the limit, with
// an error naming it, having allocated a few times the limit at most.
func TestReadInputBounded(t *testing.T) {
	const limit = 1 << 20
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err := readInput(zeros{}, "standard input", limit)
	runtime.ReadMemStats(&after)
	if err == nil || !strings.Contains(err.Error(), "standard input holds more than 1 MiB; a task's payload is limited to 1 MiB") {
		t.Fatalf("endless input: %v", err)
	}
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 4*limit {
		t.Fatalf("reading an endless input allocated %d bytes, want at most %d", grew, 4*limit)
	}
	b, err := readInput(strings.NewReader(strings.Repeat("x", limit)), "in", limit)
	if err != nil || len(b) != limit {
		t.Fatalf("input of exactly the limit: %d bytes, %v", len(b), err)
	}
	b, err = readInput(io.LimitReader(zeros{}, 10), "in", limit)
	if err != nil || len(b) != 10 {
		t.Fatalf("small input: %d bytes, %v", len(b), err)
	}
}

// TestSubmitInputTooLarge: `qlaunch submit --input` refuses a file or a
// standard input above the frame limit with exit 2, before connecting.
func TestSubmitInputTooLarge(t *testing.T) {
	big := filepath.Join(t.TempDir(), "big")
	f, err := os.Create(big)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(maxInput + 1); err != nil { // sparse: no disk used
		t.Fatal(err)
	}
	f.Close()
	env := []string{"QLAUNCH_ADDR=127.0.0.1:1"}
	r := e2eRun(t, env, "", "submit", "--input", big, "echo")
	if r.code != 2 || !strings.Contains(r.stderr, big+" holds 67108865 bytes; a task's payload is limited to 64 MiB") {
		t.Fatalf("submit --input of a large file: %+v", r)
	}
	r = e2eRun(t, env, strings.Repeat("x", maxInput+1), "submit", "--input", "-", "echo")
	if r.code != 2 || !strings.Contains(r.stderr, "standard input holds more than 64 MiB") {
		t.Fatalf("submit --input - of a large stdin: %+v", r)
	}
}
