package wire

import "encoding/binary"

// Drain asks ranks to drain: take no new task, finish (or hand back) what
// they hold, then leave. A client sends it to the server; every relay
// passes it down to its relay children, and sends it to each child whose
// rank is listed (a listed relay drains its whole subtree).
type Drain struct {
	Ranks []int
}

// AppendDrain appends the encoding of d: a count, then each rank.
func AppendDrain(dst []byte, d *Drain) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(d.Ranks)))
	for _, r := range d.Ranks {
		dst = binary.AppendVarint(dst, int64(r))
	}
	return dst
}

// DecodeDrain decodes a drain message into d.
func DecodeDrain(b []byte, d *Drain) error {
	dec := decoder{b: b}
	n := dec.count("drain ranks", 1)
	d.Ranks = make([]int, 0, n)
	for range n {
		d.Ranks = append(d.Ranks, dec.smallInt("drain rank"))
	}
	return dec.end("drain")
}
