package reliability

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Process is one live process as /proc shows it.
type Process struct {
	PID, PPID int
	Session   int    // the session id (a setsid process leads its own)
	State     string // the state letter of /proc/PID/stat: R, S, T, Z …
	Cmdline   string // arguments joined by spaces
}

func (p Process) String() string { return fmt.Sprintf("%d (%s): %s", p.PID, p.State, p.Cmdline) }

// Processes lists the processes of this machine for which keep returns
// true, zombies excluded (they have exited; only their parent's wait is
// missing). Processes that exit while being read are skipped.
func Processes(keep func(Process) bool) []Process {
	ents, _ := os.ReadDir("/proc")
	var out []Process
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		p, ok := readProcess(pid)
		if ok && p.State != "Z" && keep(p) {
			out = append(out, p)
		}
	}
	return out
}

// FindProcess returns the process pid, if it lives (zombies included).
func FindProcess(pid int) (Process, bool) { return readProcess(pid) }

func readProcess(pid int) (Process, bool) {
	dir := filepath.Join("/proc", strconv.Itoa(pid))
	stat, err := os.ReadFile(filepath.Join(dir, "stat"))
	if err != nil {
		return Process{}, false
	}
	// pid (comm) state ppid pgrp session …; comm may hold spaces and
	// parentheses.
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return Process{}, false
	}
	f := strings.Fields(string(stat[i+1:]))
	if len(f) < 4 {
		return Process{}, false
	}
	ppid, _ := strconv.Atoi(f[1])
	sid, _ := strconv.Atoi(f[3])
	cmdline, _ := os.ReadFile(filepath.Join(dir, "cmdline"))
	return Process{
		PID: pid, PPID: ppid, Session: sid, State: f[0],
		Cmdline: strings.TrimSpace(strings.ReplaceAll(string(cmdline), "\x00", " ")),
	}, true
}

// CmdlineContains selects the processes whose command line contains s
// (a test's temporary directory: every process a test starts names a file
// in it).
func CmdlineContains(s string) func(Process) bool {
	return func(p Process) bool { return strings.Contains(p.Cmdline, s) }
}

// Mem is a process's resident memory, threads and open file descriptors.
type Mem struct {
	RSSKiB  int
	Threads int
	FDs     int
}

// ReadMem reads pid's VmRSS and Threads from /proc/PID/status and counts
// /proc/PID/fd.
func ReadMem(pid int) (Mem, error) {
	dir := filepath.Join("/proc", strconv.Itoa(pid))
	st, err := os.ReadFile(filepath.Join(dir, "status"))
	if err != nil {
		return Mem{}, err
	}
	var m Mem
	for line := range strings.Lines(string(st)) {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		f := strings.Fields(v)
		if len(f) == 0 {
			continue
		}
		switch k {
		case "VmRSS":
			m.RSSKiB, _ = strconv.Atoi(f[0])
		case "Threads":
			m.Threads, _ = strconv.Atoi(f[0])
		}
	}
	fds, err := os.ReadDir(filepath.Join(dir, "fd"))
	if err != nil {
		return Mem{}, err
	}
	m.FDs = len(fds)
	return m, nil
}
