package bench_test

import (
	"os"
	"testing"

	"github.com/qlaunch/qlaunch/launcher/bench"
	"github.com/qlaunch/qlaunch/launcher/launchertest"
	"github.com/qlaunch/qlaunch/launcher/wire"
)

// BenchmarkWorkloads runs each client workload in process on the shape of
// configs/local.toml on 2 cores (the server is the manager of one worker
// rank of 2 slots, links zstd-compressed above 1 KiB as the topology's
// defaults say), for profiling:
//
//	go test -run='^$' -bench=Workloads/payload -cpuprofile=cpu.out ./launcher/bench
//	go tool pprof -top cpu.out
//
// Each iteration is one measured run of the workload (bench.Run with one
// repeat, after its warm-up); the figures are those of the last one.
func BenchmarkWorkloads(b *testing.B) {
	for _, tc := range []struct {
		workload string
		opts     bench.Options
	}{
		{"tiny", bench.Options{}},
		{"client-map", bench.Options{}},
		{"latency", bench.Options{}},
		{"payload", bench.Options{Tasks: 50}},
		{"nested", bench.Options{}},
	} {
		b.Run(tc.workload, func(b *testing.B) {
			tr := launchertest.Start(b, launchertest.Shape{Workers: []int{2}}, launchertest.Options{
				Kernels: bench.Kernels(),
				Wire:    benchWire(),
			})
			c := tr.Client()
			opts := tc.opts
			opts.Repeat = 1
			var rs []bench.Result
			for b.Loop() {
				var err error
				if rs, err = bench.Run(b.Context(), c, tc.workload, opts); err != nil {
					b.Fatal(err)
				}
			}
			for _, r := range rs {
				for _, f := range r.Figures {
					name := f.Name
					if r.Variant != "" {
						name = r.Variant + "-" + name
					}
					b.ReportMetric(f.Stat.Median, name)
				}
			}
		})
	}
}

// benchWire is configs/local.toml's link options (zstd above 1 KiB), or
// those QLAUNCH_BENCH_COMPRESSION names (none, s2, zstd) to compare.
func benchWire() wire.Options {
	o := wire.Options{Compression: wire.CompressZstd, Threshold: 1024}
	if s := os.Getenv("QLAUNCH_BENCH_COMPRESSION"); s != "" {
		if err := o.Compression.UnmarshalText([]byte(s)); err != nil {
			panic(err)
		}
	}
	return o
}
