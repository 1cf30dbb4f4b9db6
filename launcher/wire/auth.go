package wire

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
)

// ProtocolVersion is the version of the protocol this package speaks. A
// peer with another version is refused with ErrVersion. Version 2 added
// the frame MAC after the handshake.
const ProtocolVersion uint16 = 2

// Hello introduces one end of a connection during the handshake.
type Hello struct {
	Version uint16 // ProtocolVersion when zero in the Hello given to a handshake
	Role    string // e.g. "server", "manager", "worker", "client"
	Rank    int
	Host    string
}

const nonceSize = 32

// Direction labels of the two proofs: a proof made for one direction is
// never accepted for the other, so a reflected proof fails.
const (
	labelClient = "qlaunch wire client proof\x00"
	labelServer = "qlaunch wire server proof\x00"
)

// ClientHandshake authenticates the dialing end of c; call it before any
// other use of c. The exchange (see the package documentation) is
//
//	client → server  hello: version, client nonce, role, rank, host
//	server → client  hello: version, server nonce, role, rank, host
//	client → server  auth:  HMAC(secret, "client" | both hellos)
//	server → client  auth:  HMAC(secret, "server" | both hellos)
//	            (or  error: the server refused the client's proof)
//
// After it, unless c was made with SkipMAC, every frame each way carries a
// MAC keyed from the secret and both hellos (see the package
// documentation), and ReadFrame refuses one that does not match with
// ErrIntegrity.
//
// It returns the server's Hello. A server that does not prove the secret,
// or refuses ours, gives ErrAuth; one with another protocol version,
// ErrVersion. The handshake sets no deadline: set one on the underlying
// connection first, so a silent peer cannot hold it forever.
func ClientHandshake(c *Conn, s Secret, me Hello) (peer Hello, err error) {
	if err := s.check(); err != nil {
		return Hello{}, err
	}
	c.beginHandshake()
	defer c.endHandshake()
	if me.Version == 0 {
		me.Version = ProtocolVersion
	}
	nonce, err := newNonce()
	if err != nil {
		return Hello{}, err
	}
	mine, err := appendHello(nil, &me, nonce)
	if err != nil {
		return Hello{}, err
	}
	if err := c.sendHandshake(KindHello, mine); err != nil {
		return Hello{}, err
	}
	theirs, err := c.readHandshake(KindHello)
	if err != nil {
		return Hello{}, err
	}
	peer, peerNonce, err := decodeHello(theirs, me.Version)
	if err != nil {
		return Hello{}, err
	}
	if bytes.Equal(peerNonce, nonce[:]) {
		return Hello{}, fmt.Errorf("%w: server echoed our nonce", ErrAuth)
	}
	if err := c.sendHandshake(KindAuth, s.proof(labelClient, mine, theirs)); err != nil {
		return Hello{}, err
	}
	k, proof, err := c.ReadFrame()
	if err != nil {
		return Hello{}, handshakeReadErr(KindAuth, err)
	}
	switch k {
	case KindAuth:
		if !hmac.Equal(proof, s.proof(labelServer, mine, theirs)) {
			return Hello{}, fmt.Errorf("%w: server %s did not prove the job secret", ErrAuth, peer.Host)
		}
		send, recv := s.frameKeys(mine, theirs)
		return peer, c.startMAC(send, recv)
	case KindError:
		return Hello{}, fmt.Errorf("%w: server %s refused our proof: is the job secret the same on both ends?", ErrAuth, peer.Host)
	default:
		return Hello{}, fmt.Errorf("%w: handshake: got %s, want auth", ErrBadFrame, k)
	}
}

// ServerHandshake authenticates the accepting end of c; call it before any
// other use of c. It returns the client's Hello. A client that does not
// prove the secret is refused (it is sent an error frame) and ServerHandshake
// returns ErrAuth; a client with another protocol version is sent our hello,
// so it can report both versions, and ServerHandshake returns ErrVersion.
//
// Before the client has proved the secret, ServerHandshake reads at most two
// frames of at most 4 KiB each and allocates nothing larger; it sets no
// deadline (see ClientHandshake).
func ServerHandshake(c *Conn, s Secret, me Hello) (peer Hello, err error) {
	if err := s.check(); err != nil {
		return Hello{}, err
	}
	c.beginHandshake()
	defer c.endHandshake()
	if me.Version == 0 {
		me.Version = ProtocolVersion
	}
	theirs, err := c.readHandshake(KindHello)
	if err != nil {
		return Hello{}, err
	}
	peer, peerNonce, helloErr := decodeHello(theirs, me.Version)
	nonce, err := newNonce()
	if err != nil {
		return Hello{}, err
	}
	mine, err := appendHello(nil, &me, nonce)
	if err != nil {
		return Hello{}, err
	}
	if helloErr != nil {
		// Tell a client of another version who we are, so that it can say so.
		if errors.Is(helloErr, ErrVersion) {
			_ = c.sendHandshake(KindHello, mine)
		}
		return Hello{}, helloErr
	}
	if bytes.Equal(peerNonce, nonce[:]) {
		return Hello{}, fmt.Errorf("%w: client sent our nonce", ErrAuth)
	}
	if err := c.sendHandshake(KindHello, mine); err != nil {
		return Hello{}, err
	}
	proof, err := c.readHandshake(KindAuth)
	if err != nil {
		return Hello{}, err
	}
	if !hmac.Equal(proof, s.proof(labelClient, theirs, mine)) {
		_ = c.sendHandshake(KindError, AppendText(nil, "authentication failed"))
		return Hello{}, fmt.Errorf("%w: %s rank %d on %s did not prove the job secret", ErrAuth, peer.Role, peer.Rank, peer.Host)
	}
	if err := c.sendHandshake(KindAuth, s.proof(labelServer, theirs, mine)); err != nil {
		return Hello{}, err
	}
	recv, send := s.frameKeys(theirs, mine)
	return peer, c.startMAC(send, recv)
}

func (c *Conn) beginHandshake() {
	c.limit, c.plainOnly, c.bufSize = handshakeMaxFrame, true, handshakeMaxFrame+headerSize
}

func (c *Conn) endHandshake() {
	c.limit, c.plainOnly, c.bufSize = c.maxFrame, false, readBufferSize
}

// sendHandshake writes and flushes one plain frame.
func (c *Conn) sendHandshake(kind Kind, p []byte) error {
	if len(p) > handshakeMaxFrame {
		return fmt.Errorf("%w: %s frame of %d bytes during the handshake, limit %d", ErrFrameTooLarge, kind, len(p), handshakeMaxFrame)
	}
	if c.werr != nil {
		return c.werr
	}
	if err := c.writePlain(kind, p); err != nil {
		return err
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("wire: handshake: sending %s: %w", kind, err)
	}
	return nil
}

// readHandshake reads one frame of the given kind and returns a copy of its
// payload.
func (c *Conn) readHandshake(want Kind) ([]byte, error) {
	k, p, err := c.ReadFrame()
	if err != nil {
		return nil, handshakeReadErr(want, err)
	}
	if k == KindError && want != KindError {
		text, err := DecodeText(p)
		if err != nil {
			text = "(unreadable reason)"
		}
		return nil, refusedErr(text)
	}
	if k != want {
		return nil, fmt.Errorf("%w: handshake: got %s, want %s", ErrBadFrame, k, want)
	}
	return bytes.Clone(p), nil
}

// handshakeReadErr wraps a read error; the end of the stream is unexpected
// anywhere in a handshake.
func handshakeReadErr(want Kind, err error) error {
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("wire: handshake: reading %s: %w", want, err)
}

func newNonce() ([nonceSize]byte, error) {
	var n [nonceSize]byte
	if _, err := rand.Read(n[:]); err != nil {
		return n, fmt.Errorf("wire: handshake nonce: %w", err)
	}
	return n, nil
}

// proof is HMAC-SHA256(secret, label | len | client hello | len | server
// hello): it binds the direction, both nonces and both hellos.
func (s Secret) proof(label string, clientHello, serverHello []byte) []byte {
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte(label))
	var n [4]byte
	binary.BigEndian.PutUint32(n[:], uint32(len(clientHello)))
	m.Write(n[:])
	m.Write(clientHello)
	binary.BigEndian.PutUint32(n[:], uint32(len(serverHello)))
	m.Write(n[:])
	m.Write(serverHello)
	return m.Sum(nil)
}

// appendHello encodes h: version (uint16 BE) | nonce (32 bytes) | role
// (uvarint length, bytes) | rank (varint) | host (uvarint length, bytes).
func appendHello(dst []byte, h *Hello, nonce [nonceSize]byte) ([]byte, error) {
	if len(h.Role)+len(h.Host) > handshakeMaxFrame-64 {
		return nil, fmt.Errorf("%w: hello with a role of %d bytes and a host of %d bytes", ErrFrameTooLarge, len(h.Role), len(h.Host))
	}
	if h.Rank < math.MinInt32 || h.Rank > math.MaxInt32 {
		return nil, fmt.Errorf("wire: hello rank %d out of range", h.Rank)
	}
	dst = binary.BigEndian.AppendUint16(dst, h.Version)
	dst = append(dst, nonce[:]...)
	dst = binary.AppendUvarint(dst, uint64(len(h.Role)))
	dst = append(dst, h.Role...)
	dst = binary.AppendVarint(dst, int64(h.Rank))
	dst = binary.AppendUvarint(dst, uint64(len(h.Host)))
	return append(dst, h.Host...), nil
}

// decodeHello decodes a hello, checking its version against ours first: the
// rest of a hello from another version may be laid out differently.
func decodeHello(b []byte, ours uint16) (h Hello, nonce []byte, err error) {
	if len(b) < 2 {
		return Hello{}, nil, fmt.Errorf("%w: handshake: hello of %d bytes", ErrBadFrame, len(b))
	}
	h.Version = binary.BigEndian.Uint16(b)
	if h.Version != ours {
		return Hello{}, nil, fmt.Errorf("%w: peer speaks version %d, this end version %d", ErrVersion, h.Version, ours)
	}
	b = b[2:]
	if len(b) < nonceSize {
		return Hello{}, nil, fmt.Errorf("%w: handshake: hello too short for a nonce", ErrBadFrame)
	}
	nonce, b = b[:nonceSize], b[nonceSize:]
	var ok bool
	if h.Role, b, ok = cutString(b); !ok {
		return Hello{}, nil, fmt.Errorf("%w: handshake: hello role", ErrBadFrame)
	}
	rank, n := binary.Varint(b)
	if n <= 0 || rank < math.MinInt32 || rank > math.MaxInt32 {
		return Hello{}, nil, fmt.Errorf("%w: handshake: hello rank", ErrBadFrame)
	}
	h.Rank, b = int(rank), b[n:]
	if h.Host, b, ok = cutString(b); !ok {
		return Hello{}, nil, fmt.Errorf("%w: handshake: hello host", ErrBadFrame)
	}
	if len(b) != 0 {
		return Hello{}, nil, fmt.Errorf("%w: handshake: %d bytes after the hello", ErrBadFrame, len(b))
	}
	return h, nonce, nil
}

// cutString splits a uvarint-length-prefixed string off the front of b.
func cutString(b []byte) (s string, rest []byte, ok bool) {
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b)-k) {
		return "", nil, false
	}
	return string(b[k : k+int(n)]), b[k+int(n):], true
}
