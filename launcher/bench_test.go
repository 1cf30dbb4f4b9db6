package launcher_test

import (
	"context"
	"net"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/qlaunch/qlaunch/kernels"
	"github.com/qlaunch/qlaunch/launcher"
	"github.com/qlaunch/qlaunch/launcher/client"
	"github.com/qlaunch/qlaunch/launcher/wire"
)

// startBench starts an attached in-process runtime with one worker rank of
// two slots, the shape of configs/local.toml on a 2-core machine.
func startBench(b *testing.B, wo ...wire.Options) *client.Client {
	var opts wire.Options
	if len(wo) > 0 {
		opts = wo[0]
	}
	reg, err := kernels.NewRegistry(kernels.Builtin()...)
	if err != nil {
		b.Fatal(err)
	}
	a, err := launcher.StartAttached(context.Background(), launcher.AttachedConfig{
		NodeConfig: launcher.NodeConfig{Host: "bench", Registry: reg, Link: launcher.LinkConfig{Wire: opts}},
		InProcess:  true,
		Workers:    []launcher.WorkerSpec{{Rank: 1, Slots: 2}},
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { a.Close() })
	c, err := client.Dial(context.Background(), a.Addr, client.Options{Secret: a.Secret, Wire: opts})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	return c
}

// BenchmarkTiny maps N noop tasks from inside a kernel (fanout N 1).
func BenchmarkTiny(b *testing.B) {
	c := startBench(b)
	const n = 10000
	ctx := context.Background()
	for b.Loop() {
		f, err := c.Submit(ctx, kernels.Task{Kernel: "fanout", Args: []string{strconv.Itoa(n), "1"}})
		if err != nil {
			b.Fatal(err)
		}
		if v, err := c.Wait(ctx, f); err != nil || string(v[0]) != strconv.Itoa(n) {
			b.Fatalf("%q %v", v, err)
		}
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "tasks/s")
}

// BenchmarkNested runs fanout 100 2: 10,100 tasks.
func BenchmarkNested(b *testing.B) {
	c := startBench(b)
	ctx := context.Background()
	for b.Loop() {
		f, _ := c.Submit(ctx, kernels.Task{Kernel: "fanout", Args: []string{"100", "2"}})
		if v, err := c.Wait(ctx, f); err != nil || string(v[0]) != "10000" {
			b.Fatalf("%q %v", v, err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/1000, "ms/run")
}

// BenchmarkClientMap maps N noop tasks from the client, plain and with
// zstd or s2 compression of frames over 4 KiB, reporting the bytes and
// frames the client sent and received per task.
func BenchmarkClientMap(b *testing.B) {
	for _, comp := range []string{"none", "zstd", "s2"} {
		b.Run("compression="+comp, func(b *testing.B) {
			var wc wire.Compression
			if err := wc.UnmarshalText([]byte(comp)); err != nil {
				b.Fatal(err)
			}
			benchClientMap(b, wire.Options{Compression: wc})
		})
	}
}

func benchClientMap(b *testing.B, wo wire.Options) {
	c := startBench(b, wo)
	const n = 10000
	ts := make([]kernels.Task, n)
	for i := range ts {
		ts[i] = kernels.Task{Kernel: "noop"}
	}
	ctx := context.Background()
	for b.Loop() {
		f, err := c.Map(ctx, ts)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := c.Wait(ctx, f); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "tasks/s")
	st := c.Stats()
	tasks := float64(n * b.N)
	b.ReportMetric(float64(st.WireOut)/tasks, "B-out/task")
	b.ReportMetric(float64(st.WireIn)/tasks, "B-in/task")
	b.ReportMetric(float64(st.FramesOut+st.FramesIn)/tasks, "frames/task")
}

// BenchmarkLatency measures one noop round trip at a time, against a raw
// loopback TCP round trip of 64 bytes measured in the same run.
func BenchmarkLatency(b *testing.B) {
	c := startBench(b)
	ctx := context.Background()
	var lat []time.Duration
	for b.Loop() {
		t0 := time.Now()
		f, _ := c.Submit(ctx, kernels.Task{Kernel: "noop"})
		if _, err := c.Wait(ctx, f); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(t0))
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	med := lat[len(lat)/2]
	b.ReportMetric(float64(med.Nanoseconds())/1e3, "median-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds())/1e3, "p99-µs")
	raw := rawRoundTrip(b, 2000)
	b.ReportMetric(float64(raw.Nanoseconds())/1e3, "raw-µs")
	b.ReportMetric(float64(med)/float64(raw), "x-raw")
}

func rawRoundTrip(b *testing.B, n int) time.Duration {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		buf := make([]byte, 64)
		for {
			if _, err := c.Read(buf); err != nil {
				return
			}
			if _, err := c.Write(buf); err != nil {
				return
			}
		}
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	buf := make([]byte, 64)
	lat := make([]time.Duration, 0, n)
	for range n {
		t0 := time.Now()
		c.Write(buf)
		if _, err := c.Read(buf); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(t0))
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	return lat[n/2]
}
