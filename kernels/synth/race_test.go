//go:build race

package synth

// raceEnabled says this test binary has the race detector, which makes
// numeric code 5-10 times slower. The largest determinism case runs in the lane without it (make test-cpu1); the smaller ones run in both.
const raceEnabled = true
