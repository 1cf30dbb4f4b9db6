package client_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/qlaunch/qlaunch/launcher"
	"github.com/qlaunch/qlaunch/launcher/client"
	"github.com/qlaunch/qlaunch/launcher/wire"
)

// TestDialNotAServer dials real listeners that are not a qlaunch server:
// an HTTP server (a metrics port), a program that greets in another
// protocol (SSH), and a qlaunch manager's two ports. Each is named.
func TestDialNotAServer(t *testing.T) {
	secret, err := wire.GenerateSecret()
	if err != nil {
		t.Fatal(err)
	}
	listen := func() net.Listener {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ln.Close() })
		return ln
	}

	httpLn := listen()
	srv := &http.Server{ReadHeaderTimeout: 200 * time.Millisecond}
	go srv.Serve(httpLn)
	t.Cleanup(func() { srv.Close() })

	sshLn := listen()
	go func() {
		for {
			c, err := sshLn.Accept()
			if err != nil {
				return
			}
			c.Write([]byte("SSH-2.0-OpenSSH_9.6\r\n"))
			defer c.Close()
		}
	}()

	ctx, cancel := context.WithCancel(t.Context())
	mgrLns := []net.Listener{listen(), listen()}
	done := make(chan error, 1)
	go func() {
		done <- launcher.RunManager(ctx, launcher.ManagerConfig{NodeConfig: launcher.NodeConfig{Rank: 3, Host: "mhost", Link: launcher.LinkConfig{Secret: secret}}, Listeners: mgrLns})
	}()
	t.Cleanup(func() { cancel(); <-done })

	for _, c := range []struct {
		name string
		addr string
		want string
	}{
		{"http", httpLn.Addr().String(), httpLn.Addr().String() + " is not a qlaunch server (it answered HTTP)"},
		{"ssh", sshLn.Addr().String(), sshLn.Addr().String() + " is not a qlaunch server (it answered SSH)"},
		{"manager port", mgrLns[0].Addr().String(), mgrLns[0].Addr().String() + " is a qlaunch manager (rank 3 on mhost), not a qlaunch server: clients dial the server"},
		{"manager worker port", mgrLns[1].Addr().String(), mgrLns[1].Addr().String() + " is a qlaunch manager (rank 3 on mhost), not a qlaunch server"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dctx, dcancel := context.WithTimeout(t.Context(), 5*time.Second)
			defer dcancel()
			cl, err := client.Dial(dctx, c.addr, client.Options{Secret: secret})
			if err == nil {
				cl.Close()
				t.Fatal("Dial succeeded")
			}
			if !errors.Is(err, client.ErrNotServer) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Dial: %v; want ErrNotServer and %q", err, c.want)
			}
		})
	}
}
