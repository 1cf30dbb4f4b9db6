package reliability

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/qlaunch/qlaunch/kernels"
)

// ReadyFIFO and GateFIFO name the FIFOs of GatedTask in dir.
func ReadyFIFO(dir string) string       { return filepath.Join(dir, "ready") }
func GateFIFO(dir string, i int) string { return filepath.Join(dir, "gate."+strconv.Itoa(i)) }

// GatedTask returns an exec task (not retryable) that writes the line
// "I PPID PID" to the FIFO ReadyFIFO(dir) once it runs (PPID is the exec
// guard the worker rank runs the command under, a child of the rank), then
// waits for a line on the FIFO GateFIFO(dir, i) and returns "I\n". Tests
// learn from the first line where and when the task runs, and release it
// when they choose; no sleep is involved.
func GatedTask(dir string, i int) kernels.Task { return gatedTask(dir, i, fmt.Sprintf("echo %d", i)) }

// StampedGatedTask is GatedTask whose output is "I NANOS\n" instead:
// NANOS is when the command finished, after its gate opened, in Unix
// nanoseconds of the machine's clock (date +%s%N), so that a test on the
// same machine can tell how long its result took to reach the client.
func StampedGatedTask(dir string, i int) kernels.Task {
	return gatedTask(dir, i, fmt.Sprintf("echo %d $(date +%%s%%N)", i))
}

// gatedTask is GatedTask's command with last as its last line.
func gatedTask(dir string, i int, last string) kernels.Task {
	script := fmt.Sprintf(`echo "%d $PPID $$" > %s; read x < %s; %s`, i, shQuote(ReadyFIFO(dir)), shQuote(GateFIFO(dir, i)), last)
	return kernels.Task{Kernel: "exec", Args: []string{"--", "sh", "-c", script}}
}

func shQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// SoakSample is the resident memory of the runtime's processes after
// Tasks tasks of a soak phase.
type SoakSample struct {
	Phase  string         `json:"phase"`
	Tasks  int            `json:"tasks"`
	RSSKiB map[string]int `json:"rss_kib"` // by process: client, run, worker-RANKPID
}

// SoakReport is what reldriver soak writes.
type SoakReport struct {
	Tiny, Big                         int     // tasks run per phase
	PayloadBytes                      int     // of each big task
	TinySeconds, BigSeconds           float64 // wall time per phase
	GoroutinesBefore, GoroutinesAfter int     // of the client, before Dial and after Close
	Samples                           []SoakSample
}
