package starttrace_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/qlaunch/qlaunch/launcher/starttrace"
)

func TestFormatParse(t *testing.T) {
	in := []starttrace.Record{
		{At: 1, PID: 10, Role: "run", Event: "main"},
		{At: 2, PID: 11, Role: "two words", Event: "rank 1\nexec"},
		{At: 3, PID: 12, Role: "", Event: ""},
	}
	var b strings.Builder
	for _, r := range in {
		b.WriteString(starttrace.Format(r))
	}
	got, err := starttrace.Parse(strings.NewReader(b.String()), "t")
	if err != nil {
		t.Fatal(err)
	}
	want := []starttrace.Record{
		{At: 1, PID: 10, Role: "run", Event: "main"},
		{At: 2, PID: 11, Role: "two_words", Event: "rank 1 exec"},
		{At: 3, PID: 12, Role: "_", Event: ""},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("parsed %+v, want %+v", got, want)
	}
}

func TestParseBadLine(t *testing.T) {
	for _, in := range []string{"1 2 run\n", "x 2 run main\n", "1 y run main\n", "1 2  main\n"} {
		_, err := starttrace.Parse(strings.NewReader("5 6 run main\n"+in), "trace")
		if !errors.Is(err, starttrace.ErrSyntax) || !strings.Contains(err.Error(), "trace:2:") {
			t.Errorf("Parse(%q) = %v, want ErrSyntax at trace:2", in, err)
		}
	}
}

// TestMarkAppends: Mark writes nothing without the variable, and appends
// a parsable line per call with it.
func TestMarkAppends(t *testing.T) {
	path := filepath.Join(t.TempDir(), "trace")
	t.Setenv(starttrace.Env, "")
	starttrace.Mark("run", "main")
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("trace written without %s: %v", starttrace.Env, err)
	}
	t.Setenv(starttrace.Env, path)
	before := time.Now().UnixNano()
	starttrace.Mark("run", "main")
	starttrace.Mark("worker", "dial")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	recs, err := starttrace.Parse(bytes.NewReader(b), path)
	if err != nil || len(recs) != 2 {
		t.Fatalf("trace %q: %+v %v", b, recs, err)
	}
	for i, want := range []string{"run main", "worker dial"} {
		r := recs[i]
		if r.Role+" "+r.Event != want || r.PID != os.Getpid() || r.At < before {
			t.Errorf("record %d = %+v, want %s of pid %d after %d", i, r, want, os.Getpid(), before)
		}
	}
}

func TestBreakdown(t *testing.T) {
	ms := int64(time.Millisecond)
	var recs []starttrace.Record
	run := func(t0 int64, main, result int64) {
		recs = append(recs,
			starttrace.Record{At: t0, Role: "bench", Event: starttrace.Launch},
			starttrace.Record{At: t0 + main*ms, Role: "run", Event: "main"},
			starttrace.Record{At: t0 + result*ms, Role: "submit", Event: "result"},
			starttrace.Record{At: t0 + (result+1)*ms, Role: "submit", Event: "result"}, // a second one: ignored
		)
	}
	recs = append(recs, starttrace.Record{At: 1, Role: "run", Event: "before any launch"})
	run(1000*ms, 500, 900) // the warm-up, left out
	run(2000*ms, 10, 40)
	run(3000*ms, 30, 20) // result before main: sorted by median
	run(4000*ms, 20, 30)
	got := starttrace.Breakdown(recs, 1)
	want := []starttrace.Step{
		{Role: "bench", Event: starttrace.Launch, Median: 0, Runs: 3},
		{Role: "run", Event: "main", Median: 20 * time.Millisecond, Runs: 3},
		{Role: "submit", Event: "result", Median: 30 * time.Millisecond, Runs: 3},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Breakdown = %+v, want %+v", got, want)
	}
	var b strings.Builder
	if err := starttrace.WriteBreakdown(&b, got); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "     30.00      10.00  submit   result\n") {
		t.Fatalf("table:\n%s", b.String())
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte("1 2 run main\n3 4 worker rank 1 exec\n"))
	f.Add([]byte("\n\n-5 0 x y"))
	f.Fuzz(func(t *testing.T, b []byte) {
		recs, err := starttrace.Parse(bytes.NewReader(b), "fuzz")
		if err != nil {
			return
		}
		// What parsed formats back to lines that parse to the same.
		var out strings.Builder
		for _, r := range recs {
			out.WriteString(starttrace.Format(r))
		}
		again, err := starttrace.Parse(strings.NewReader(out.String()), "again")
		if err != nil || len(again) != len(recs) {
			t.Fatalf("reparse of %q: %+v %v", out.String(), again, err)
		}
		starttrace.Breakdown(recs, 0)
	})
}
