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

// maxPartsHead is the longest head that frameMAC.sum MACs apart from its
// body; a longer one (never a relay's record header) is joined with the
// body first.
const maxPartsHead = 256

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
// 0.15 to 0.36 ms for 1 MiB, against 0.43 µs and 1.1 to 2.5 ms for
// HMAC-SHA256 (SHA-NI) and 0.4 µs and 1 ms for Poly1305 with a ChaCha20
// one-time key. Go's GCM uses AES-NI and PCLMULQDQ on amd64, not VAES or
// VPCLMULQDQ, and nothing faster that Python's cryptography also computes
// is in the standard library.
//
// The GHASH that dominates it is already the standard library's assembly
// (gcmAesData, PCLMULQDQ): on the payload workload's server (2-core AMD
// EPYC VM, Go 1.26, perf) it took 11 % of the samples for a check and a
// sum per MiB, 0.13 to 0.16 ms each (BenchmarkFrameMAC), the rest going
// to the kernel's copies, page faults and zstd. The standard library's
// own GHASH in Go (built with -tags purego) took 8.5 ms per MiB or more on
// the same machine: no GHASH without assembly (a 4- or 8-bit table, whose
// lookups also leak timing) comes near one PCLMULQDQ per block, and
// ghashMul here only joins GHASH values (sumParts). So the MAC stays as
// it is; what a relay saves is the copies and fresh memory around it.
type frameMAC struct {
	aead  cipher.AEAD
	hash  ghashElem // H = AES(key, 0^128), GHASH's key (sumParts)
	seq   uint64    // of the next frame
	nonce [12]byte
	tag   [tagSize]byte
	join  []byte // sum: a long head and its body, or a head's last block
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
	var h [16]byte
	block.Encrypt(h[:], h[:])
	return &frameMAC{aead: aead, hash: loadGhashElem(h[:])}, nil
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

// sum returns the tag of the frame with header h whose payload (as sent)
// is head followed by body; it is valid until the next call. A short head
// and a long body are not joined (sumParts).
func (m *frameMAC) sum(h, head, body []byte) ([]byte, error) {
	if err := m.next(h); err != nil {
		return nil, err
	}
	switch {
	case len(head) == 0:
		return m.aead.Seal(m.tag[:0], m.nonce[:], nil, body), nil
	case len(body) == 0:
		return m.aead.Seal(m.tag[:0], m.nonce[:], nil, head), nil
	case len(head) > maxPartsHead || len(body) < 2*maxPartsHead:
		m.join = append(append(m.join[:0], head...), body...)
		tag := m.aead.Seal(m.tag[:0], m.nonce[:], nil, m.join)
		if cap(m.join) > 4*maxPartsHead {
			m.join = nil
		}
		return tag, nil
	}
	return m.sumParts(head, body), nil
}

// sumParts returns GMAC(key, nonce, head | body) without joining head and
// body, for a relay that forwards a large body it received behind a new
// record header: the copy of each MiB into one buffer cost more than the
// MAC itself (perf of the payload workload, 2-core AMD EPYC VM, Go 1.26:
// 7 % of the samples against 2 % for the relay's GMAC).
//
// GMAC's tag is E(J0) ⊕ GHASH_H(A | pad | L) for the data A, where L
// holds A's length in bits and GHASH_H(X_1 … X_m) = Σ X_i·H^(m-i+1) is
// linear. Cut A = P1 | P2 with P1 = head and the first bytes of body up
// to a 16-byte boundary, so that P2 (the rest of body, not copied) starts
// a block. Then
//
//	GHASH(A | pad | L) = GHASH(P1)·H^(m2+1) ⊕ GHASH(P2 | pad | L)
//	GHASH(P2 | pad | L) = GHASH(P2 | pad | L2) ⊕ (L ⊕ L2)·H
//
// where m2 counts P2's blocks and L2 holds P2's length, and the standard
// library's GMAC of P2 under the frame's nonce is E(J0) ⊕ GHASH(P2 | pad |
// L2). So the tag is GMAC(P2) ⊕ GHASH(P1)·H^(m2+1) ⊕ (L ⊕ L2)·H: one
// GMAC pass over the body, and about twenty multiplications in
// GF(2^128). The tests check it against the GMAC of the joined payload.
func (m *frameMAC) sumParts(head, body []byte) []byte {
	k := (blockSize - len(head)%blockSize) % blockSize
	m.join = append(append(m.join[:0], head...), body[:k]...)
	p1, p2 := m.join, body[k:]
	var y ghashElem
	for i := 0; i < len(p1); i += blockSize {
		y = ghashMul(y.xor(loadGhashElem(p1[i:])), m.hash)
	}
	tag := loadGhashElem(m.aead.Seal(m.tag[:0], m.nonce[:], nil, p2))
	blocks := uint64(len(p2)+blockSize-1) / blockSize
	lengths := ghashElem{uint64(len(p2))*8 ^ uint64(len(p1)+len(p2))*8, 0}
	tag = tag.xor(ghashMul(y, ghashPow(m.hash, blocks+1))).xor(ghashMul(lengths, m.hash))
	tag.put(m.tag[:])
	return m.tag[:]
}

// blockSize is GHASH's block size.
const blockSize = 16

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
