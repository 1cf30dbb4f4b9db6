package transport

import (
	"testing"
	"time"
)

// TestDialBackoff: refused tries wait from 50 µs, doubling; a busy or
// dropping peer's from 10 ms; both up to 500 ms.
func TestDialBackoff(t *testing.T) {
	var got []time.Duration
	var d time.Duration
	for range 5 {
		d = dialBackoff(d, false)
		got = append(got, d)
	}
	d = dialBackoff(d, true) // the peer listens now, and is busy
	got = append(got, d)
	for range 8 {
		d = dialBackoff(d, true)
	}
	got = append(got, d)
	want := []time.Duration{50 * time.Microsecond, 100 * time.Microsecond, 200 * time.Microsecond,
		400 * time.Microsecond, 800 * time.Microsecond, 10 * time.Millisecond, 500 * time.Millisecond}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("got %v, want %v", got, want)
		}
	}
}
