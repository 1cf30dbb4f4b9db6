package wire_test

import (
	"bytes"
	"fmt"
	"net"

	"github.com/qlaunch/qlaunch/launcher/wire"
)

// Two ends authenticate each other, then exchange a frame.
func Example() {
	secret, err := wire.NewSecret(bytes.Repeat([]byte("k"), 32)) // in real use: wire.EnsureSecretFile
	if err != nil {
		panic(err)
	}
	dialer, acceptor := net.Pipe() // in real use: a TCP connection, with a deadline set
	defer dialer.Close()
	defer acceptor.Close()

	done := make(chan error, 1)
	go func() {
		c := wire.NewConn(acceptor, wire.Options{Compression: wire.CompressS2})
		peer, err := wire.ServerHandshake(c, secret, wire.Hello{Role: "manager", Rank: 0, Host: "node00"})
		if err != nil {
			done <- err
			return
		}
		fmt.Printf("manager: hello from %s rank %d on %s\n", peer.Role, peer.Rank, peer.Host)
		kind, payload, err := c.ReadFrame()
		if err != nil {
			done <- err
			return
		}
		fmt.Printf("manager: %s frame of %d bytes\n", kind, len(payload))
		done <- nil
	}()

	c := wire.NewConn(dialer, wire.Options{Compression: wire.CompressS2})
	peer, err := wire.ClientHandshake(c, secret, wire.Hello{Role: "worker", Rank: 3, Host: "node03"})
	if err != nil {
		panic(err)
	}
	fmt.Printf("worker: authenticated %s on %s\n", peer.Role, peer.Host)
	before := c.Stats()
	if err := c.WriteFrame(wire.KindResult, bytes.Repeat([]byte("result "), 1000)); err != nil {
		panic(err)
	}
	if err := c.Flush(); err != nil {
		panic(err)
	}
	if err := <-done; err != nil {
		panic(err)
	}
	after := c.Stats()
	fmt.Printf("worker: sent %d payload bytes as %d bytes on the wire\n",
		after.PayloadOut-before.PayloadOut, after.WireOut-before.WireOut)
	// Unordered output:
	// manager: hello from worker rank 3 on node03
	// worker: authenticated manager on node00
	// manager: result frame of 7000 bytes
	// worker: sent 7000 payload bytes as 38 bytes on the wire
}
