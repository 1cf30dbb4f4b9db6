package topology

import (
	"errors"
	"fmt"
)

// ConfigError is one problem in a topology file: where it is and what is
// wrong. Every error Load, Parse, Validate and Plan report about the topology
// is a *ConfigError (several are joined with errors.Join).
type ConfigError struct {
	File string // the topology file's name as given to Load or Parse
	Line int    // 1-based line of the key; 0 when the key is not in the file
	Col  int    // 1-based column of the key; 0 when unknown
	Key  string // dotted key, e.g. "workers.pin"; empty for a syntax error
	Msg  string
}

// Error prints "file:line:col: key: msg", leaving out the parts not known.
func (e *ConfigError) Error() string {
	s := e.File
	if s == "" {
		s = "topology"
	}
	if e.Line > 0 {
		s += fmt.Sprintf(":%d", e.Line)
		if e.Col > 0 {
			s += fmt.Sprintf(":%d", e.Col)
		}
	}
	if e.Key != "" {
		s += ": " + e.Key
	}
	return s + ": " + e.Msg
}

// BadInput reports that the error is the user's input, not a failure of the
// work (the qlaunch command exits 2).
func (e *ConfigError) BadInput() bool { return true }

// Errors a plan may wrap: the node list or tasks per node given to Plan,
// RankOf or RanksPerNode do not fit.
var (
	ErrNoNodes      = errors.New("empty node list")
	ErrBadNode      = errors.New("bad node name")
	ErrTasksPerNode = errors.New("tasks per node do not match the node list")
	ErrNoRank       = errors.New("no such rank")
	ErrCPUsUnknown  = errors.New("CPUs per node unknown")
)

// InputError is a problem with the node list or the tasks per node handed
// to Plan (not with the topology file). It wraps one of the Err* sentinels.
type InputError struct {
	Msg string
	Err error
}

func (e *InputError) Error() string { return e.Msg }

// Unwrap returns the sentinel.
func (e *InputError) Unwrap() error { return e.Err }

// BadInput reports that the error is the user's input (exit status 2).
func (e *InputError) BadInput() bool { return true }

func inputErrorf(sentinel error, format string, a ...any) error {
	return &InputError{Msg: fmt.Sprintf(format, a...), Err: sentinel}
}

// Errors of ParseCPUList, matching the Linux kernel's bitmap_parselist
// (EINVAL, EOVERFLOW, ERANGE).
var (
	ErrCPUListSyntax   = errors.New("invalid cpulist")
	ErrCPUListOverflow = errors.New("cpulist number overflows 32 bits")
	ErrCPUListRange    = errors.New("cpulist bit out of range")
)

// ConfigError returns a *ConfigError about key (dotted, e.g.
// "server.placement") at the key's position in t's file, for checks made
// outside this package.
func (t *Topology) ConfigError(key, msg string) *ConfigError { return t.src.errAt(key, msg) }
