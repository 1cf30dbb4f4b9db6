package wire

import (
	"bytes"
	"fmt"
	"io"
	"testing"
)

// frameLog records the frames written to it.
type frameLog struct {
	kinds  []Kind
	bodies [][]byte
}

func (f *frameLog) WriteFrame(k Kind, p []byte) error {
	f.kinds = append(f.kinds, k)
	f.bodies = append(f.bodies, append([]byte(nil), p...))
	return nil
}

func (f *frameLog) Flush() error { return nil }

func TestWriteBatch(t *testing.T) {
	rec := func(id uint64, n int) []byte { return AppendRecord(nil, id, bytes.Repeat([]byte{byte(id)}, n)) }
	logRec := func(i int, n int) []byte {
		return AppendLog(nil, &LogRecord{Task: uint64(i), Msg: string(bytes.Repeat([]byte{'m'}, n)), Attrs: []string{"k", "v"}})
	}
	join := func(rs ...[]byte) []byte { return bytes.Join(rs, nil) }
	big, half, small := rec(1, MaxBatch+10), rec(2, MaxBatch/2), rec(3, 10)
	exact := rec(4, MaxBatch-4) // id 1 byte, length 3 bytes
	if len(exact) != MaxBatch {
		t.Fatalf("record of %d bytes, want %d", len(exact), MaxBatch)
	}
	for _, tc := range []struct {
		name  string
		kind  Kind
		batch []byte
		want  [][]byte // frames
	}{
		{"small", KindSubmit, join(small, small), [][]byte{join(small, small)}},
		{"exactly MaxBatch", KindResult, exact, nil},
		{"MaxBatch and one more", KindResult, join(exact, small), [][]byte{exact, small}},
		{"halves", KindSubmit, join(half, half, half), [][]byte{join(half), join(half), join(half)}},
		{"halves and small", KindResult, join(half, small, half, small), [][]byte{join(half, small), join(half, small)}},
		{"one record over MaxBatch", KindSubmit, join(small, big, small), [][]byte{join(small), join(big), join(small)}},
		{"big alone", KindSubmit, big, [][]byte{big}},
		{"logs", KindLog, join(logRec(1, MaxBatch/2), logRec(2, MaxBatch/2), logRec(3, 5)),
			[][]byte{logRec(1, MaxBatch/2), join(logRec(2, MaxBatch/2), logRec(3, 5))}},
		{"other kinds go whole", KindStatus, bytes.Repeat([]byte{1}, MaxBatch+1), nil},
		{"malformed goes whole", KindSubmit, join(bytes.Repeat([]byte{0xff}, 11), half, half), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := tc.want
			if want == nil {
				want = [][]byte{tc.batch}
			}
			var got frameLog
			if err := WriteBatch(&got, tc.kind, tc.batch); err != nil {
				t.Fatal(err)
			}
			if len(got.bodies) != len(want) {
				t.Fatalf("%d frames of %v, want %d of %v", len(got.bodies), lens(got.bodies), len(want), lens(want))
			}
			for i := range want {
				if got.kinds[i] != tc.kind || !bytes.Equal(got.bodies[i], want[i]) {
					t.Errorf("frame %d: %v of %d bytes, want %v of %d", i, got.kinds[i], len(got.bodies[i]), tc.kind, len(want[i]))
				}
			}
		})
	}
}

func lens(bs [][]byte) []int {
	var n []int
	for _, b := range bs {
		n = append(n, len(b))
	}
	return n
}

func TestSplitCancel(t *testing.T) {
	ids := make([]uint64, 2*MaxCancelIDs+3)
	for i := range ids {
		ids[i] = uint64(i) << 40
	}
	var got []uint64
	var sizes []int
	SplitCancel(ids, func(b []byte) {
		var err error
		before := len(got)
		if got, err = DecodeCancel(b, got); err != nil {
			t.Fatal(err)
		}
		sizes = append(sizes, len(got)-before)
		if len(b) > MaxBatch {
			t.Errorf("cancel message of %d bytes, want at most %d", len(b), MaxBatch)
		}
	})
	if fmt.Sprint(sizes) != fmt.Sprint([]int{MaxCancelIDs, MaxCancelIDs, 3}) {
		t.Errorf("messages of %v ids", sizes)
	}
	if fmt.Sprint(got) != fmt.Sprint(ids) {
		t.Error("ids differ after the round trip")
	}
	SplitCancel(nil, func([]byte) { t.Error("a message for no ids") })
}

// TestCompressionProbe: large payloads are compressed only when their
// first probeSize bytes compress; below probeMin every payload is tried.
func TestCompressionProbe(t *testing.T) {
	half := append(repetitiveBytes(probeSize), randomBytes(7, probeMin)...)
	for _, tc := range []struct {
		name    string
		payload []byte
		want    uint64 // compressed frames
	}{
		{"random large", randomBytes(1, probeMin), 0},
		{"repetitive large", repetitiveBytes(probeMin), 1},
		{"random start, repetitive rest", append(randomBytes(2, probeSize), repetitiveBytes(probeMin)...), 0},
		{"repetitive start, random rest", half, 1},
		{"repetitive huge", repetitiveBytes(zstdMaxFrame + 1), 1},
		{"repetitive small", repetitiveBytes(probeMin - 1), 1},
	} {
		for _, comp := range []Compression{CompressS2, CompressZstd} {
			t.Run(tc.name+"/"+comp.String(), func(t *testing.T) {
				var buf bytes.Buffer
				c := NewConn(&buf, Options{Compression: comp})
				if err := c.WriteFrame(KindSubmit, tc.payload); err != nil {
					t.Fatal(err)
				}
				if err := c.Flush(); err != nil {
					t.Fatal(err)
				}
				if st := c.Stats(); st.CompressedOut != tc.want {
					t.Errorf("%d compressed frames, want %d", st.CompressedOut, tc.want)
				}
				_, got, err := c.ReadFrame()
				if err != nil || !bytes.Equal(got, tc.payload) {
					t.Fatalf("read back %d bytes, %v", len(got), err)
				}
			})
		}
	}
}

// TestKeep: a kept payload survives later reads, plain or decompressed,
// and the frames after it read correctly.
func TestKeep(t *testing.T) {
	for _, comp := range allCompressions {
		t.Run(comp.String(), func(t *testing.T) {
			payloads := [][]byte{repetitiveBytes(200 << 10), randomBytes(3, 100), repetitiveBytes(300 << 10), randomBytes(4, 70<<10), randomBytes(5, 10)}
			var buf bytes.Buffer
			w := NewConn(&buf, Options{Compression: comp})
			for _, p := range payloads {
				if err := w.WriteFrame(KindResult, p); err != nil {
					t.Fatal(err)
				}
			}
			if err := w.Flush(); err != nil {
				t.Fatal(err)
			}
			r := NewConn(readWriter{&buf, io.Discard}, Options{})
			var kept [][]byte
			for i := range payloads {
				_, p, err := r.ReadFrame()
				if err != nil {
					t.Fatalf("frame %d: %v", i, err)
				}
				if i%2 == 0 {
					r.Keep()
					kept = append(kept, p)
				} else if !bytes.Equal(p, payloads[i]) {
					t.Errorf("frame %d differs", i)
				}
			}
			for i, p := range kept {
				if !bytes.Equal(p, payloads[2*i]) {
					t.Errorf("kept frame %d changed by later reads", 2*i)
				}
			}
		})
	}
}
