//go:build !race

package configs

// raceEnabled: see race_test.go.
const raceEnabled = false
