package client

import (
	"errors"
	"fmt"
	"strings"

	"github.com/qlaunch/qlaunch/launcher/wire"
)

// ErrNotServer is wrapped by Dial's error when what answered is not a
// qlaunch server: another program (an HTTP server, SSH, …), or a qlaunch
// rank other than the server (a manager's port).
var ErrNotServer = errors.New("not a qlaunch server")

// checkServer refuses a qlaunch peer that is not the server: a client
// dialling a manager's port completes the handshake, then the manager
// drops it.
func checkServer(addr string, peer wire.Hello) error {
	role, _, _ := strings.Cut(peer.Role, ":")
	if role == "server" {
		return nil
	}
	return fmt.Errorf("client: %s is a qlaunch %s (rank %d on %s), %w: clients dial the server (port 7472 unless it was given another; qlaunch run and the address file tell its address)",
		addr, role, peer.Rank, peer.Host, ErrNotServer)
}
