//go:build unix

package wire

import (
	"net"
	"syscall"
)

// peekByte returns the first byte nc will read, without consuming it,
// waiting for it as nc's read deadline allows; known is false when that
// cannot be learnt (not a socket, the peer closed, the deadline passed).
func peekByte(nc net.Conn) (b byte, known bool) {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return 0, false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return 0, false
	}
	var buf [1]byte
	var n int
	var rerr error
	err = rc.Read(func(fd uintptr) bool {
		n, _, rerr = syscall.Recvfrom(int(fd), buf[:], syscall.MSG_PEEK)
		return rerr != syscall.EAGAIN
	})
	if err != nil || rerr != nil || n != 1 {
		return 0, false
	}
	return buf[0], true
}
