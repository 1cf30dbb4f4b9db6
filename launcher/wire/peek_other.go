//go:build !unix

package wire

import "net"

// peekByte cannot look ahead on this system.
func peekByte(net.Conn) (byte, bool) { return 0, false }
