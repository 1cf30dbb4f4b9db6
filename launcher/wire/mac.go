package wire

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/subtle"
	"encoding/binary"
	"fmt"
)

// tagSize is the length of the MAC that follows every frame after the
// handshake on a connection without TLS.
const tagSize = 16

// maxMACSeq is the last sequence number a frame MAC can carry: the
// sequence number fills six bytes of the GCM nonce.
const maxMACSeq = 1<<48 - 1

// Labels of the two frame keys, one per direction: a frame sent back to
// its sender fails.
const (
	labelClientFrames = "qlaunch wire client frames\x00"
	labelServerFrames = "qlaunch wire server frames\x00"
)

// frameMAC authenticates the frames of one direction of a connection with
// GMAC (AES-256-GCM with nothing to encrypt): the tag of a frame is
// GMAC(key, nonce = header | sequence number (48 bits, BE), data = the
// payload as sent). The key comes from the handshake, so it is fresh on
// every connection; the header in the nonce binds the length, kind and
// flags; the sequence number, counted by both ends, refuses a frame that
// is replayed, reordered, dropped or injected. A nonce never repeats under
// one key, which is what GMAC needs.
//
// On a 2-core AMD EPYC VM (Go 1.26) GMAC took 0.13 µs for 100 bytes and
// 0.36 ms for 1 MiB, against 0.43 µs and 1.1 ms for HMAC-SHA256 (SHA-NI)
// and 0.4 µs and 1 ms for Poly1305 with a ChaCha20 one-time key.
type frameMAC struct {
	aead  cipher.AEAD
	seq   uint64 // of the next frame
	nonce [12]byte
	tag   [tagSize]byte
}

func newFrameMAC(key []byte) (*frameMAC, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("wire: frame MAC: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("wire: frame MAC: %w", err)
	}
	return &frameMAC{aead: aead}, nil
}

// next sets the nonce of the next frame, whose header is h, and counts it.
func (m *frameMAC) next(h []byte) error {
	if m.seq > maxMACSeq {
		return fmt.Errorf("%w: %d frames on one connection, the most a frame MAC can count", ErrIntegrity, m.seq)
	}
	copy(m.nonce[:headerSize], h[:headerSize])
	var seq [8]byte
	binary.BigEndian.PutUint64(seq[:], m.seq)
	copy(m.nonce[headerSize:], seq[2:])
	m.seq++
	return nil
}

// sum returns the tag of the frame with header h and payload p (as sent);
// it is valid until the next call.
func (m *frameMAC) sum(h, p []byte) ([]byte, error) {
	if err := m.next(h); err != nil {
		return nil, err
	}
	return m.aead.Seal(m.tag[:0], m.nonce[:], nil, p), nil
}

// check verifies the tag of a received frame.
func (m *frameMAC) check(h, p, tag []byte) error {
	seq := m.seq
	if err := m.next(h); err != nil {
		return err
	}
	want := m.aead.Seal(m.tag[:0], m.nonce[:], nil, p)
	if subtle.ConstantTimeCompare(want, tag) != 1 {
		return fmt.Errorf("%w: frame %d after the handshake (%s, %d bytes) carries a MAC that does not match: the connection was altered on the way, or a frame was injected, dropped or replayed",
			ErrIntegrity, seq, Kind(h[4]), binary.BigEndian.Uint32(h))
	}
	return nil
}

// startMAC makes c authenticate every frame from now on, with the keys
// derived from the handshake (see frameKeys); a Conn made with SkipMAC
// stays as it is.
func (c *Conn) startMAC(sendKey, recvKey []byte) error {
	if c.skipMAC {
		return nil
	}
	w, err := newFrameMAC(sendKey)
	if err != nil {
		return err
	}
	r, err := newFrameMAC(recvKey)
	if err != nil {
		return err
	}
	c.wmac, c.rmac = w, r
	return nil
}

// frameKeys derives the two frame keys of a connection from the secret
// and both hellos (so from both nonces): HMAC-SHA256(K, label | len | Hc |
// len | Hs), with the client's and the server's label.
func (s Secret) frameKeys(clientHello, serverHello []byte) (client, server []byte) {
	return s.proof(labelClientFrames, clientHello, serverHello), s.proof(labelServerFrames, clientHello, serverHello)
}
