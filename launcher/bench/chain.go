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
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// HopArg is the hidden subcommand of the qlaunch binary that runs one
// process of the chain workload (ServeHop): Options.Hop is that binary and
// HopArg.
const HopArg = "bench-hop"

// chainRelayBuffer is what the relay reads into at a time, reused: the
// best a user-space relay can do, short of splice(2), which a relay that
// reads its frames cannot use.
const chainRelayBuffer = 1 << 20

// hopTimeout bounds how long a hop may take to start listening, and the
// relay's dial of the next hop.
const hopTimeout = 10 * time.Second

// hopStderrTail is how much of a hop's standard error an error keeps.
const hopStderrTail = 2000

// runChain measures the physical reference for the runtime's shape: the
// round trip and bulk workloads of loopback, but through three processes
// as a task travels through a client, a server (relay) and a worker rank,
// over raw TCP with nothing of the runtime in the way.
func runChain(ctx context.Context, r *runner) (_ []Result, err error) {
	if len(r.opts.Hop) == 0 {
		return nil, ErrNoHop
	}
	echo, err := startHop(ctx, r.opts.Hop, "echo")
	if err != nil {
		return nil, err
	}
	relay, err := startHop(ctx, r.opts.Hop, "relay", echo.addr)
	if err != nil {
		return nil, errors.Join(err, echo.stop())
	}
	// A hop that failed says why on its way out: its exit status and
	// standard error join the error of the measurement.
	defer func() { err = errors.Join(err, relay.stop(), echo.stop()) }()

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
	return append(out, res), nil
}

// hop is a running process of the chain.
type hop struct {
	name   string // "qlaunch bench-hop relay ADDR"
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stderr *bytes.Buffer
	addr   string
	once   sync.Once
	err    error
}

// startHop starts argv with args and reads the address it listens on;
// a hop that gives none within hopTimeout is killed.
func startHop(ctx context.Context, argv []string, args ...string) (*hop, error) {
	cmd := exec.CommandContext(ctx, argv[0], append(argv[1:len(argv):len(argv)], args...)...)
	cmd.WaitDelay = 5 * time.Second
	name := strings.Join(append(append([]string{filepath.Base(argv[0])}, argv[1:]...), args...), " ")
	h := &hop{name: name, cmd: cmd, stderr: new(bytes.Buffer)}
	cmd.Stderr = h.stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if h.stdin, err = cmd.StdinPipe(); err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("hop %s: %w", h.name, err)
	}
	kill := time.AfterFunc(hopTimeout, func() { _ = cmd.Process.Kill() })
	line, rerr := bufio.NewReader(out).ReadString('\n')
	if !kill.Stop() { // killed: whatever the read gave, the hop is gone
		rerr = errors.Join(fmt.Errorf("no address within %v", hopTimeout), rerr)
	}
	if rerr != nil {
		return nil, fmt.Errorf("hop %s gave no address: %w", h.name, errors.Join(rerr, h.stop()))
	}
	h.addr = strings.TrimSpace(line)
	return h, nil
}

// stop ends the hop (its stdin closes) and waits for it.
func (h *hop) stop() error {
	h.once.Do(func() {
		h.stdin.Close()
		if err := h.cmd.Wait(); err != nil {
			msg := bytes.TrimSpace(h.stderr.Bytes())
			if len(msg) > hopStderrTail {
				msg = msg[len(msg)-hopStderrTail:]
			}
			h.err = fmt.Errorf("hop %s: %w: %s", h.name, err, msg)
		}
	})
	return h.err
}

// ServeHop runs one process of the chain workload, as `qlaunch bench-hop`
// does: args "echo" serves the loopback protocol (an echo of 64-byte
// messages, a sink of bulk writes), args "relay ADDR" forwards every
// connection to ADDR, byte for byte both ways. It listens on 127.0.0.1:0,
// writes that address as one line to stdout, and serves until stdin ends
// (the parent closed it, or died). A relay that cannot reach ADDR says so
// on stderr and closes the connection it could not forward.
func ServeHop(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	var serve func(net.Conn) error
	switch {
	case len(args) == 1 && args[0] == "echo":
		serve = serveLoopback
	case len(args) == 2 && args[0] == "relay":
		upstream := args[1]
		var mu sync.Mutex
		serve = func(c net.Conn) error {
			err := relayTo(c, upstream)
			if err != nil {
				mu.Lock()
				fmt.Fprintf(stderr, "bench-hop relay: %v\n", err)
				mu.Unlock()
			}
			return err
		}
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
	up, err := net.DialTimeout("tcp", upstream, hopTimeout)
	if err != nil {
		return err
	}
	defer up.Close()
	setSocketBuffers(up)
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
