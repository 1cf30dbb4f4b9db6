package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/qlaunch/qlaunch/launcher/client"
)

// Header describes where the figures were measured.
type Header struct {
	CPU   string // CPU model
	Cores int    // logical CPUs this process may use
	// Idle is how the CPUs idle (Linux's cpuidle driver and governor, and
	// on a KVM guest the halt-polling window), "" where unknown. Latency
	// depends on it: waking a halted virtual CPU costs tens of
	// microseconds, a hop of a round trip between processes.
	Idle string
	// Tree summarises the runtime's tree ("" without a runtime): ranks
	// by role, worker slots, and depth.
	Tree    string
	Go      string // Go version of this binary
	Build   string // module version, VCS revision and whether modified
	Workers int    // worker slots of the tree
}

// NewHeader describes this machine and build and, when c is not nil, the
// tree of c's runtime.
func NewHeader(ctx context.Context, c *client.Client) (Header, error) {
	h := Header{CPU: cpuModel(), Cores: runtime.NumCPU(), Idle: IdlePolicy(os.ReadFile), Go: runtime.Version(), Build: buildInfo()}
	if c == nil {
		return h, nil
	}
	ranks, err := c.Status(ctx)
	if err != nil {
		return h, fmt.Errorf("bench: status: %w", err)
	}
	roles := map[string]int{}
	parent := map[int]int{}
	for _, r := range ranks {
		roles[r.Role]++
		parent[r.Rank] = r.Parent
		if r.Role == "worker" {
			h.Workers += r.Slots
		}
	}
	depth := 0
	for _, r := range ranks {
		d := 0
		for p := r.Rank; parent[p] >= 0 && d <= len(ranks); p = parent[p] {
			d++
		}
		depth = max(depth, d)
	}
	h.Tree = fmt.Sprintf("%d ranks: %d server, %d managers, %d worker ranks; %d worker slots; depth %d",
		len(ranks), roles["server"], roles["manager"], roles["worker"], h.Workers, depth)
	return h, nil
}

// cpuModel reads the CPU model from /proc/cpuinfo, else names the
// architecture.
func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err == nil {
		sc := bufio.NewScanner(bytes.NewReader(b))
		for sc.Scan() {
			k, v, ok := strings.Cut(sc.Text(), ":")
			if ok && strings.TrimSpace(k) == "model name" {
				return strings.TrimSpace(v)
			}
		}
	}
	return runtime.GOARCH
}

// IdlePolicy describes how the CPUs idle from Linux's sysfs, read with
// readFile: "cpuidle DRIVER/GOVERNOR", and ", guest_halt_poll_ns=N" when
// the guest halt-polling driver is loaded (0: a vCPU halts at once when
// idle, and each wake-up of it is a VM entry). "" when sysfs tells nothing.
func IdlePolicy(readFile func(string) ([]byte, error)) string {
	read := func(path string) string {
		b, err := readFile(path)
		if err != nil {
			return ""
		}
		return strings.TrimSpace(string(b))
	}
	const dir = "/sys/devices/system/cpu/cpuidle/"
	driver := read(dir + "current_driver")
	if driver == "" {
		return ""
	}
	governor := read(dir + "current_governor")
	if governor == "" {
		governor = read(dir + "current_governor_ro")
	}
	s := "cpuidle " + driver
	if governor != "" {
		s += "/" + governor
	}
	if ns := read("/sys/module/haltpoll/parameters/guest_halt_poll_ns"); ns != "" {
		s += ", guest_halt_poll_ns=" + ns
	}
	return s
}

func buildInfo() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	parts := []string{bi.Main.Path + " " + bi.Main.Version}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision", "vcs.time", "vcs.modified", "CGO_ENABLED", "-race":
			parts = append(parts, s.Key+"="+s.Value)
		}
	}
	return strings.Join(parts, " ")
}

// WriteHeader prints h as lines of text.
func WriteHeader(w io.Writer, h Header) error {
	tree := h.Tree
	if tree == "" {
		tree = "none"
	}
	idle := h.Idle
	if idle == "" {
		idle = "unknown"
	}
	_, err := fmt.Fprintf(w, "machine: %s, %d cores\nidle:    %s\ntree:    %s\ngo:      %s\nbuild:   %s\n\n", h.CPU, h.Cores, idle, tree, h.Go, h.Build)
	return err
}

// WriteHeaderJSON prints h as one JSON object with workload "header".
func WriteHeaderJSON(w io.Writer, h Header) error {
	b, err := json.Marshal(struct {
		Workload string  `json:"workload"`
		Tasks    int     `json:"tasks"`
		Seconds  float64 `json:"seconds"`
		CPU      string  `json:"cpu"`
		Cores    int     `json:"cores"`
		Idle     string  `json:"cpu_idle,omitempty"`
		Tree     string  `json:"tree"`
		Slots    int     `json:"worker_slots"`
		Go       string  `json:"go"`
		Build    string  `json:"build"`
	}{"header", 0, 0, h.CPU, h.Cores, h.Idle, h.Tree, h.Workers, h.Go, h.Build})
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}

// AppendJSON appends r as one JSON object (no newline), its keys in the
// order the package documentation gives.
func AppendJSON(b []byte, r Result) []byte {
	b = append(b, `{"workload":`...)
	b = strconv.AppendQuote(b, r.Workload)
	if r.Variant != "" {
		b = append(b, `,"variant":`...)
		b = strconv.AppendQuote(b, r.Variant)
	}
	b = append(b, `,"tasks":`...)
	b = strconv.AppendInt(b, int64(r.Tasks), 10)
	b = append(b, `,"repeat":`...)
	b = strconv.AppendInt(b, int64(r.Repeat), 10)
	num := func(key string, v float64) {
		b = append(b, ',')
		b = strconv.AppendQuote(b, key)
		b = append(b, ':')
		b = strconv.AppendFloat(b, v, 'g', 6, 64)
	}
	stat := func(key string, s Stat) {
		num(key, s.Median)
		num(key+"_min", s.Min)
		num(key+"_max", s.Max)
	}
	stat("seconds", r.Seconds)
	for _, f := range r.Figures {
		stat(f.Name, f.Stat)
	}
	return append(b, '}')
}

// WriteJSON prints each result as one JSON object per line.
func WriteJSON(w io.Writer, rs []Result) error {
	var b []byte
	for _, r := range rs {
		b = append(AppendJSON(b, r), '\n')
	}
	_, err := w.Write(b)
	return err
}

// TableWriter prints results as an aligned table, a row per figure; the
// table is aligned when Flush is called.
type TableWriter struct {
	tw *tabwriter.Writer
}

// NewTableWriter returns a table writer on w with its column heads
// written.
func NewTableWriter(w io.Writer) *TableWriter {
	t := &TableWriter{tw: tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)}
	fmt.Fprintln(t.tw, "WORKLOAD\tTASKS\tSECONDS\tFIGURE\tMIN\tMEDIAN\tMAX\t")
	return t
}

// Write adds the rows of rs.
func (t *TableWriter) Write(rs []Result) {
	for _, r := range rs {
		if len(r.Figures) == 0 {
			fmt.Fprintf(t.tw, "%s\t%d\t%s\tseconds\t%s\t%s\t%s\t\n", r.Name(), r.Tasks, human(r.Seconds.Median),
				human(r.Seconds.Min), human(r.Seconds.Median), human(r.Seconds.Max))
		}
		for i, f := range r.Figures {
			name, tasks, secs := r.Name(), strconv.Itoa(r.Tasks), human(r.Seconds.Median)
			if i > 0 {
				name, tasks, secs = "", "", ""
			}
			fmt.Fprintf(t.tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", name, tasks, secs, f.Name,
				human(f.Stat.Min), human(f.Stat.Median), human(f.Stat.Max))
		}
	}
}

// Flush aligns and writes the table so far.
func (t *TableWriter) Flush() error { return t.tw.Flush() }

// human formats v with four significant digits and thousands separators
// for large values.
func human(v float64) string {
	if v >= 1e4 || v <= -1e4 {
		s := strconv.FormatFloat(v, 'f', 0, 64)
		var b []byte
		for i, c := range []byte(s) {
			if i > 0 && (len(s)-i)%3 == 0 && s[i-1] != '-' {
				b = append(b, ',')
			}
			b = append(b, c)
		}
		return string(b)
	}
	return strconv.FormatFloat(v, 'g', 4, 64)
}
