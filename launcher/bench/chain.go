package bench

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os/exec"
	"strings"
	"sync"
	"time"
)

// HopArg is the hidden subcommand of the qlaunch binary that runs one
// process of the chain workload (ServeHop): Options.Hop is that binary and
// HopArg.
const HopArg = "bench-hop"

// chainBuffer is the socket buffer size of the chain's relay, each way:
// the runtime's links ask for the same.
const chainBuffer = 4 << 20

// chainRelayBuffer is what the relay reads into at a time, reused: the
// best a user-space relay can do, short of splice(2), which a relay that
// reads its frames cannot use.
const chainRelayBuffer = 1 << 20

// runChain measures the physical reference for the runtime's shape: the
// round trip and bulk workloads of loopback, but through three processes
// as a task travels through a client, a server (relay) and a worker rank,
// over raw TCP with nothing of the runtime in the way.
func runChain(ctx context.Context, r *runner) ([]Result, error) {
	if len(r.opts.Hop) == 0 {
		return nil, ErrNoHop
	}
	echo, err := startHop(ctx, r.opts.Hop, "echo")
	if err != nil {
		return nil, err
	}
	defer echo.stop()
	relay, err := startHop(ctx, r.opts.Hop, "relay", echo.addr)
	if err != nil {
		return nil, err
	}
	defer relay.stop()

	var out []Result
	res, err := r.repeat("round-trip", loopbackRoundTrips, func() (sample, error) {
		return roundTrips(relay.addr, loopbackRoundTrips)
	})
	if err != nil {
		return nil, err
	}
	out = append(out, res)
	res, err = r.repeat("bulk", loopbackBulkWrites, func() (sample, error) {
		return bulk(relay.addr, loopbackBulkWrites)
	})
	if err != nil {
		return nil, err
	}
	if err := relay.stop(); err != nil {
		return nil, err
	}
	if err := echo.stop(); err != nil {
		return nil, err
	}
	return append(out, res), nil
}

// hop is a running process of the chain.
type hop struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stderr *bytes.Buffer
	addr   string
	once   sync.Once
	err    error
}

// startHop starts argv with args and reads the address it listens on.
func startHop(ctx context.Context, argv []string, args ...string) (*hop, error) {
	cmd := exec.CommandContext(ctx, argv[0], append(argv[1:len(argv):len(argv)], args...)...)
	cmd.WaitDelay = 5 * time.Second
	h := &hop{cmd: cmd, stderr: new(bytes.Buffer)}
	cmd.Stderr = h.stderr
	var err error
	if h.stdin, err = cmd.StdinPipe(); err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("hop: %w", err)
	}
	line, rerr := bufio.NewReader(out).ReadString('\n')
	if rerr != nil {
		err := h.stop()
		return nil, fmt.Errorf("hop %s %s gave no address: %w", argv[0], strings.Join(args, " "), errors.Join(rerr, err))
	}
	h.addr = strings.TrimSpace(line)
	return h, nil
}

// stop ends the hop (its stdin closes) and waits for it.
func (h *hop) stop() error {
	h.once.Do(func() {
		h.stdin.Close()
		if err := h.cmd.Wait(); err != nil {
			h.err = fmt.Errorf("hop %s: %w: %s", h.cmd.Path, err, bytes.TrimSpace(h.stderr.Bytes()))
		}
	})
	return h.err
}

// ServeHop runs one process of the chain workload, as `qlaunch bench-hop`
// does: args "echo" serves the loopback protocol (an echo of 64-byte
// messages, a sink of bulk writes), args "relay ADDR" forwards every
// connection to ADDR, byte for byte both ways. It listens on 127.0.0.1:0,
// writes that address as one line to stdout, and serves until stdin ends
// (the parent closed it, or died).
func ServeHop(args []string, stdin io.Reader, stdout io.Writer) error {
	var serve func(net.Conn) error
	switch {
	case len(args) == 1 && args[0] == "echo":
		serve = serveLoopback
	case len(args) == 2 && args[0] == "relay":
		upstream := args[1]
		serve = func(c net.Conn) error { return relayTo(c, upstream) }
	default:
		return fmt.Errorf("%w: want echo or relay ADDR, got %q", ErrHopUsage, args)
	}
	lb, err := startServer(serve)
	if err != nil {
		return err
	}
	defer lb.close()
	if _, err := fmt.Fprintln(stdout, lb.addr()); err != nil {
		return err
	}
	_, err = io.Copy(io.Discard, stdin)
	return err
}

// relayTo forwards c to a new connection to upstream and back, until
// either end closes.
func relayTo(c net.Conn, upstream string) error {
	up, err := net.Dial("tcp", upstream)
	if err != nil {
		return err
	}
	defer up.Close()
	for _, nc := range []net.Conn{c, up} {
		if tc, ok := nc.(*net.TCPConn); ok {
			_ = tc.SetReadBuffer(chainBuffer)
			_ = tc.SetWriteBuffer(chainBuffer)
		}
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		pump(c, up)
		c.Close()
	})
	pump(up, c)
	up.Close()
	wg.Wait()
	return nil
}

// pump copies src to dst through one reused buffer until either fails.
func pump(dst, src net.Conn) {
	buf := make([]byte, chainRelayBuffer)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}
