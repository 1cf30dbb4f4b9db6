package wire

import (
	"encoding/binary"
	"math/bits"
)

// ghashElem is an element of GF(2^128) in GCM's bit order (NIST SP
// 800-38D): hi holds bytes 0 to 7 of a 16-byte block, big-endian, lo
// bytes 8 to 15; the first bit of byte 0 is the coefficient of x^0.
//
// The frame MAC uses this arithmetic only to join GHASH values that the
// standard library's GCM computed (frameMAC.sumParts): the tag it gives
// is the standard GMAC of the joined payload, which the tests check
// against crypto/cipher's.
type ghashElem struct{ hi, lo uint64 }

func loadGhashElem(b []byte) ghashElem {
	return ghashElem{binary.BigEndian.Uint64(b), binary.BigEndian.Uint64(b[8:])}
}

func (e ghashElem) put(b []byte) {
	binary.BigEndian.PutUint64(b, e.hi)
	binary.BigEndian.PutUint64(b[8:], e.lo)
}

func (e ghashElem) xor(f ghashElem) ghashElem { return ghashElem{e.hi ^ f.hi, e.lo ^ f.lo} }

// ghashMul returns x·y (SP 800-38D, algorithm 1) in constant time: no
// branch and no memory access depends on x or y, which hold values
// derived from the key.
func ghashMul(x, y ghashElem) ghashElem {
	var z ghashElem
	v := y
	for i := range 128 {
		word := x.hi
		if i >= 64 {
			word = x.lo
		}
		m := -(word >> (63 - i%64) & 1)
		z.hi ^= v.hi & m
		z.lo ^= v.lo & m
		r := -(v.lo & 1)
		v.lo = v.lo>>1 | v.hi<<63
		v.hi = v.hi>>1 ^ 0xe1<<56&r
	}
	return z
}

// ghashPow returns h^e. e is public (a block count), so branching on it
// leaks nothing.
func ghashPow(h ghashElem, e uint64) ghashElem {
	r := ghashElem{1 << 63, 0} // the unit, x^0: the first bit of the block
	for b := bits.Len64(e) - 1; b >= 0; b-- {
		r = ghashMul(r, r)
		if e>>b&1 == 1 {
			r = ghashMul(r, h)
		}
	}
	return r
}
