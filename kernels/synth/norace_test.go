//go:build !race

package synth

// raceEnabled: see race_test.go.
const raceEnabled = false
