package cli

import (
	"cmp"
	"flag"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/qlaunch/qlaunch/launcher"
	"github.com/qlaunch/qlaunch/launcher/transport"
	"github.com/qlaunch/qlaunch/launcher/wire"
	"github.com/qlaunch/qlaunch/topology"
)

// Environment variables naming the TLS files of clients (and ranks) when
// no flag does; qlaunch run sets them for its command.
const (
	envTLSCert = "QLAUNCH_TLS_CERT"
	envTLSKey  = "QLAUNCH_TLS_KEY"
	envTLSCA   = "QLAUNCH_TLS_CA"
)

// tlsFlags are the TLS flags of every rank and client.
type tlsFlags struct {
	cert, key, ca, serverName string
	verifyClients             bool
}

func (t *tlsFlags) add(fs *flag.FlagSet) {
	fs.StringVar(&t.cert, "tls-cert", "", "PEM certificate of this end: TLS on every connection (default: $"+envTLSCert+", else the topology's)")
	fs.StringVar(&t.key, "tls-key", "", "PEM key of --tls-cert (default: $"+envTLSKey+", else the topology's)")
	fs.StringVar(&t.ca, "tls-ca", "", "PEM certificates of the CA that signs the peers' certificates; alone, TLS without a client certificate (default: $"+envTLSCA+", else the topology's)")
	fs.BoolVar(&t.verifyClients, "tls-verify-clients", false, "mutual TLS: require a certificate signed by --tls-ca from dialling ends")
	fs.StringVar(&t.serverName, "tls-server-name", "", "require this name in the certificate of the end dialled (default: the chain is verified, not the names)")
}

// files returns the TLS files: each from its flag, else the environment,
// else the topology (nil: none).
func (t *tlsFlags) files(e *env, topo *topology.TLS) wire.TLSFiles {
	var f wire.TLSFiles
	if topo != nil {
		f = wire.TLSFiles{CertFile: topo.CertFile, KeyFile: topo.KeyFile, CAFile: topo.CAFile,
			VerifyClients: topo.VerifyClients, ServerName: topo.ServerName}
	}
	pick := func(dst *string, flagV, envKey string) {
		if v := e.getenv(envKey); v != "" {
			*dst = v
		}
		if flagV != "" {
			*dst = flagV
		}
	}
	pick(&f.CertFile, t.cert, envTLSCert)
	pick(&f.KeyFile, t.key, envTLSKey)
	pick(&f.CAFile, t.ca, envTLSCA)
	f.VerifyClients = f.VerifyClients || t.verifyClients
	if t.serverName != "" {
		f.ServerName = t.serverName
	}
	return f
}

// load loads the TLS layer (nil: plain TCP); a bad setting is bad input.
func (t *tlsFlags) load(e *env, topo *topology.TLS) (*wire.TLS, wire.TLSFiles, error) {
	f := t.files(e, topo)
	tl, err := wire.LoadTLS(f)
	if err != nil {
		return nil, f, usagef("%w", err)
	}
	return tl, f, nil
}

// tlsArgs are the flags that give a spawned rank the same TLS files.
func tlsArgs(f wire.TLSFiles) []string {
	if !f.Enabled() {
		return nil
	}
	abs := func(p string) string {
		if a, err := filepath.Abs(p); err == nil {
			return a
		}
		return p
	}
	var args []string
	for _, a := range []struct{ flag, v string }{{"--tls-cert", f.CertFile}, {"--tls-key", f.KeyFile}, {"--tls-ca", f.CAFile}, {"--tls-server-name", f.ServerName}} {
		if a.v != "" {
			if a.flag != "--tls-server-name" {
				a.v = abs(a.v)
			}
			args = append(args, a.flag, a.v)
		}
	}
	if f.VerifyClients {
		args = append(args, "--tls-verify-clients")
	}
	return args
}

// tlsEnv is the environment that gives a client command the TLS files.
func tlsEnv(f wire.TLSFiles) []string {
	if !f.Enabled() {
		return nil
	}
	var env []string
	for _, a := range []struct{ k, v string }{{envTLSCert, f.CertFile}, {envTLSKey, f.KeyFile}, {envTLSCA, f.CAFile}} {
		if a.v != "" {
			if abs, err := filepath.Abs(a.v); err == nil {
				a.v = abs
			}
			env = append(env, a.k+"="+a.v)
		}
	}
	return env
}

// linkFlags are the connection flags of every runtime rank: TLS,
// failure detection and the limits on incoming connections. Zero values
// mean the topology's setting, else the default.
type linkFlags struct {
	tls                                           tlsFlags
	heartbeat, heartbeatTimeout, handshakeTimeout time.Duration
	maxPending, acceptRate                        int
	compression                                   string
	compressThreshold                             int
	maxResult                                     int
}

func (l *linkFlags) add(fs *flag.FlagSet) {
	l.tls.add(fs)
	fs.DurationVar(&l.heartbeat, "heartbeat", 0, "interval of liveness messages on idle links (default: the topology's, else 1s)")
	fs.DurationVar(&l.heartbeatTimeout, "heartbeat-timeout", 0, "a peer silent this long is lost (default: the topology's, else 10 heartbeats)")
	fs.DurationVar(&l.handshakeTimeout, "handshake-timeout", 0, "bound on authenticating one connection (default: the topology's, else 10s)")
	fs.IntVar(&l.maxPending, "max-handshakes", 0, "connections a listener authenticates at once; one more evicts the oldest (default: the topology's, else 128)")
	fs.IntVar(&l.acceptRate, "accept-rate", 0, "connections a listener takes per second; more are refused as busy (default: the topology's, else 1000)")
	fs.IntVar(&l.maxResult, "max-result-bytes", 0, "a task result larger than this fails its task (default: the topology's, else the frame limit less 1 KiB)")
	fs.StringVar(&l.compression, "compression", "", "frame compression of the links this rank sends on: zstd, s2 or none (default: the topology's, else zstd)")
	fs.IntVar(&l.compressThreshold, "compress-threshold", 0, "frames below this many bytes go plain (default: the topology's, else the wire's, 4096)")
}

// wireOptions are the frame options of a link as runtime r says
// (transport.FromTopology): clients take theirs from topology.Default(),
// as a manual-mode rank does, so that every link compresses alike.
func wireOptions(r topology.Runtime) (wire.Options, error) {
	c, err := transport.FromTopology(r)
	if err != nil {
		return c.Wire, usagef("%w", err)
	}
	return c.Wire, nil
}

// config returns the link configuration: the flags written over the
// topology's settings (nil: none, as an empty topology file), turned into
// a link's by transport.FromTopology, with the TLS files it loaded.
func (l *linkFlags) config(e *env, topo *topology.Topology) (launcher.LinkConfig, wire.TLSFiles, error) {
	var ttls *topology.TLS
	if topo != nil {
		ttls = &topo.TLS
	} else {
		topo = topology.Default() // manual mode: as an empty topology file
	}
	r := topo.Runtime
	if l.compression != "" {
		r.Compression = topology.Compression(l.compression)
	}
	if l.compressThreshold < 0 {
		return launcher.LinkConfig{}, wire.TLSFiles{}, usagef("--compress-threshold %d is negative", l.compressThreshold)
	}
	if l.compressThreshold > 0 {
		r.CompressThreshold = l.compressThreshold
	}
	for _, d := range []struct {
		name      string
		flag, dst *time.Duration
	}{{"heartbeat", &l.heartbeat, &r.Heartbeat}, {"heartbeat-timeout", &l.heartbeatTimeout, &r.HeartbeatTimeout}, {"handshake-timeout", &l.handshakeTimeout, &r.HandshakeTimeout}} {
		if *d.flag < 0 {
			return launcher.LinkConfig{}, wire.TLSFiles{}, usagef("--%s: %v is negative", d.name, *d.flag)
		}
		if *d.flag > 0 {
			*d.dst = *d.flag
		}
	}
	hb := cmp.Or(r.Heartbeat, transport.DefaultHeartbeat)
	if r.HeartbeatTimeout > 0 && r.HeartbeatTimeout < 2*hb {
		return launcher.LinkConfig{}, wire.TLSFiles{}, usagef("--heartbeat-timeout %v is below two heartbeats (2 × %v)", r.HeartbeatTimeout, hb)
	}
	if l.maxPending < 0 || l.acceptRate < 0 {
		return launcher.LinkConfig{}, wire.TLSFiles{}, usagef("--max-handshakes and --accept-rate must not be negative")
	}
	if l.maxPending > 0 {
		r.MaxPendingHandshakes = l.maxPending
	}
	if l.acceptRate > 0 {
		r.AcceptRate = l.acceptRate
	}
	if l.maxResult < 0 {
		return launcher.LinkConfig{}, wire.TLSFiles{}, usagef("--max-result-bytes must not be negative")
	}
	if l.maxResult > 0 {
		r.MaxResultBytes = l.maxResult
	}
	tc, err := transport.FromTopology(r)
	if err != nil {
		return launcher.LinkConfig{}, wire.TLSFiles{}, usagef("%w", err)
	}
	c := launcher.LinkConfig(tc)
	tl, files, err := l.tls.load(e, ttls)
	if err != nil {
		return c, files, err
	}
	c.TLS = tl
	return c, files, nil
}

// args are the flags that give a spawned worker rank the same link
// settings (those that concern a dialling rank).
func (l *linkFlags) args(c launcher.LinkConfig, files wire.TLSFiles) []string {
	args := tlsArgs(files)
	for _, d := range []struct {
		flag string
		v    time.Duration
	}{{"--heartbeat", c.Heartbeat}, {"--heartbeat-timeout", c.HeartbeatTimeout}, {"--handshake-timeout", c.HandshakeTimeout}} {
		if d.v > 0 {
			args = append(args, d.flag, d.v.String())
		}
	}
	args = append(args, "--compression", c.Wire.Compression.String())
	if c.Wire.Threshold > 0 {
		args = append(args, "--compress-threshold", strconv.Itoa(c.Wire.Threshold))
	}
	if c.MaxResultBytes > 0 {
		args = append(args, "--max-result-bytes", strconv.Itoa(c.MaxResultBytes))
	}
	return args
}

// secretUse is how a role command takes the job secret: from the
// topology's run (none), or from --secret-file, created when missing
// (secretCreate: a manual-mode server or manager) or only loaded
// (secretLoad: a manual-mode worker rank, which joins a runtime that
// made one).
type secretUse uint8

const (
	secretNone secretUse = iota
	secretCreate
	secretLoad
)

// roleFlags are the flags every role command (server, manager, worker,
// run, bootstrap) shares: -v, the link flags, and in manual mode
// --secret-file.
type roleFlags struct {
	v          verbosity
	link       linkFlags
	secret     secretUse
	secretFile string
}

func (r *roleFlags) add(fs *flag.FlagSet, secret secretUse) {
	fs.Var(&r.v, "v", "more output")
	r.link.add(fs)
	r.secret = secret
	switch secret {
	case secretCreate:
		fs.StringVar(&r.secretFile, "secret-file", "", "job secret file (default: $QLAUNCH_SECRET_FILE, else the user's default, created if missing)")
	case secretLoad:
		fs.StringVar(&r.secretFile, "secret-file", "", "job secret file (default: $QLAUNCH_SECRET_FILE, else the user's default)")
	}
}

// rankFiles are the files a rank's flags named beyond its NodeConfig: the
// TLS files and the job secret's file, which the ranks it spawns and its
// address file are given.
type rankFiles struct {
	tls    wire.TLSFiles
	secret string
}

// node is the one translation of the role flags into the NodeConfig a
// role command runs its rank with: the link from the flags written over
// topo (nil: manual mode, as an empty topology file) with, in manual
// mode, the job secret of --secret-file (created or only loaded, as add
// was told; with secretNone the caller sets Link.Secret); the host name;
// a logger at the topology's log level (debug with -v); and the kernel
// registry. The caller fills in what its role decides: Rank, Parent,
// Alloc, Drain, Monitor, Supervisor.
func (r *roleFlags) node(e *env, topo *topology.Topology) (launcher.NodeConfig, rankFiles, error) {
	link, tlsFiles, err := r.link.config(e, topo)
	files := rankFiles{tls: tlsFiles}
	if err != nil {
		return launcher.NodeConfig{}, files, err
	}
	switch r.secret {
	case secretCreate:
		link.Secret, files.secret, err = runtimeSecret(e, r.secretFile)
	case secretLoad:
		link.Secret, err = clientSecret(e, r.secretFile)
	}
	if err != nil {
		return launcher.NodeConfig{}, files, err
	}
	reg, err := e.registry()
	if err != nil {
		return launcher.NodeConfig{}, files, err
	}
	level := topology.Default().Runtime.LogLevel.Level()
	if topo != nil {
		level = topo.Runtime.LogLevel.Level()
	}
	if r.v > 0 {
		level = r.v.level()
	}
	host, _ := os.Hostname()
	if host == "" {
		host = "localhost"
	}
	return launcher.NodeConfig{Host: host, Link: link, Registry: reg, Logger: newLogger(e, level)}, files, nil
}
