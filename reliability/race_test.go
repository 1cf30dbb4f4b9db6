//go:build race

package reliability_test

// raceEnabled says this test binary has the race detector, which makes
// numeric code 5-10 times slower. TestChaos splits its seeds between the race lane and the one-CPU lane.
const raceEnabled = true
