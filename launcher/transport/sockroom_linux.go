package transport

import (
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// SendBuffer returns the send buffer size of the TCP socket under nc
// (what SO_SNDBUF reports: twice the payload it holds) and its raw
// connection, or ok false when nc is not a socket.
func SendBuffer(nc net.Conn) (rc syscall.RawConn, size int, ok bool) {
	sc, isSock := nc.(syscall.Conn)
	if !isSock {
		return nil, 0, false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil, 0, false
	}
	var gerr error
	if err := rc.Control(func(fd uintptr) { size, gerr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_SNDBUF) }); err != nil || gerr != nil {
		return nil, 0, false
	}
	return rc, size, true
}

// Unsent returns the bytes in the socket's send queue (written and not
// yet acknowledged by the peer), or ok false when it cannot be read.
func Unsent(rc syscall.RawConn) (n int, ok bool) {
	var ierr error
	if err := rc.Control(func(fd uintptr) { n, ierr = unix.IoctlGetInt(int(fd), unix.SIOCOUTQ) }); err != nil || ierr != nil {
		return 0, false
	}
	return n, true
}
