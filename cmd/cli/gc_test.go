package cli

import "testing"

func TestTuneRoleGC(t *testing.T) {
	tests := []struct {
		gogc string
		want []int // the targets set
	}{
		{"", []int{roleGCPercent}}, // not set: the roles' target
		{"50", nil},                // set: left as the runtime read it
		{"off", nil},
	}
	for _, tc := range tests {
		t.Run("GOGC="+tc.gogc, func(t *testing.T) {
			var set []int
			tuneRoleGC(&env{
				getenv: func(k string) string {
					if k == "GOGC" {
						return tc.gogc
					}
					return ""
				},
				setGCPercent: func(p int) int { set = append(set, p); return 100 },
			})
			if len(set) != len(tc.want) || len(set) > 0 && set[0] != tc.want[0] {
				t.Errorf("targets set %v, want %v", set, tc.want)
			}
		})
	}
}
