//go:build race

package client_test

// raceEnabled says this test binary has the race detector, which makes the
// client's per-map bookkeeping and byte copying 5-10 times slower. The
// long-lived client test drains fewer maps in the race lane (the same
// Map, Next and Cancel paths, the same futures-table check) and its full
// 10⁵ in the lane without it (make test-cpu1), where its heap bound is
// tightest.
const raceEnabled = true
