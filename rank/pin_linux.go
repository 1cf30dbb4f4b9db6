//go:build linux

package rank

import (
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"

	"golang.org/x/sys/unix"
)

// Pin restricts this process to cpus: every thread it has now, and so every
// thread it starts later (a new thread inherits the mask of the thread that
// creates it), then sets GOMAXPROCS to len(cpus) so that the Go scheduler
// does not run more threads than the process has CPUs. An empty cpus leaves
// the affinity alone.
func Pin(cpus []int) error {
	if len(cpus) == 0 {
		return nil
	}
	var set unix.CPUSet
	set.Zero()
	for _, c := range cpus {
		if c < 0 || c >= len(set)*64 {
			return fmt.Errorf("pin: CPU %d out of range", c)
		}
		set.Set(c)
	}
	// sched_setaffinity with pid 0 affects the calling thread only: walk
	// every thread of the process until a pass finds no thread not yet done
	// (the Go runtime may start threads while we walk).
	done := map[int]bool{}
	for pass := 0; pass < 20; pass++ {
		tids, err := threads()
		if err != nil {
			return fmt.Errorf("pin: %w", err)
		}
		fresh := false
		for _, tid := range tids {
			if done[tid] {
				continue
			}
			fresh = true
			if err := unix.SchedSetaffinity(tid, &set); err != nil {
				if err == unix.ESRCH { // the thread has exited
					continue
				}
				return fmt.Errorf("pin to CPUs %v: sched_setaffinity(%d): %w", cpus, tid, err)
			}
			done[tid] = true
		}
		if !fresh {
			runtime.GOMAXPROCS(len(cpus))
			return nil
		}
	}
	return fmt.Errorf("pin to CPUs %v: threads kept appearing", cpus)
}

// Affinity returns the CPUs the calling thread may run on, in increasing
// order (after Pin, those of the whole process).
func Affinity() ([]int, error) {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		return nil, fmt.Errorf("affinity: sched_getaffinity: %w", err)
	}
	var cpus []int
	for c := 0; c < len(set)*64; c++ {
		if set.IsSet(c) {
			cpus = append(cpus, c)
		}
	}
	return cpus, nil
}

// threads lists the thread ids of this process.
func threads() ([]int, error) {
	ents, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return nil, err
	}
	tids := make([]int, 0, len(ents))
	for _, e := range ents {
		if tid, err := strconv.Atoi(e.Name()); err == nil {
			tids = append(tids, tid)
		}
	}
	slices.Sort(tids)
	return tids, nil
}
