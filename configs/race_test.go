//go:build race

package configs

// raceEnabled says this test binary has the race detector, which makes
// numeric code 5-10 times slower. Plans are computed by one goroutine: the largest sizes are checked in the lane without the race detector (make test-cpu1).
const raceEnabled = true
