//go:build race

package cli

// raceEnabled says this test binary has the race detector, which makes
// numeric code 5-10 times slower. Numeric checks that exercise no concurrency run in the lane without it (make test-cpu1); the race lane keeps the ones that do, on smaller inputs.
const raceEnabled = true
