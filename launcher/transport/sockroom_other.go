//go:build !linux

package transport

import (
	"net"
	"syscall"
)

// SendBuffer is not known outside Linux: every write to a peer goes
// through its writer goroutine.
func SendBuffer(net.Conn) (syscall.RawConn, int, bool) { return nil, 0, false }

func Unsent(syscall.RawConn) (int, bool) { return 0, false }
