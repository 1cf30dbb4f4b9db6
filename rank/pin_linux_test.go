//go:build linux

package rank

import (
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

// threadCPUs reads Cpus_allowed_list of every thread of this process.
func threadCPUs(t *testing.T) map[string]string {
	t.Helper()
	dirs, err := filepath.Glob("/proc/self/task/*/status")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, d := range dirs {
		b, err := os.ReadFile(d)
		if err != nil {
			continue // the thread exited
		}
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "Cpus_allowed_list:"); ok {
				out[d] = strings.TrimSpace(v)
			}
		}
	}
	return out
}

func TestPin(t *testing.T) {
	orig, err := Affinity()
	if err != nil {
		t.Fatal(err)
	}
	origProcs := runtime.GOMAXPROCS(0)
	t.Cleanup(func() {
		if err := Pin(orig); err != nil {
			t.Errorf("restore affinity %v: %v", orig, err)
		}
		runtime.GOMAXPROCS(origProcs)
	})
	target := orig[len(orig)-1:]
	if err := Pin(target); err != nil {
		t.Fatalf("Pin(%v): %v", target, err)
	}
	if got := runtime.GOMAXPROCS(0); got != 1 {
		t.Errorf("GOMAXPROCS = %d after pinning to one CPU", got)
	}
	got, err := Affinity()
	if err != nil || !reflect.DeepEqual(got, target) {
		t.Fatalf("Affinity = %v, %v; want %v", got, err, target)
	}
	for th, cpus := range threadCPUs(t) {
		if cpus != strconv.Itoa(target[0]) {
			t.Errorf("thread %s runs on %s, want %d", th, cpus, target[0])
		}
	}
	// A thread started after Pin inherits the mask.
	done := make(chan []int)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		c, _ := Affinity()
		done <- c
	}()
	if c := <-done; !reflect.DeepEqual(c, target) {
		t.Errorf("new thread's affinity %v, want %v", c, target)
	}
}

func TestPinErrors(t *testing.T) {
	if err := Pin(nil); err != nil {
		t.Errorf("Pin(nil) = %v, want nil", err)
	}
	if err := Pin([]int{-1}); err == nil {
		t.Error("Pin([-1]) succeeded")
	}
	if err := Pin([]int{1 << 20}); err == nil {
		t.Error("Pin([1<<20]) succeeded")
	}
}
