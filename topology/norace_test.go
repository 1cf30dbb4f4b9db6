//go:build !race

package topology

// raceEnabled: see race_test.go.
const raceEnabled = false
