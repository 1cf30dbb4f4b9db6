package launcher_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"math/rand/v2"
	"testing"

	"github.com/qlaunch/qlaunch/kernels"
	"github.com/qlaunch/qlaunch/launcher/launchertest"
	"github.com/qlaunch/qlaunch/launcher/wire"
)

// TestLargeRecordsRelayed maps tasks with large payloads through two relays
// (server and manager), which forward large records by reference: each
// task returns the SHA-256 of its payload followed by the payload itself,
// so large results travel back through the relays the same way. Small
// tasks in the same map check that batches and large records mix.
func TestLargeRecordsRelayed(t *testing.T) {
	echo := kernels.Kernel{Name: "sumecho", Func: func(_ context.Context, _ kernels.Runtime, _ []string, p []byte) ([]byte, error) {
		sum := sha256.Sum256(p)
		return append(sum[:], p...), nil
	}}
	rng := rand.New(rand.NewPCG(1, 2))
	random := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return b
	}
	repetitive := bytes.Repeat([]byte("qlaunch large record "), 40000)
	payloads := [][]byte{
		random(1 << 20), []byte("small"), repetitive, random(64 << 10), random(64<<10 - 1),
		random(300 << 10), nil, random(2<<20 + 3), repetitive[:100<<10],
	}
	for _, comp := range []wire.Compression{wire.CompressNone, wire.CompressS2, wire.CompressZstd} {
		t.Run(comp.String(), func(t *testing.T) {
			tr := launchertest.Start(t, launchertest.Shape{Managers: []launchertest.Shape{{Workers: []int{2}}}}, launchertest.Options{
				Kernels: []kernels.Kernel{echo},
				Wire:    wire.Options{Compression: comp, Threshold: 1024},
			})
			c := tr.Client()
			ctx := ctxT(t)
			ts := make([]kernels.Task, len(payloads))
			for i, p := range payloads {
				ts[i] = kernels.Task{Kernel: "sumecho", Payload: p}
			}
			for round := range 3 {
				vals := mapWait(t, ctx, c, ts)
				for i, p := range payloads {
					sum := sha256.Sum256(p)
					want := append(sum[:], p...)
					if !bytes.Equal(vals[i], want) {
						t.Fatalf("round %d task %d (%d bytes): got %d bytes, not the sum and payload", round, i, len(p), len(vals[i]))
					}
				}
			}
		})
	}
}
