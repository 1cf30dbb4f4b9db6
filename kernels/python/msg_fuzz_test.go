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

// FuzzDecodeMapFn feeds arbitrary bodies to decodeMapFn: it returns an
// error or, for each call, a payload that is the function part followed
// by that call, never aliasing the body.
func FuzzDecodeMapFn(f *testing.F) {
	body := appendChunk(appendU32(nil, 3), []byte("\x00\x00\x00\x02fn"))
	body = appendChunk(appendChunk(appendU32(body, 2), []byte("a")), []byte("call"))
	f.Add(body)
	f.Add(appendU32(appendChunk(appendU32(nil, 1), nil), 0))
	f.Add([]byte{0, 0, 0, 1, 0, 0, 0, 9})
	f.Fuzz(func(t *testing.T, b []byte) {
		in := bytes.Clone(b)
		fid, pls, err := decodeMapFn(in)
		if err != nil {
			return
		}
		clear(in) // the payloads are their own memory: they must not change
		_, rest, _ := cutU32(b)
		fn, rest, err := cutChunk(rest)
		if err != nil {
			t.Fatalf("decodeMapFn(%x) succeeded on a body without a function part", b)
		}
		calls, err := decodeChunks(rest)
		if err != nil || len(calls) != len(pls) || fid != binary.BigEndian.Uint32(b) {
			t.Fatalf("decodeMapFn(%x) = %d, %d payloads; the body has %d calls (%v)", b, fid, len(pls), len(calls), err)
		}
		for i, pl := range pls {
			if !bytes.Equal(pl, append(append([]byte(nil), fn...), calls[i]...)) {
				t.Fatalf("payload %d = %x, want %x + %x", i, pl, fn, calls[i])
			}
		}
	})
}

// FuzzFuncPart: funcPart returns nil or the payload's length-prefixed
// function part, a prefix of it.
func FuzzFuncPart(f *testing.F) {
	f.Add([]byte{0, 0, 0, 2, 'f', 'n', 'c'})
	f.Add([]byte{0, 0, 0, 9, 'f'})
	f.Fuzz(func(t *testing.T, b []byte) {
		fn := funcPart(b)
		if fn == nil {
			if len(b) >= 4 && uint64(binary.BigEndian.Uint32(b)) <= uint64(len(b)-4) {
				t.Fatalf("funcPart(%x) = nil for a well-formed payload", b)
			}
			return
		}
		if len(fn) != 4+int(binary.BigEndian.Uint32(b)) || !bytes.HasPrefix(b, fn) || cap(fn) != len(fn) {
			t.Fatalf("funcPart(%x) = %x", b, fn)
		}
	})
}
