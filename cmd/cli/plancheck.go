package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/qlaunch/qlaunch/launcher/boot"
	"github.com/qlaunch/qlaunch/launcher/netpick"
	"github.com/qlaunch/qlaunch/rank"
	"github.com/qlaunch/qlaunch/topology"
)

// checkOptions are the flags of qlaunch plan --check.
type checkOptions struct {
	check    bool
	timeout  time.Duration
	listen   bool
	duration time.Duration
	network  string
}

// maxCheckDuration bounds --duration.
const maxCheckDuration = 10 * time.Minute

func (o *checkOptions) addFlags(fs *flag.FlagSet) {
	fs.BoolVar(&o.check, "check", false, "run as every rank of the job (srun -N$N qlaunch plan TOPOLOGY --check): each rank prints its row, whether it reaches its parent and why not; exit 1 when any edge fails")
	fs.DurationVar(&o.timeout, "check-timeout", 2*time.Second, "with --check: how long one connection attempt to the parent may take")
	fs.BoolVar(&o.listen, "listen", false, "with --check: also listen on this rank's planned address, so children reach it, and keep trying the parent until --duration; a rank ends once its parent answered and each child connected")
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "with --check --listen: how long each rank listens and retries at most (at most 10m)")
	fs.StringVar(&o.network, "network", "", "with --check: network replacing the topology's (as qlaunch TOPOLOGY --network)")
}

func (o *checkOptions) validate() error {
	if !o.check {
		if o.listen {
			return usagef("plan: --listen goes with --check")
		}
		return nil
	}
	if o.timeout <= 0 {
		return usagef("plan: --check-timeout %v: want a positive duration", o.timeout)
	}
	if o.listen && (o.duration <= 0 || o.duration > maxCheckDuration) {
		return usagef("plan: --duration %v: want a positive duration of at most %v", o.duration, maxCheckDuration)
	}
	if _, err := netpick.Parse(o.network); err != nil {
		return usagef("plan: --network: %w", err)
	}
	return nil
}

// checkHeader heads the rows of plan --check; rank 0 prints it.
const checkHeader = "RANK  HOST              ROLE            LISTEN                  PARENT  PARENT_ADDR             OK   WHY\n"

// checkRow formats one rank's row.
func checkRow(e topology.Rank, listen, parentAddr string, ok bool, why string) string {
	parent, yes := "-", "yes"
	if e.Parent >= 0 {
		parent = strconv.Itoa(e.Parent)
	}
	if !ok {
		yes = "no"
	}
	return fmt.Sprintf("%-5d %-17s %-15s %-23s %-7s %-23s %-4s %s\n",
		e.Rank, e.Host, e.Roles, orDash(listen), parent, orDash(parentAddr), yes, why)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// edgeError is a rank that cannot reach its parent, or cannot listen,
// in plan --check.
type edgeError struct {
	rank   topology.Rank
	listen bool   // the listener failed, not the edge to the parent
	addr   string // the parent's address, when known
	reason string
}

func (e *edgeError) Error() string {
	if e.listen {
		return fmt.Sprintf("plan --check: rank %d (%s on %s): %s", e.rank.Rank, e.rank.Roles, e.rank.Host, e.reason)
	}
	return fmt.Sprintf("plan --check: rank %d on %s cannot reach parent rank %d on %s at %s: %s",
		e.rank.Rank, e.rank.Host, e.rank.Parent, e.rank.ParentHost, orDash(e.addr), e.reason)
}

// runCheck is plan --check on this rank: its entry, its listen address,
// its parent's address and whether the parent answers.
func runCheck(ctx context.Context, e *env, path string, t *topology.Topology, o *checkOptions) error {
	info, err := rank.Detect(e.getenv)
	if err != nil {
		return err
	}
	if info.Launcher == rank.None {
		return usagef("plan --check: no launcher detected (no srun, mpirun, mpiexec or PBS variables): run it as every rank of a job: srun %s qlaunch plan %s --check --listen", srunOptions(t, 0), path)
	}
	entry, err := boot.Entry(t, info)
	if err != nil {
		return withLaunchHint(err, path, t, info)
	}
	nets := boot.Networks{Topology: t, Override: o.network}
	deadline := time.Now().Add(o.timeout)
	if o.listen {
		deadline = time.Now().Add(o.duration)
	}
	lctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	var wg sync.WaitGroup
	// With --listen, closed once every child of this rank has connected.
	childrenIn := make(chan struct{})
	if len(entry.Children) == 0 {
		close(childrenIn)
	}

	// The listener: bound briefly to prove the address is local and the
	// port free, or kept until the deadline with --listen.
	var failures []*edgeError
	listen := ""
	if entry.Roles.Has(topology.RoleServer) || entry.Roles.Has(topology.RoleManager) {
		ip, err := nets.Listen(ctx, entry)
		if err != nil {
			failures = append(failures, &edgeError{rank: entry, listen: true, reason: classify(err)})
		} else {
			listen = netip.AddrPortFrom(ip, uint16(entry.Port)).String()
			ln, err := net.Listen("tcp", listen)
			switch {
			case err != nil:
				failures = append(failures, &edgeError{rank: entry, listen: true, reason: "cannot listen on " + listen + ": " + classify(err)})
			case o.listen:
				wg.Go(func() { serveUntil(lctx, ln, len(entry.Children), childrenIn) })
			default:
				ln.Close()
			}
		}
	}

	parentAddr, why, ok := "", "server: no parent", true
	if entry.Parent >= 0 {
		ap, err := nets.Parent(ctx, entry)
		if err != nil {
			ok, why = false, classify(err)
		} else {
			parentAddr = ap.String()
			ok, why = dialUntil(ctx, parentAddr, o.timeout, deadline, o.listen)
			if !ok && !o.listen && strings.HasPrefix(why, refusedWhy) {
				// Nothing listens on a parent's port before the runtime runs.
				why += " (without --listen no rank listens: add --listen to check every edge as the runtime will use it)"
			}
		}
		if !ok {
			failures = append(failures, &edgeError{rank: entry, addr: parentAddr, reason: why})
		}
	}
	if ok && len(failures) > 0 {
		ok, why = false, failures[0].reason
	}
	row := checkRow(entry, listen, parentAddr, ok, why)
	if entry.Rank == 0 {
		row = checkHeader + row
	}
	_, werr := fmt.Fprint(e.stdout, row)
	if o.listen && ok {
		// Children may still be checking: listen until each has connected
		// (then every edge of this rank is proven), at most until --duration.
		select {
		case <-childrenIn:
		case <-lctx.Done():
		}
		cancel()
	}
	wg.Wait()
	errs := []error{werr}
	for _, f := range failures {
		errs = append(errs, f)
	}
	return errors.Join(errs...)
}

// serveUntil accepts and closes connections until ctx ends; it closes
// enough once it has accepted want of them.
func serveUntil(ctx context.Context, ln net.Listener, want int, enough chan struct{}) {
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	for n := 1; ; n++ {
		c, err := ln.Accept()
		if err != nil {
			ln.Close()
			return
		}
		c.Close()
		if n == want {
			close(enough)
		}
	}
}

// refusedWhy is classify's word for a refused connection.
const refusedWhy = "refused: the host answers but nothing listens on the port"

// retryInterval spaces the attempts of plan --check --listen.
const retryInterval = 200 * time.Millisecond

// dialUntil connects to addr, each attempt bounded by timeout; with retry
// it tries again until deadline. It reports success and why not.
func dialUntil(ctx context.Context, addr string, timeout time.Duration, deadline time.Time, retry bool) (bool, string) {
	for {
		actx, cancel := context.WithTimeout(ctx, timeout)
		var d net.Dialer
		c, err := d.DialContext(actx, "tcp", addr)
		cancel()
		if err == nil {
			c.Close()
			return true, "connected"
		}
		if !retry || time.Until(deadline) < retryInterval || ctx.Err() != nil {
			return false, classify(err)
		}
		t := time.NewTimer(retryInterval)
		select {
		case <-ctx.Done():
			t.Stop()
			return false, classify(err)
		case <-t.C:
		}
	}
}

// classify names why a connection (or a lookup) failed, in the words a
// user acts on.
func classify(err error) string {
	var dns *net.DNSError
	var noAddr *netpick.AddressError
	switch {
	case errors.As(err, &noAddr):
		return noAddr.Error()
	case errors.As(err, &dns) && dns.IsTimeout:
		return "name lookup timed out: " + dns.Name
	case errors.As(err, &dns):
		return "name does not resolve: " + dns.Name
	case errors.Is(err, syscall.ECONNREFUSED):
		return refusedWhy
	case errors.Is(err, syscall.EHOSTUNREACH):
		return "no route to host"
	case errors.Is(err, syscall.ENETUNREACH):
		return "no route: network unreachable"
	case errors.Is(err, syscall.EADDRINUSE):
		return "address in use (another job on this node?)"
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		return "address not local to this node"
	case errors.Is(err, os.ErrDeadlineExceeded), errors.Is(err, context.DeadlineExceeded):
		return "timeout: no answer (a firewall dropping packets, or the host is down)"
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return "timeout: no answer (a firewall dropping packets, or the host is down)"
	}
	return err.Error()
}
