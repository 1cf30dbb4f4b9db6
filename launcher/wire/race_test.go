//go:build race

package wire

// raceEnabled: the race detector makes sync.Pool drop items at random, so
// code using pools (zstd) allocates now and then.
const raceEnabled = true
