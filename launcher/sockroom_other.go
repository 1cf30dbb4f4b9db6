//go:build !linux

package launcher

import (
	"net"
	"syscall"
)

// sendBuffer is not known outside Linux: every write to a peer goes
// through its writer goroutine.
func sendBuffer(net.Conn) (syscall.RawConn, int, bool) { return nil, 0, false }

func unsent(syscall.RawConn) (int, bool) { return 0, false }
