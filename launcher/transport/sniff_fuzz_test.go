package transport

import (
	"bytes"
	"strings"
	"testing"

	"github.com/qlaunch/qlaunch/launcher/wire"
)

// FuzzFirstBytes: whatever a peer answers, naming it neither panics nor
// says nothing, and a refusal names it only for a frame the wire
// refused.
func FuzzFirstBytes(f *testing.F) {
	for _, s := range []string{"HTTP/1.1 400 Bad Request\r\n", "SSH-2.0-OpenSSH_9.6\r\n", "\x16\x03\x01\x00", "\x00\x01\x02", "hello"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, answer []byte) {
		fb := &firstBytes{r: bytes.NewReader(answer)}
		buf := make([]byte, 7) // reads in pieces, as a socket may deliver
		for {
			if _, err := fb.Read(buf); err != nil {
				break
			}
		}
		what := fb.what()
		if (len(answer) == 0) != (what == "") {
			t.Fatalf("answer %q named %q", answer, what)
		}
		if fb.n != min(len(answer), len(fb.buf)) || !bytes.Equal(fb.buf[:fb.n], answer[:fb.n]) {
			t.Fatalf("kept %q of %q", fb.buf[:fb.n], answer)
		}
		if err := fb.notQlaunch(wire.ErrAuth); err != nil {
			t.Fatalf("an authentication failure was taken for another protocol: %v", err)
		}
		err := fb.notQlaunch(wire.ErrBadFrame)
		if err != nil {
			if got, ok := Answered(err); !ok || got != what || !strings.Contains(err.Error(), what) {
				t.Fatalf("Answered(%v) = %q, %v; want %q", err, got, ok, what)
			}
		}
	})
}
