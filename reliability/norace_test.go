//go:build !race

package reliability_test

// raceEnabled: see race_test.go.
const raceEnabled = false
