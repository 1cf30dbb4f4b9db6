// Command reldriver is the client side of the reliability tests: it runs
// as the command of qlaunch run (soak; idle, which only keeps an attached
// runtime up until it is interrupted, for tests that are its clients), as a
// client to be killed mid-Map (hold), and prints the report table (table).
//
//	reldriver soak [-tiny N] [-big N] [-size BYTES] [-every N] -out FILE
//	reldriver hold -n N -dir DIR [-sleep MS]
//	reldriver idle -dir DIR
//	reldriver table FILE
//
// soak and hold find the runtime through QLAUNCH_ADDR and
// QLAUNCH_SECRET_FILE, as qlaunch run sets them.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/qlaunch/qlaunch/kernels"
	"github.com/qlaunch/qlaunch/launcher/client"
	"github.com/qlaunch/qlaunch/launcher/wire"
	"github.com/qlaunch/qlaunch/reliability"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	err := run(ctx, os.Args[1:])
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "reldriver:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return errors.New("usage: reldriver soak|hold|table …")
	}
	switch args[0] {
	case "soak":
		return soak(ctx, args[1:])
	case "hold":
		return hold(ctx, args[1:])
	case "idle":
		// -dir DIR only marks the process as the test's.
		<-ctx.Done()
		return nil
	case "table":
		if len(args) != 2 {
			return errors.New("usage: reldriver table FILE")
		}
		f, err := os.Open(args[1])
		if err != nil {
			return err
		}
		defer f.Close()
		rows, err := reliability.ReadRows(f)
		if err != nil {
			return err
		}
		return reliability.WriteTable(os.Stdout, rows)
	}
	return fmt.Errorf("unknown mode %q", args[0])
}

func dial(ctx context.Context) (*client.Client, error) {
	s, err := wire.LoadSecretFile(os.Getenv("QLAUNCH_SECRET_FILE"))
	if err != nil {
		return nil, err
	}
	return client.Dial(ctx, os.Getenv("QLAUNCH_ADDR"), client.Options{Secret: s})
}

// hold maps n gated tasks (or sleep tasks of -sleep MS), says so on
// stdout and waits to be killed.
func hold(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("hold", flag.ContinueOnError)
	n := fs.Int("n", 2, "gated tasks to map")
	dir := fs.String("dir", "", "directory of the FIFOs")
	sleepMS := fs.Int("sleep", 0, "map sleep tasks of this many milliseconds instead of gated ones")
	if err := fs.Parse(args); err != nil {
		return err
	}
	c, err := dial(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	ts := make([]kernels.Task, *n)
	for i := range ts {
		ts[i] = reliability.GatedTask(*dir, i)
		if *sleepMS > 0 {
			ts[i] = kernels.Task{Kernel: "sleep", Args: []string{strconv.Itoa(*sleepMS)}}
		}
	}
	f, err := c.Map(ctx, ts)
	if err != nil {
		return err
	}
	fmt.Println("mapped")
	_, err = c.Wait(ctx, f)
	return err
}

// soak runs tiny tasks, then tasks with large payloads, sampling the
// resident memory of the runtime's processes every so many tasks.
func soak(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("soak", flag.ContinueOnError)
	tiny := fs.Int("tiny", 10000, "tiny tasks (echo of their index)")
	big := fs.Int("big", 100, "tasks with a large payload (echo of the payload)")
	size := fs.Int("size", 1<<20, "payload bytes of each large task")
	every := fs.Int("every", 1000, "sample memory every this many tiny tasks (every/100 large ones)")
	out := fs.String("out", "", "write the JSON report here")
	if err := fs.Parse(args); err != nil {
		return err
	}
	rep := reliability.SoakReport{Tiny: *tiny, Big: *big, PayloadBytes: *size, GoroutinesBefore: runtime.NumGoroutine()}
	c, err := dial(ctx)
	if err != nil {
		return err
	}
	sample := func(phase string, tasks int) {
		rep.Samples = append(rep.Samples, reliability.SoakSample{Phase: phase, Tasks: tasks, RSSKiB: rss()})
	}

	start := time.Now()
	const batch = 1000
	every1 := max(batch, *every/batch*batch)
	var prev kernels.Future
	prevLo, prevN := 0, 0
	check := func() error {
		if prevN == 0 {
			return nil
		}
		vals, err := c.Wait(ctx, prev)
		if err != nil {
			return err
		}
		for j, v := range vals {
			if string(v) != strconv.Itoa(prevLo+j) {
				return fmt.Errorf("tiny task %d returned %q", prevLo+j, v)
			}
		}
		return nil
	}
	sample("tiny", 0)
	for lo := 0; lo < *tiny; lo += batch {
		n := min(batch, *tiny-lo)
		ts := make([]kernels.Task, n)
		for j := range ts {
			ts[j] = kernels.Task{Kernel: "echo", Args: []string{strconv.Itoa(lo + j)}}
		}
		f, err := c.Map(ctx, ts) // one batch in flight while the previous is checked
		if err != nil {
			return err
		}
		if err := check(); err != nil {
			return err
		}
		prev, prevLo, prevN = f, lo, n
		if lo > 0 && lo%every1 == 0 {
			sample("tiny", lo)
		}
	}
	if err := check(); err != nil {
		return err
	}
	sample("tiny", *tiny)
	rep.TinySeconds = time.Since(start).Seconds()

	start = time.Now()
	payload := bytes.Repeat([]byte("0123456789abcdef"), *size/16+1)[:*size]
	const bigBatch = 8
	everyBig := max(bigBatch, *every/100/bigBatch*bigBatch)
	sample("big", 0)
	for lo := 0; lo < *big; lo += bigBatch {
		n := min(bigBatch, *big-lo)
		ts := make([]kernels.Task, n)
		for j := range ts {
			ts[j] = kernels.Task{Kernel: "echo", Payload: payload}
		}
		f, err := c.Map(ctx, ts)
		if err != nil {
			return err
		}
		vals, err := c.Wait(ctx, f)
		if err != nil {
			return err
		}
		for j, v := range vals {
			if !bytes.Equal(v, payload) {
				return fmt.Errorf("large task %d returned %d bytes, want the %d sent", lo+j, len(v), len(payload))
			}
		}
		if done := lo + n; done%everyBig == 0 && done < *big {
			sample("big", done)
		}
	}
	sample("big", *big)
	rep.BigSeconds = time.Since(start).Seconds()
	c.Close()
	rep.GoroutinesAfter = settledGoroutines(rep.GoroutinesBefore)

	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	if *out == "" {
		_, err = os.Stdout.Write(append(b, '\n'))
		return err
	}
	return os.WriteFile(*out, b, 0o644)
}

// settledGoroutines returns the goroutine count once it is back to want
// or after a bounded wait (goroutines of a closed connection end soon
// after Close returns).
func settledGoroutines(want int) int {
	deadline := time.Now().Add(5 * time.Second)
	for {
		n := runtime.NumGoroutine()
		if n <= want || time.Now().After(deadline) {
			return n
		}
		runtime.Gosched()
		time.Sleep(10 * time.Millisecond) // polling a count; nothing to wait on
	}
}

// rss reads the resident memory of this client, of its parent (qlaunch
// run: the server) and of the parent's other children (the worker ranks).
func rss() map[string]int {
	me, ppid := os.Getpid(), os.Getppid()
	m := map[string]int{}
	if mem, err := reliability.ReadMem(me); err == nil {
		m["client"] = mem.RSSKiB
	}
	if mem, err := reliability.ReadMem(ppid); err == nil {
		m["run"] = mem.RSSKiB
	}
	for _, p := range reliability.Processes(func(p reliability.Process) bool { return p.PPID == ppid && p.PID != me }) {
		name := "child-" + strconv.Itoa(p.PID)
		if f := strings.Fields(p.Cmdline); len(f) > 1 && f[1] == "worker" {
			name = "worker"
			for i := range f[:len(f)-1] {
				if f[i] == "--rank" {
					name = "worker-" + f[i+1]
				}
			}
		}
		if mem, err := reliability.ReadMem(p.PID); err == nil {
			m[name] = mem.RSSKiB
		}
	}
	return m
}
