package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/qlaunch/qlaunch/rank"
)

// The rank error file: every rank of a bootstrapped job that fails appends
// one line, "rank R on NODE: ERROR", to the file named by
// $QLAUNCH_ERROR_FILE (the batch scripts of qlaunch script set it, in the
// submit directory every node sees). qlaunch wait, and the scripts when
// the runtime ends during the client, quote its first line: the first
// rank's error, which is the cause; the others are mostly its echo.

// errorFileEnv names the rank error file.
const errorFileEnv = "QLAUNCH_ERROR_FILE"

// maxErrorLine bounds one line of the rank error file, as written and as
// read back.
const maxErrorLine = 4096

// recordRankError appends this rank's error to the rank error file, when
// one is named; an interrupted rank records nothing. It never fails the
// rank further: a file it cannot write is reported on stderr.
func recordRankError(e *env, err error) {
	path := e.getenv(errorFileEnv)
	if path == "" || err == nil || errors.Is(err, context.Canceled) {
		return
	}
	msg := err.Error()
	who := "a rank"
	if info, derr := rank.Detect(e.getenv); derr == nil {
		// "rank 2: parent…" becomes "rank 2 on n1: parent…".
		prefix := fmt.Sprintf("rank %d", info.Rank)
		who = prefix + " on " + info.Node
		if rest, ok := strings.CutPrefix(msg, prefix); ok {
			switch {
			case strings.HasPrefix(rest, ": "):
				msg = rest[2:]
			case strings.HasPrefix(rest, " ("):
				if i := strings.Index(rest, "): "); i > 0 {
					who, msg = who+rest[:i+1], rest[i+3:]
				}
			}
		}
	} else if h, herr := os.Hostname(); herr == nil {
		who = "a rank on " + h
	}
	line := strings.ReplaceAll(who+": "+msg, "\n", "; ")
	if len(line) > maxErrorLine-1 {
		line = line[:maxErrorLine-1]
	}
	f, ferr := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if ferr == nil {
		_, ferr = f.WriteString(line + "\n")
		if cerr := f.Close(); ferr == nil {
			ferr = cerr
		}
	}
	if ferr != nil {
		fmt.Fprintf(e.stderr, "qlaunch: cannot record this rank's error in $%s: %v\n", errorFileEnv, ferr)
	}
}

// firstRankError returns the first line of the rank error file, "" when
// there is none (no file named, or no rank failed).
func firstRankError(path string) string {
	if path == "" {
		return ""
	}
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	line, err := bufio.NewReaderSize(io.LimitReader(f, maxErrorLine), maxErrorLine).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return ""
	}
	return strings.TrimSpace(line)
}

// processGone reports whether process pid has exited: it no longer exists,
// or it is a zombie its parent has not reaped yet.
func processGone(pid int) bool {
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return true
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false // no /proc: kill(0) said it exists
	}
	i := strings.LastIndexByte(string(b), ')')
	return i > 0 && len(b) > i+2 && (b[i+2] == 'Z' || b[i+2] == 'X')
}

// runtimeGone is wait's fail-fast check: the error to end with when the
// launcher process pid (0: not watched) has exited, or a rank has recorded
// its error in the rank error file, before every rank joined; nil else.
func runtimeGone(pid int, errorFile string) error {
	first := firstRankError(errorFile)
	switch {
	case pid > 0 && processGone(pid):
		if first == "" {
			return fmt.Errorf("the runtime (pid %d) exited before every rank joined; no rank recorded an error: see its output", pid)
		}
		return fmt.Errorf("the runtime (pid %d) exited before every rank joined; first rank error: %s", pid, first)
	case first != "":
		return fmt.Errorf("a rank failed before every rank joined; first rank error: %s", first)
	}
	return nil
}

// userHZ is Linux's USER_HZ, the unit of /proc/PID/stat's start time:
// 100 on every architecture Go supports.
const userHZ = 100

// processStart returns when process pid started, to the hundredth of a
// second, from /proc (the zero time when it cannot tell): the seconds
// since boot it started at (/proc/PID/stat) against those now
// (/proc/uptime); btime has whole seconds only.
func processStart(pid int) time.Time {
	now := time.Now()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return time.Time{}
	}
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return time.Time{}
	}
	fields := strings.Fields(string(b[i+1:]))
	if len(fields) < 20 { // field 22 of the line, 20th after the name
		return time.Time{}
	}
	ticks, err := strconv.ParseInt(fields[19], 10, 64)
	if err != nil {
		return time.Time{}
	}
	up, err := os.ReadFile("/proc/uptime")
	if err != nil {
		return time.Time{}
	}
	f := strings.Fields(string(up))
	if len(f) == 0 {
		return time.Time{}
	}
	upSec, err := strconv.ParseFloat(f[0], 64)
	if err != nil {
		return time.Time{}
	}
	age := time.Duration(upSec*float64(time.Second)) - time.Duration(ticks)*time.Second/userHZ
	return now.Add(-age)
}

// freshSince reports whether the file at path was written at or after
// since (always, for a zero since): an address file older than the
// launcher that --pid names is an earlier runtime's.
func freshSince(path string, since time.Time) bool {
	if since.IsZero() {
		return true
	}
	st, err := os.Stat(path)
	// A stale file was written before the launcher started; a fresh one
	// after the launcher started every rank and they all joined, which
	// takes longer than the uptime clock's hundredth of a second, and than
	// the clock skew between the nodes.
	return err == nil && !st.ModTime().Before(since)
}
