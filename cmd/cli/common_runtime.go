package cli

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"

	"github.com/qlaunch/qlaunch/launcher"
	"github.com/qlaunch/qlaunch/launcher/client"
	"github.com/qlaunch/qlaunch/launcher/metrics"
	"github.com/qlaunch/qlaunch/launcher/wire"
	"github.com/qlaunch/qlaunch/topology"
)

// defaultAddressFile is where a runtime writes its address when nothing
// else says where (the topology's default too).
const defaultAddressFile = ".qlaunch/addr"

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

// discover finds the server: --ip, else QLAUNCH_ADDR, else the address
// file (--address-file, QLAUNCH_ADDRESS_FILE, or .qlaunch/addr).
func discover(e *env, ip, addrFile string) (string, error) {
	if ip != "" {
		return withDefaultPort(ip), nil
	}
	if a := e.getenv("QLAUNCH_ADDR"); a != "" {
		return withDefaultPort(a), nil
	}
	if addrFile == "" {
		addrFile = e.getenv("QLAUNCH_ADDRESS_FILE")
	}
	if addrFile == "" {
		addrFile = defaultAddressFile
	}
	a, err := launcher.ReadAddressFile(addrFile)
	if err != nil {
		return "", fmt.Errorf("no runtime found: no --ip, no QLAUNCH_ADDR, and %v", err)
	}
	return a, nil
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
	fs.StringVar(&c.addrFile, "address-file", "", "address file to read (default: $QLAUNCH_ADDRESS_FILE, else "+defaultAddressFile+")")
	fs.StringVar(&c.secretFile, "secret-file", "", "job secret file (default: $QLAUNCH_SECRET_FILE, else the user's default)")
	fs.Var(&c.verbose, "v", "more output (debug logs from tasks)")
	c.tls.add(fs)
}

func (c *clientFlags) dial(ctx context.Context, e *env, logger *slog.Logger) (*client.Client, error) {
	addr, err := discover(e, c.ip, c.addrFile)
	if err != nil {
		return nil, err
	}
	s, err := clientSecret(e, c.secretFile)
	if err != nil {
		return nil, err
	}
	tl, _, err := c.tls.load(e, nil)
	if err != nil {
		return nil, err
	}
	host, _ := os.Hostname()
	// zstd as the runtime's links default to: large incompressible
	// payloads are probed and go plain, compressible ones shrink before
	// the first hop rather than only after it.
	return client.Dial(ctx, addr, client.Options{Secret: s, Logger: logger, LogLevel: c.verbose.level(), Host: host, TLS: tl,
		Wire: wire.Options{Compression: wire.CompressZstd}})
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
func serveMetrics(ctx context.Context, spec string, mon *launcher.Monitor, log *slog.Logger) (stop func(), err error) {
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
