package kernels

import (
	"bytes"
	"os"
	"strconv"
	"syscall"
	"time"
)

// This file finds and ends the processes below this one, wherever their
// process group or session: the exec guard's way to end a command that
// left its group (setsid, setpgid).
//
// The guard is a child subreaper (PR_SET_CHILD_SUBREAPER, Linux 3.4): a
// process below it whose parent exits is re-parented to the guard instead
// of to init, so every process the command started stays below the guard
// while the guard lives, whatever session it made. Ending them is then a
// walk of the process tree (/proc/PID/stat) from the guard down.

// prSetChildSubreaper is PR_SET_CHILD_SUBREAPER of prctl(2).
const prSetChildSubreaper = 36

// becomeSubreaper makes the calling process a child subreaper.
func becomeSubreaper() error {
	if _, _, errno := syscall.RawSyscall(syscall.SYS_PRCTL, prSetChildSubreaper, 1, 0); errno != 0 {
		return errno
	}
	return nil
}

// maxEndRounds bounds the rounds of endDescendants: each round kills every
// live process found below this one and waits a little for them to go; a
// process that forks as fast as it is killed still ends within a few
// rounds, since a killed process forks no more.
const maxEndRounds = 100

// endDescendants kills (SIGKILL) every live process below this one, and
// reaps those that are its children other than skip (a child another
// goroutine waits for), until none is left or maxEndRounds passed. It
// returns how many it killed.
func endDescendants(skip int) int {
	// Usually nothing is left: with no child to wait for there is no
	// process below at all (a subreaper's orphans are its children), and
	// the walk of /proc, tens of milliseconds in a fresh process, is
	// saved. With skip 0 no other goroutine waits for a child, so
	// reaping any is safe.
	if skip == 0 && !reapChildren() {
		return 0
	}
	self := os.Getpid()
	killed := 0
	for range maxEndRounds {
		below := descendants(self)
		if len(below) == 0 {
			return killed
		}
		for _, p := range below {
			if syscall.Kill(p.pid, syscall.SIGKILL) == nil {
				killed++
			}
		}
		for _, p := range below {
			if p.ppid == self && p.pid != skip {
				var ws syscall.WaitStatus
				syscall.Wait4(p.pid, &ws, 0, nil)
			}
		}
		// Deeper processes die asynchronously; their children, if any,
		// come up to this process and are found by the next round.
		time.Sleep(time.Millisecond)
	}
	return killed
}

// reapChildren reaps the caller's exited children and reports whether it
// still has any (alive).
func reapChildren() bool {
	for range 1 << 16 {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
		switch {
		case err == syscall.EINTR:
			continue
		case err != nil: // ECHILD: no child at all
			return false
		case pid == 0: // children, none exited
			return true
		}
	}
	return true
}

type proc struct{ pid, ppid int }

// descendants returns the live (not zombie) processes below root.
func descendants(root int) []proc {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	children := make(map[int][]proc)
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == root {
			continue
		}
		ppid, state, ok := procStat(pid)
		if !ok || state == 'Z' || state == 'X' {
			continue
		}
		children[ppid] = append(children[ppid], proc{pid, ppid})
	}
	var out []proc
	queue := []int{root}
	for len(queue) > 0 && len(out) < len(ents) {
		p := queue[0]
		queue = queue[1:]
		for _, c := range children[p] {
			out = append(out, c)
			queue = append(queue, c.pid)
		}
	}
	return out
}

// procStat reads the parent and state of pid from /proc/PID/stat.
func procStat(pid int) (ppid int, state byte, ok bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, false
	}
	// pid (comm) state ppid …; comm may hold spaces and parentheses.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		return 0, 0, false
	}
	f := bytes.Fields(b[i+1:])
	if len(f) < 2 || len(f[0]) != 1 {
		return 0, 0, false
	}
	ppid, err = strconv.Atoi(string(f[1]))
	return ppid, f[0][0], err == nil
}
