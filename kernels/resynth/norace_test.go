//go:build !race

package resynth

// raceEnabled: see race_test.go.
const raceEnabled = false
