package client

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode"

	"github.com/qlaunch/qlaunch/launcher/wire"
)

// ErrNotServer is wrapped by Dial's error when what answered is not a
// qlaunch server: another program (an HTTP server, SSH, …), or a qlaunch
// rank other than the server (a manager's port).
var ErrNotServer = errors.New("not a qlaunch server")

// firstBytes reads through r and keeps the first bytes read, so that a
// failed handshake can say what answered. Only reads go through it: the
// connection's writes stay the socket's own (writev).
type firstBytes struct {
	r   io.Reader
	buf [16]byte
	n   int
}

func (f *firstBytes) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	if f.n < len(f.buf) {
		f.n += copy(f.buf[f.n:], p[:n])
	}
	return n, err
}

// what names the protocol the first bytes read belong to, or "" when
// nothing was read.
func (f *firstBytes) what() string {
	b := f.buf[:f.n]
	switch {
	case len(b) == 0:
		return ""
	case bytes.HasPrefix(b, []byte("HTTP/")):
		return "HTTP"
	case bytes.HasPrefix(b, []byte("SSH-")):
		return "SSH"
	case len(b) >= 3 && (b[0] == 0x15 || b[0] == 0x16) && b[1] == 3:
		return "TLS"
	}
	printable := strings.Map(func(r rune) rune {
		if r < 0x80 && unicode.IsPrint(r) {
			return r
		}
		return -1
	}, string(b))
	if len(printable) == len(b) {
		return fmt.Sprintf("%q", b)
	}
	return fmt.Sprintf("bytes % x", b)
}

// notQlaunch turns a failed handshake with addr into ErrNotServer when
// the peer answered in another protocol; other errors pass unchanged.
func (f *firstBytes) notQlaunch(addr string, err error) error {
	if !errors.Is(err, wire.ErrBadFrame) && !errors.Is(err, wire.ErrFrameTooLarge) && !errors.Is(err, wire.ErrVersion) {
		return err
	}
	w := f.what()
	if w == "" || w == "TLS" {
		return err // TLS is told apart by the wire's own check (wire.TLSAlert)
	}
	return fmt.Errorf("client: %s is %w (it answered %s)", addr, ErrNotServer, w)
}

// checkServer refuses a qlaunch peer that is not the server: a client
// dialling a manager's port completes the handshake, then the manager
// drops it.
func checkServer(addr string, peer wire.Hello) error {
	role, _, _ := strings.Cut(peer.Role, ":")
	if role == "server" {
		return nil
	}
	return fmt.Errorf("client: %s is a qlaunch %s (rank %d on %s), %w: clients dial the server (port 7472 unless it was given another; qlaunch run and the address file tell its address)",
		addr, role, peer.Rank, peer.Host, ErrNotServer)
}
