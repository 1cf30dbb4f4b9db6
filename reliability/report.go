package reliability

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
)

// Row is one line of the reliability report.
type Row struct {
	Test      string
	Outcome   string // "pass", "FAIL" or "skip"
	Detection string // time from the fault to the client seeing it, or "-"
	Left      string // processes left after the bound, or "-"
	Memory    string // what was measured of memory, or "-"
	Note      string
}

var header = Row{"TEST", "OUTCOME", "DETECTION", "LEFT", "MEMORY", "NOTE"}

// fields are a Row's fields in table order.
func (r Row) fields() []string {
	return []string{r.Test, r.Outcome, r.Detection, r.Left, r.Memory, r.Note}
}

// AppendRow appends r to the report file at path as one tab-separated
// line, written with one write so that rows from parallel tests do not
// interleave.
func AppendRow(path string, r Row) error {
	fs := r.fields()
	for i, s := range fs {
		if s == "" {
			s = "-"
		}
		fs[i] = strings.NewReplacer("\t", " ", "\n", " ").Replace(s)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	_, err = f.WriteString(strings.Join(fs, "\t") + "\n")
	return errors.Join(err, f.Close())
}

// ReadRows reads a report file written by AppendRow.
func ReadRows(r io.Reader) ([]Row, error) {
	var rows []Row
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		f := strings.Split(sc.Text(), "\t")
		if len(f) != len(header.fields()) {
			return nil, fmt.Errorf("report line %d: %d fields, want %d", n, len(f), len(header.fields()))
		}
		rows = append(rows, Row{f[0], f[1], f[2], f[3], f[4], f[5]})
	}
	return rows, sc.Err()
}

// WriteTable prints rows aligned under a header.
func WriteTable(w io.Writer, rows []Row) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, r := range append([]Row{header}, rows...) {
		fmt.Fprintln(tw, strings.Join(r.fields(), "\t"))
	}
	return tw.Flush()
}
