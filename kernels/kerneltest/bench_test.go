package kerneltest_test

import (
	"fmt"
	"testing"

	"github.com/qlaunch/qlaunch/kernels"
)

// BenchmarkFanout runs fanout 100 2 (10,101 kernels: the root, 100
// fanouts, 10,000 noop leaves) per iteration.
func BenchmarkFanout(b *testing.B) {
	for _, slots := range []int{1, 2} {
		b.Run(fmt.Sprintf("n=100/depth=2/slots=%d", slots), func(b *testing.B) {
			rt := newRuntime(b, slots, nil)
			task := kernels.Task{Kernel: "fanout", Args: []string{"100", "2"}}
			for b.Loop() {
				out, err := rt.Run(b.Context(), task)
				if err != nil || string(out) != "10000" {
					b.Fatalf("got %q, %v", out, err)
				}
			}
			b.ReportMetric(float64(rt.Stats().Tasks)/b.Elapsed().Seconds(), "tasks/s")
		})
	}
}
