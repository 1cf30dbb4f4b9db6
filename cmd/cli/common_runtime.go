package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/qlaunch/qlaunch/launcher"
	"github.com/qlaunch/qlaunch/launcher/client"
	"github.com/qlaunch/qlaunch/launcher/metrics"
	"github.com/qlaunch/qlaunch/launcher/wire"
	"github.com/qlaunch/qlaunch/topology"
)

// verbosity is a flag counting -v: each one lowers the log level a step.
type verbosity int

func (v *verbosity) String() string   { return strconv.Itoa(int(*v)) }
func (v *verbosity) IsBoolFlag() bool { return true }
func (v *verbosity) Set(s string) error {
	b, err := strconv.ParseBool(s)
	if err != nil {
		return err
	}
	if b {
		*v++
	}
	return nil
}

// level is info, debug with -v.
func (v verbosity) level() slog.Level {
	if v > 0 {
		return slog.LevelDebug
	}
	return slog.LevelInfo
}

func newLogger(e *env, level slog.Level) *slog.Logger {
	return slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: level}))
}

// listFlag collects a repeated flag, also split at commas.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }
func (l *listFlag) Set(s string) error {
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			*l = append(*l, p)
		}
	}
	return nil
}

// runtimeSecret returns the job secret of a runtime rank: from --secret-file,
// QLAUNCH_SECRET_FILE or the default file, created (mode 0600) when missing.
func runtimeSecret(e *env, flagPath string) (wire.Secret, string, error) {
	path, err := wire.ResolveSecretPath(flagPath, e.getenv)
	if err != nil {
		return wire.Secret{}, "", err
	}
	s, err := wire.EnsureSecretFile(path)
	return s, path, err
}

// clientSecret loads the secret a client proves; it never creates one.
func clientSecret(e *env, flagPath string) (wire.Secret, error) {
	path, err := wire.ResolveSecretPath(flagPath, e.getenv)
	if err != nil {
		return wire.Secret{}, err
	}
	return wire.LoadSecretFile(path)
}

// jobID is the scheduler's job id of this process, recorded in the
// address file: SLURM_JOB_ID, else PBS_JOBID, else "".
func jobID(e *env) string {
	if j := e.getenv("SLURM_JOB_ID"); j != "" {
		return j
	}
	return e.getenv("PBS_JOBID")
}

// addressFile is the address file a runtime writes and a client reads,
// looked up here alone: flagPath, else $QLAUNCH_ADDRESS_FILE, else the
// topology's address_file (topo nil: manual mode, the default's,
// topology.DefaultAddressFile).
func addressFile(e *env, flagPath string, topo *topology.Topology) string {
	if flagPath != "" {
		return flagPath
	}
	if topo == nil {
		topo = topology.Default()
	}
	return topo.Runtime.AddressPath(e.getenv)
}

// startHint says how to start a runtime, for the errors of a client that
// found none.
const startHint = `start one with "qlaunch run TOPOLOGY.toml -- CMD…" (this machine), ` +
	`"srun qlaunch TOPOLOGY.toml &" then "qlaunch wait" (under SLURM), or "qlaunch server" (manual mode)`

// target is where a client command finds the runtime.
type target struct {
	addr string
	file string                 // the address file read; "" when --ip or QLAUNCH_ADDR gave addr
	rec  launcher.AddressRecord // what file holds
}

// goneError says that the runtime an address file names is gone.
type goneError struct {
	t   target
	why string
}

func (g *goneError) Error() string {
	who := g.t.rec.Owner()
	if who != "" {
		who = " (" + who + ")"
	}
	return fmt.Sprintf("the runtime recorded in %s%s is gone (%s); %s", g.t.file, who, g.why, startHint)
}

// discover finds the server: --ip, else QLAUNCH_ADDR, else the address
// file (--address-file, QLAUNCH_ADDRESS_FILE, or .qlaunch/addr). A file
// whose server ran on this host under a process that is gone is a
// *goneError.
func discover(e *env, ip, addrFile string) (target, error) {
	if ip != "" {
		return target{addr: withDefaultPort(ip)}, nil
	}
	if a := e.getenv("QLAUNCH_ADDR"); a != "" {
		return target{addr: withDefaultPort(a)}, nil
	}
	path := addressFile(e, addrFile, nil)
	rec, err := launcher.ReadAddressRecord(path)
	if errors.Is(err, fs.ErrNotExist) {
		return target{}, fmt.Errorf("no runtime found: no --ip, no QLAUNCH_ADDR and no address file %s; %s", path, startHint)
	}
	if err != nil {
		return target{}, fmt.Errorf("no runtime found: %v", err)
	}
	t := target{addr: rec.Addr, file: path, rec: rec}
	if host, _ := os.Hostname(); rec.Gone(host) {
		// Containers may share a hostname but not their process ids:
		// something answering at the address is not gone.
		nc, err := net.DialTimeout("tcp", rec.Addr, time.Second)
		if err != nil {
			return t, &goneError{t, fmt.Sprintf("no process %d on this host", rec.PID)}
		}
		nc.Close()
	}
	return t, nil
}

// dialFailed turns a refused connection to the server an address file
// names into a *goneError; other errors pass unchanged.
func (t target) dialFailed(err error) error {
	if t.file != "" && errors.Is(err, syscall.ECONNREFUSED) {
		return &goneError{t, t.addr + " refused the connection"}
	}
	return err
}

func withDefaultPort(a string) string {
	if strings.Contains(a, ":") {
		return a
	}
	return a + ":" + strconv.Itoa(launcher.DefaultServerPort)
}

// clientFlags are the flags every client command shares.
type clientFlags struct {
	ip, addrFile, secretFile string
	verbose                  verbosity
	tls                      tlsFlags
}

func (c *clientFlags) add(fs *flag.FlagSet) {
	fs.StringVar(&c.ip, "ip", "", "server address HOST[:PORT] (default: $QLAUNCH_ADDR, else the address file)")
	fs.StringVar(&c.addrFile, "address-file", "", "address file to read (default: $QLAUNCH_ADDRESS_FILE, else "+topology.DefaultAddressFile+")")
	fs.StringVar(&c.secretFile, "secret-file", "", "job secret file (default: $QLAUNCH_SECRET_FILE, else the user's default)")
	fs.Var(&c.verbose, "v", "more output (debug logs from tasks)")
	c.tls.add(fs)
}

func (c *clientFlags) dial(ctx context.Context, e *env, logger *slog.Logger) (*client.Client, error) {
	t, err := discover(e, c.ip, c.addrFile)
	if err != nil {
		return nil, err
	}
	secretFile := c.secretFile
	if job := jobID(e); secretFile == "" && e.getenv("QLAUNCH_SECRET_FILE") == "" && (job == "" || t.rec.Job == job) {
		// The runtime's own, as its address file records it; inside a
		// job, only for a runtime of this job: a file another job of the
		// user wrote in the same folder must not hand its secret over
		// (this job's own, wire.JobSecretPath, is then proved, and
		// refused there).
		secretFile = t.rec.SecretFile
	}
	s, err := clientSecret(e, secretFile)
	if err != nil {
		// A file left by a runtime that is gone names a secret that may be
		// gone too: say that the runtime is.
		if t.file != "" {
			if nc, perr := net.DialTimeout("tcp", t.addr, 2*time.Second); perr == nil {
				nc.Close()
			} else if gerr := t.dialFailed(perr); gerr != perr {
				return nil, gerr
			}
		}
		return nil, err
	}
	tl, _, err := c.tls.load(e, nil)
	if err != nil {
		return nil, err
	}
	host, _ := os.Hostname()
	// Compressed as the runtime's links are (wireOptions): large
	// incompressible payloads are probed and go plain, compressible ones
	// shrink before the first hop rather than only after it.
	wo, err := wireOptions(topology.Default().Runtime)
	if err != nil {
		return nil, err
	}
	cl, err := client.Dial(ctx, t.addr, client.Options{Secret: s, Logger: logger, LogLevel: c.verbose.level(), Host: host, TLS: tl, Wire: wo})
	if err != nil {
		return nil, t.dialFailed(err)
	}
	return cl, nil
}

// parseInterleaved parses args with fs allowing positional arguments
// between flags ("worker 4 --cpus 0-3"), as BQSKit's commands do; it
// returns the positional arguments. Everything after "--" is positional.
func parseInterleaved(e *env, fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := parseFlags(e, fs, args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if len(args) > len(rest) && args[len(args)-len(rest)-1] == "--" {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// metricsHelp is the help of the --metrics flag of the runtime commands.
const metricsHelp = "serve Prometheus metrics over HTTP at /metrics on this address: a port (on loopback) or HOST:PORT (default: none)"

// checkMetrics checks a --metrics value.
func checkMetrics(cmd, spec string) error {
	if _, err := topology.MetricsAddr(spec); err != nil {
		return usagef("%s: --metrics: %w", cmd, err)
	}
	return nil
}

// serveMetrics starts the metrics endpoint of the server mon watches at
// spec (a port alone: loopback; see topology.MetricsAddr), and returns a
// function that stops it and waits for it. An empty spec serves nothing.
func serveMetrics(ctx context.Context, spec string, mon metrics.Source, log *slog.Logger) (stop func(), err error) {
	addr, err := topology.MetricsAddr(spec)
	if err != nil {
		return nil, usagef("--metrics: %w", err)
	}
	if addr == "" {
		return func() {}, nil
	}
	ln, err := metrics.Listen(addr)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := metrics.Serve(ctx, ln, mon, log); err != nil {
			log.Error("metrics endpoint stopped", "err", err)
		}
	}()
	return func() { cancel(); <-done }, nil
}
