package main

import (
	"runtime/debug"
	"testing"
)

func TestTuneRoleGC(t *testing.T) {
	tests := []struct {
		gogc string
		want int
	}{
		{"", roleGCPercent}, // not set: the roles' target
		{"50", 100},         // set: left as the runtime read it (here 100)
		{"off", 100},
	}
	for _, tc := range tests {
		t.Run("GOGC="+tc.gogc, func(t *testing.T) {
			orig := debug.SetGCPercent(100)
			defer debug.SetGCPercent(orig)
			tuneRoleGC(&env{getenv: func(k string) string {
				if k == "GOGC" {
					return tc.gogc
				}
				return ""
			}})
			if got := debug.SetGCPercent(100); got != tc.want {
				t.Errorf("GC percent %d, want %d", got, tc.want)
			}
		})
	}
}
