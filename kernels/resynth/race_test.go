//go:build race

package resynth

// raceEnabled says this test binary has the race detector, which makes
// numeric code 5-10 times slower. TestResynthGateSets checks the gate sets
// searched on three-qubit blocks in the lane without it (make test-cpu1);
// the others run in both, on the same 2-slot runtime.
const raceEnabled = true
