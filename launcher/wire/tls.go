package wire

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
	"time"
)

// TLSFiles names the PEM files of an optional TLS layer under the
// handshake, for sites that require encryption on the wire. The job-secret
// handshake still runs inside TLS: TLS encrypts and authenticates the
// machines, the secret authenticates the job.
type TLSFiles struct {
	// CertFile and KeyFile hold this end's certificate (chain) and private
	// key; an end that accepts connections needs them, and so does an end
	// that dials a peer with VerifyClients set.
	CertFile, KeyFile string
	// CAFile holds the certificates of the authorities that sign the
	// peers' certificates; every TLS end needs it.
	CAFile string
	// VerifyClients makes TLS mutual: an accepting end requires the
	// dialling end's certificate, signed by CAFile, for client
	// authentication.
	VerifyClients bool
	// ServerName, when not "", is the name a dialling end requires in the
	// certificate of the end it dials. When "", the certificate's chain is
	// verified against CAFile but not its names: ranks dial addresses that
	// rarely match what certificates name, and the job secret still
	// authenticates the peer.
	ServerName string
}

// Enabled reports whether any file is named: TLS is then on, and LoadTLS
// requires what it needs.
func (f TLSFiles) Enabled() bool { return f.CertFile != "" || f.KeyFile != "" || f.CAFile != "" }

// TLS is a loaded TLS layer. A nil *TLS is plain TCP: its Accept and Dial
// return the connection unchanged (Accept refuses a peer that starts TLS).
type TLS struct {
	server *tls.Config // nil when this end has no certificate
	client *tls.Config
}

// LoadTLS reads the files f names; it returns nil (plain TCP) when none is.
func LoadTLS(f TLSFiles) (*TLS, error) {
	if !f.Enabled() {
		return nil, nil
	}
	var errs []error
	if f.CAFile == "" {
		errs = append(errs, errors.New("no CA file to verify peers against"))
	}
	if (f.CertFile == "") != (f.KeyFile == "") {
		errs = append(errs, errors.New("a certificate file needs a key file and a key file a certificate file"))
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("%w: %w", ErrTLS, errors.Join(errs...))
	}
	roots := x509.NewCertPool()
	pem, err := os.ReadFile(f.CAFile)
	if err != nil {
		return nil, fmt.Errorf("%w: CA file: %w", ErrTLS, err)
	}
	if !roots.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%w: CA file %s holds no PEM certificate", ErrTLS, f.CAFile)
	}
	var certs []tls.Certificate
	if f.CertFile != "" {
		c, err := tls.LoadX509KeyPair(f.CertFile, f.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("%w: certificate %s, key %s: %w", ErrTLS, f.CertFile, f.KeyFile, err)
		}
		certs = append(certs, c)
	}
	return NewTLS(certs, roots, f.VerifyClients, f.ServerName), nil
}

// NewTLS builds a TLS layer from loaded certificates (this end's; none for
// an end that only dials without client authentication) and the pool of
// authorities that sign the peers'. See TLSFiles for verifyClients and
// serverName. TLS 1.3 only.
func NewTLS(certs []tls.Certificate, roots *x509.CertPool, verifyClients bool, serverName string) *TLS {
	t := &TLS{client: &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: certs,
		// The chain is checked in VerifyConnection, against roots and, when
		// given, serverName: the dialled address does not name the peer.
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			return verifyPeer(cs, roots, serverName, x509.ExtKeyUsageServerAuth)
		},
	}}
	if len(certs) > 0 {
		t.server = &tls.Config{MinVersion: tls.VersionTLS13, Certificates: certs}
		if verifyClients {
			t.server.ClientAuth = tls.RequireAndVerifyClientCert
			t.server.ClientCAs = roots
		}
	}
	return t
}

func verifyPeer(cs tls.ConnectionState, roots *x509.CertPool, name string, usage x509.ExtKeyUsage) error {
	if len(cs.PeerCertificates) == 0 {
		return errors.New("the peer sent no certificate")
	}
	inter := x509.NewCertPool()
	for _, c := range cs.PeerCertificates[1:] {
		inter.AddCert(c)
	}
	_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{
		Roots: roots, Intermediates: inter, DNSName: name, KeyUsages: []x509.ExtKeyUsage{usage},
	})
	return err
}

// tlsHandshakeRecord is the first byte of every TLS connection (a
// handshake record); the first byte of a plain connection is the high byte
// of a hello frame's length, 0.
const tlsHandshakeRecord = 0x16

// Accept readies a freshly accepted connection: with TLS, it runs the TLS
// handshake and returns the TLS connection; without, it returns nc. Either
// way a peer of the other kind is refused with ErrTLS, and a plain peer
// that reaches a TLS end is told why (an error frame it reports as
// ErrRefused). Set a deadline on nc first: Accept reads from the peer.
func (t *TLS) Accept(nc net.Conn) (net.Conn, error) {
	first, known := peekByte(nc)
	if t == nil {
		if known && first == tlsHandshakeRecord {
			return nil, fmt.Errorf("%w: the peer started TLS, and this end has no TLS configured", ErrTLS)
		}
		return nc, nil
	}
	if t.server == nil {
		return nil, fmt.Errorf("%w: this end has no certificate to accept TLS connections", ErrTLS)
	}
	if known && first != tlsHandshakeRecord {
		_ = Refuse(nc, "this end requires TLS: configure TLS (certificate, key and CA files) on the dialling end")
		return nil, fmt.Errorf("%w: the peer did not start TLS, and this end requires it", ErrTLS)
	}
	tc := tls.Server(nc, t.server)
	if err := tc.Handshake(); err != nil {
		return nil, fmt.Errorf("%w: handshake: %w", ErrTLS, err)
	}
	return tc, nil
}

// Dial readies a freshly dialled connection: with TLS, it runs the TLS
// handshake; without, it returns nc. Set a deadline on nc first.
func (t *TLS) Dial(nc net.Conn) (net.Conn, error) {
	if t == nil {
		return nc, nil
	}
	tc := tls.Client(nc, t.client)
	err := tc.Handshake()
	if err == nil {
		return tc, nil
	}
	var rh tls.RecordHeaderError
	if errors.As(err, &rh) && rh.Conn != nil && Kind(rh.RecordHeader[4]) == KindError {
		// A plain error frame where a TLS record was expected: a refusal
		// sent before TLS (Refuse), e.g. a busy listener.
		if text, ok := readRefusal(rh.Conn, rh.RecordHeader); ok {
			return nil, refusedErr(text)
		}
	}
	hint := ""
	if errors.Is(err, io.EOF) || errors.As(err, &rh) || errors.Is(err, syscall.ECONNRESET) {
		hint = " (is TLS configured at the peer?)"
	}
	return nil, fmt.Errorf("%w: handshake with %s: %w%s", ErrTLS, nc.RemoteAddr(), err, hint)
}

// readRefusal reads the rest of a plain error frame whose first five
// header bytes were consumed as a TLS record header.
func readRefusal(r io.Reader, head [5]byte) (string, bool) {
	n := int(head[0])<<24 | int(head[1])<<16 | int(head[2])<<8 | int(head[3])
	if n > handshakeMaxFrame {
		return "", false
	}
	b := make([]byte, 1+n) // flags, payload
	if _, err := io.ReadFull(r, b); err != nil || b[0] != 0 {
		return "", false
	}
	text, err := DecodeText(b[1:])
	return text, err == nil
}

// BusyText starts the text of a refusal by a listener that is at its limit
// of connections being authenticated; the dialling end reports ErrBusy.
const BusyText = "busy:"

// Refuse writes one plain error frame carrying text to nc (not yet
// handshaken), without waiting more than 100 ms for the socket: the
// dialling end's handshake reports it as ErrRefused (ErrBusy when text
// starts with BusyText). The caller closes nc.
func Refuse(nc net.Conn, text string) error {
	p := AppendText(nil, text)
	if len(p) > handshakeMaxFrame {
		p = AppendText(nil, text[:handshakeMaxFrame/2])
	}
	_ = nc.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
	_, err := nc.Write(append(appendHeader(nil, len(p), KindError, 0), p...))
	return err
}

// refusedErr is the error of a handshake refused by the peer with text.
func refusedErr(text string) error {
	if strings.HasPrefix(text, BusyText) {
		return fmt.Errorf("%w: %w: %s", ErrRefused, ErrBusy, text)
	}
	return fmt.Errorf("%w: %s", ErrRefused, text)
}

// TLSAlert marks err, from a handshake run inside TLS, with ErrTLS when
// it is a TLS alert from the peer: under TLS 1.3 a peer that refuses this
// end's certificate says so only once the job-secret handshake has begun.
// Other errors are returned as they are.
func TLSAlert(err error) error {
	var op *net.OpError
	if err != nil && !errors.Is(err, ErrTLS) && errors.As(err, &op) && op.Op == "remote error" {
		return fmt.Errorf("%w: the peer refused this end: %w", ErrTLS, err)
	}
	return err
}
