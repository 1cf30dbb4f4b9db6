package pbs

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Limits of ParseNodefile.
const (
	// MaxLineLength is the longest line accepted, in bytes, without its
	// line end. DNS names are at most 253 bytes.
	MaxLineLength = 1024
	// MaxSlots is the most host lines (slots) accepted.
	MaxSlots = 1 << 22
	// MaxHosts is the most distinct hosts accepted.
	MaxHosts = 1 << 20
)

// ErrNoHosts is wrapped by the error for a node file without any host.
var ErrNoHosts = errors.New("no hosts")

// Nodefile is a parsed $PBS_NODEFILE: the distinct hosts in first-seen
// order, and the number of lines (ranks, slots) of each.
type Nodefile struct {
	Hosts        []string
	RanksPerHost []int
}

// Slots returns the number of host lines: the sum of RanksPerHost.
func (n Nodefile) Slots() int {
	s := 0
	for _, r := range n.RanksPerHost {
		s += r
	}
	return s
}

// NodefileError reports a line of a node file that cannot be used.
type NodefileError struct {
	Line   int // 1-based; 0 for the file as a whole
	Reason string
	Err    error
}

func (e *NodefileError) Error() string {
	if e.Line == 0 {
		return "nodefile: " + e.Reason
	}
	return fmt.Sprintf("nodefile line %d: %s", e.Line, e.Reason)
}

// Unwrap returns the cause, if any.
func (e *NodefileError) Unwrap() error { return e.Err }

// BadInput marks the error as bad input (qlaunch exits with status 2).
func (e *NodefileError) BadInput() bool { return true }

// ParseNodefile reads a PBS node file: one host per line, repeated once per
// slot. Surrounding spaces and tabs and a CR before the LF are dropped;
// blank lines and lines whose first non-blank byte is '#' are skipped. A
// host that reappears after other hosts is counted into its first entry
// (see the package documentation). A name containing white space or a
// control byte, a line over MaxLineLength bytes, more than MaxSlots lines,
// more than MaxHosts hosts, or no host at all is an error
// (*NodefileError); a read error is returned wrapped.
func ParseNodefile(r io.Reader) (Nodefile, error) {
	var (
		nf    Nodefile
		index = make(map[string]int)
		slots int
		line  int
	)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), MaxLineLength+2) // room for "\r\n"
	for sc.Scan() {
		line++
		text := strings.TrimRight(sc.Text(), "\r")
		if len(text) > MaxLineLength {
			return Nodefile{}, &NodefileError{Line: line, Reason: fmt.Sprintf("longer than %d bytes", MaxLineLength)}
		}
		host := strings.Trim(text, " \t")
		if host == "" || host[0] == '#' {
			continue
		}
		for i := 0; i < len(host); i++ {
			if c := host[i]; c <= ' ' || c == 0x7f {
				return Nodefile{}, &NodefileError{Line: line, Reason: fmt.Sprintf("host name %q holds white space or a control byte", host)}
			}
		}
		if slots++; slots > MaxSlots {
			return Nodefile{}, &NodefileError{Line: line, Reason: fmt.Sprintf("more than %d host lines", MaxSlots)}
		}
		if i, ok := index[host]; ok {
			nf.RanksPerHost[i]++
			continue
		}
		if len(nf.Hosts) == MaxHosts {
			return Nodefile{}, &NodefileError{Line: line, Reason: fmt.Sprintf("more than %d distinct hosts", MaxHosts)}
		}
		index[host] = len(nf.Hosts)
		nf.Hosts = append(nf.Hosts, host)
		nf.RanksPerHost = append(nf.RanksPerHost, 1)
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return Nodefile{}, &NodefileError{Line: line + 1, Reason: fmt.Sprintf("longer than %d bytes", MaxLineLength), Err: err}
		}
		return Nodefile{}, fmt.Errorf("read nodefile: %w", err)
	}
	if len(nf.Hosts) == 0 {
		return Nodefile{}, &NodefileError{Reason: "no hosts", Err: ErrNoHosts}
	}
	return nf, nil
}
