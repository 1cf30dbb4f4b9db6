package reliability_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/qlaunch/qlaunch/reliability"
)

func TestReportRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "report.tsv")
	rows := []reliability.Row{
		{Test: "a", Outcome: "pass", Detection: "1.0 ms", Left: "0", Memory: "-", Note: "tab\there"},
		{Test: "longer name", Outcome: "FAIL", Detection: "", Left: "2", Memory: "x", Note: "line\nbreak"},
	}
	for _, r := range rows {
		if err := reliability.AppendRow(path, r); err != nil {
			t.Fatal(err)
		}
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got, err := reliability.ReadRows(f)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	if err := reliability.WriteTable(&b, got); err != nil {
		t.Fatal(err)
	}
	want := "" +
		"TEST         OUTCOME  DETECTION  LEFT  MEMORY  NOTE\n" +
		"a            pass     1.0 ms     0     -       tab here\n" +
		"longer name  FAIL     -          2     x       line break\n"
	if b.String() != want {
		t.Fatalf("table:\n%s\nwant:\n%s", b.String(), want)
	}
	if _, err := reliability.ReadRows(strings.NewReader("only\ttwo\n")); err == nil {
		t.Fatal("a short line was accepted")
	}
}
