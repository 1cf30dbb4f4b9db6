package alloc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/qlaunch/qlaunch/launcher/wire"
)

// The control link: qlaunch alloc dials the address the server records
// in ControlFile(address file), proves the job secret (wire's handshake,
// role "alloc"), sends one status frame holding a text request ("list",
// "add", "remove ID") and reads one reply: a status frame holding the
// answer (JSON of a Snapshot for list, a sentence otherwise) or an error
// frame holding the error's text.

// ControlFile is where the server records its allocator's control
// address, next to its address file.
func ControlFile(addressFile string) string { return addressFile + ".alloc" }

// controlTimeout bounds one control exchange.
const controlTimeout = 10 * time.Second

// maxRequest bounds a request's text.
const maxRequest = 256

// Request is one parsed control request.
type Request struct {
	Op string // "list", "add" or "remove"
	ID string // the allocation, for remove
}

// ParseRequest reads a request's text: "list", "add" or "remove ID".
func ParseRequest(s string) (Request, error) {
	if len(s) > maxRequest {
		return Request{}, fmt.Errorf("request of %d bytes, more than %d", len(s), maxRequest)
	}
	f := strings.Fields(s)
	switch {
	case len(f) == 1 && (f[0] == "list" || f[0] == "add"):
		return Request{Op: f[0]}, nil
	case len(f) == 2 && f[0] == "remove" && validID(f[1]):
		return Request{Op: "remove", ID: f[1]}, nil
	}
	return Request{}, fmt.Errorf("request %q: want list, add or remove ID", s)
}

// validID accepts a job id: SLURM's digits (and _ for arrays), PBS's
// "123.server[.domain]".
func validID(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '.' || c == '_' || c == '-' || c == '[' || c == ']') {
			return false
		}
	}
	return true
}

// Serve answers control requests on ln for a until ctx ends; it closes ln
// and returns after every connection it took. A nil log logs nothing.
func Serve(ctx context.Context, ln net.Listener, secret wire.Secret, host string, a *Allocator, log *slog.Logger) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var wg sync.WaitGroup
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	for {
		nc, err := ln.Accept()
		if err != nil {
			if ctx.Err() == nil {
				log.Warn("alloc: control listener", "err", err)
			}
			ln.Close()
			wg.Wait()
			return
		}
		wg.Go(func() {
			defer nc.Close()
			if err := serveOne(ctx, nc, secret, host, a); err != nil {
				log.Warn("alloc: control request", "remote", nc.RemoteAddr().String(), "err", err)
			}
		})
	}
}

func serveOne(ctx context.Context, nc net.Conn, secret wire.Secret, host string, a *Allocator) error {
	_ = nc.SetDeadline(time.Now().Add(controlTimeout))
	fc := wire.NewConn(nc, wire.Options{MaxFrame: 64 << 10})
	if _, err := wire.ServerHandshake(fc, secret, wire.Hello{Role: "alloc", Host: host}); err != nil {
		return err
	}
	k, b, err := fc.ReadFrame()
	if err != nil {
		return err
	}
	if k != wire.KindStatus {
		return fmt.Errorf("got a %s frame, want a status request", k)
	}
	text, err := wire.DecodeText(b)
	if err != nil {
		return err
	}
	reply, rerr := answer(ctx, a, text)
	if rerr != nil {
		err = fc.WriteFrame(wire.KindError, wire.AppendText(nil, rerr.Error()))
	} else {
		err = fc.WriteFrame(wire.KindStatus, wire.AppendText(nil, reply))
	}
	if err == nil {
		err = fc.Flush()
	}
	return err
}

func answer(ctx context.Context, a *Allocator, text string) (string, error) {
	r, err := ParseRequest(text)
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(ctx, controlTimeout)
	defer cancel()
	switch r.Op {
	case "list":
		b, err := json.Marshal(a.Snapshot())
		return string(b), err
	case "add":
		return a.Add(ctx)
	}
	return a.Remove(ctx, r.ID)
}

// Ask sends one request to the control address addr and returns the
// reply's text.
func Ask(ctx context.Context, addr string, secret wire.Secret, request string) (string, error) {
	if _, err := ParseRequest(request); err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(ctx, controlTimeout)
	defer cancel()
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return "", fmt.Errorf("the allocator's control address %s: %w", addr, err)
	}
	defer nc.Close()
	dl, _ := ctx.Deadline()
	_ = nc.SetDeadline(dl)
	fc := wire.NewConn(nc, wire.Options{MaxFrame: 16 << 20})
	if _, err := wire.ClientHandshake(fc, secret, wire.Hello{Role: "client"}); err != nil {
		return "", err
	}
	if err := fc.WriteFrame(wire.KindStatus, wire.AppendText(nil, request)); err != nil {
		return "", err
	}
	if err := fc.Flush(); err != nil {
		return "", err
	}
	k, b, err := fc.ReadFrame()
	if err != nil {
		return "", err
	}
	text, err := wire.DecodeText(b)
	if err != nil {
		return "", err
	}
	switch k {
	case wire.KindStatus:
		return text, nil
	case wire.KindError:
		return "", errors.New(text)
	}
	return "", fmt.Errorf("the allocator answered with a %s frame", k)
}

// DecodeSnapshot decodes the reply to "list".
func DecodeSnapshot(text string) (Snapshot, error) {
	var s Snapshot
	if err := json.Unmarshal([]byte(text), &s); err != nil {
		return Snapshot{}, fmt.Errorf("the allocator's list: %w", err)
	}
	return s, nil
}
