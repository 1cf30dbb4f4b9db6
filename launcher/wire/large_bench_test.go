package wire

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/klauspost/compress/s2"
)

// largePayloads returns 1 MiB of random (incompressible) and repetitive
// (compressible) bytes, as qlaunch bench's payload workload sends.
func largePayloads(n int) map[string][]byte {
	random := make([]byte, n)
	rng := rand.NewChaCha8([32]byte{'q'})
	_, _ = rng.Read(random)
	rep := make([]byte, n)
	const pattern = "qlaunch bench payload, repetitive and compressible. "
	for i := range rep {
		rep[i] = pattern[i%len(pattern)]
	}
	return map[string][]byte{"random": random, "repetitive": rep}
}

// BenchmarkLargeCodecs measures each way of encoding (and decoding) a
// large payload: zstd, s2, and the s2 probe of its first probeSize bytes.
func BenchmarkLargeCodecs(b *testing.B) {
	codecs := NewCodecs(0)
	enc, _ := codecs.encoder()
	dec, _ := codecs.decoder()
	for _, name := range []string{"random", "repetitive"} {
		p := largePayloads(1 << 20)[name]
		b.Run(fmt.Sprintf("zstd-encode/%s", name), func(b *testing.B) {
			b.SetBytes(int64(len(p)))
			var out []byte
			for b.Loop() {
				out = enc.EncodeAll(p, out[:0])
			}
			b.ReportMetric(float64(len(out))/float64(len(p)), "ratio")
		})
		b.Run(fmt.Sprintf("zstd-decode/%s", name), func(b *testing.B) {
			z := enc.EncodeAll(p, nil)
			b.SetBytes(int64(len(p)))
			var out []byte
			for b.Loop() {
				out, _ = dec.DecodeAll(z, out[:0])
			}
		})
		b.Run(fmt.Sprintf("s2-encode/%s", name), func(b *testing.B) {
			b.SetBytes(int64(len(p)))
			var out []byte
			for b.Loop() {
				out = appendS2(out[:0], p)
			}
			b.ReportMetric(float64(len(out))/float64(len(p)), "ratio")
		})
		b.Run(fmt.Sprintf("s2-decode/%s", name), func(b *testing.B) {
			z := s2.Encode(nil, p)
			b.SetBytes(int64(len(p)))
			var out []byte
			for b.Loop() {
				out, _ = decodeS2(out, z, 1<<30)
			}
		})
		b.Run(fmt.Sprintf("s2-probe64k/%s", name), func(b *testing.B) {
			b.SetBytes(int64(len(p)))
			var out []byte
			for b.Loop() {
				out = appendS2(out[:0], p[:64<<10])
			}
		})
		b.Run(fmt.Sprintf("memmove/%s", name), func(b *testing.B) {
			b.SetBytes(int64(len(p)))
			out := make([]byte, len(p))
			for b.Loop() {
				copy(out, p)
			}
		})
	}
}

// BenchmarkZstdBatchSize measures zstd on one 16 MiB frame against 16
// frames of 1 MiB (both of 1 MiB records of compressible bytes).
func BenchmarkZstdBatchSize(b *testing.B) {
	codecs := NewCodecs(0)
	enc, _ := codecs.encoder()
	p := largePayloads(1 << 20)["repetitive"]
	var big []byte
	for range 16 {
		big = append(big, p...)
	}
	for _, frame := range []int{1 << 20, 16 << 20} {
		b.Run(fmt.Sprintf("frame=%dMiB", frame>>20), func(b *testing.B) {
			b.SetBytes(int64(len(big)))
			var out []byte
			for b.Loop() {
				for off := 0; off < len(big); off += frame {
					out = enc.EncodeAll(big[off:off+frame], out[:0])
				}
			}
		})
	}
}
