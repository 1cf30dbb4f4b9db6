package python

import (
	"bytes"
	"encoding/binary"
	"log/slog"
	"testing"
)

// FuzzReadMsg feeds arbitrary bytes to the pipe protocol's decoders (an
// executor runs user code, so its output is not trusted to be well formed):
// they return errors, never panic, and never allocate past the input.
func FuzzReadMsg(f *testing.F) {
	f.Add(appendMsg(nil, msgMap, 7, appendU32(nil, 1), appendU32(appendChunk(appendU32(nil, 1), []byte("p")), 0)))
	f.Add(appendMsg(nil, msgDone, 1, []byte{0}, []byte("value")))
	f.Add(appendMsg(nil, msgLog, 2, appendU32(nil, 4), appendChunk(appendU32(nil, 1), []byte("hi"))))
	f.Add([]byte{0, 0, 0, 9, 1, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Add(appendMsg(nil, msgWait, 3, appendU32(nil, 2), []byte{1}))
	f.Fuzz(func(t *testing.T, b []byte) {
		r := bytes.NewReader(b)
		var buf []byte
		for range 8 {
			typ, _, body, nb, err := readMsg(r, buf)
			buf = nb
			if err != nil {
				return
			}
			if len(body) > len(b) {
				t.Fatalf("body of %d bytes from %d input bytes", len(body), len(b))
			}
			_ = typ
			if _, rest, err := cutU32(body); err == nil {
				if cs, err := decodeChunks(rest); err == nil {
					n := 0
					for _, c := range cs {
						n += len(c)
					}
					if n > len(body) {
						t.Fatalf("chunks of %d bytes from a body of %d", n, len(body))
					}
				}
			}
			if fid, blocking, err := decodeWait(body); err == nil {
				if len(body) != 4 && len(body) != 5 || blocking && body[4] != 1 || fid != binary.BigEndian.Uint32(body) {
					t.Fatalf("decodeWait(%x) = %d, %v", body, fid, blocking)
				}
			}
			logRecord(t.Context(), discard, body)
		}
	})
}

var discard = slog.New(slog.DiscardHandler)
