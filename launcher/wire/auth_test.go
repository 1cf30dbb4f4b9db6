package wire

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
)

func testSecret(t testing.TB, fill byte) Secret {
	t.Helper()
	s, err := NewSecret(bytes.Repeat([]byte{fill}, 32))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

type handshakeResult struct {
	peer Hello
	err  error
}

// runHandshake runs both ends over net.Pipe and returns what each saw, and
// the two Conns for further use.
func runHandshake(t *testing.T, clientSecret, serverSecret Secret, client, server Hello, opts Options) (c, s handshakeResult, cc, sc *Conn) {
	t.Helper()
	a, b := net.Pipe()
	t.Cleanup(func() { a.Close(); b.Close() })
	cc, sc = NewConn(a, opts), NewConn(b, opts)
	done := make(chan handshakeResult, 1)
	go func() {
		peer, err := ServerHandshake(sc, serverSecret, server)
		if err != nil {
			b.Close() // as a server would: unblock the client
		}
		done <- handshakeResult{peer, err}
	}()
	peer, err := ClientHandshake(cc, clientSecret, client)
	if err != nil {
		a.Close()
	}
	return handshakeResult{peer, err}, <-done, cc, sc
}

func TestHandshake(t *testing.T) {
	sec := testSecret(t, 7)
	client := Hello{Role: "worker", Rank: 12, Host: "node12"}
	server := Hello{Role: "manager", Rank: 3, Host: "node03"}
	c, s, cc, sc := runHandshake(t, sec, sec, client, server, Options{MaxFrame: 1 << 20})
	if c.err != nil || s.err != nil {
		t.Fatalf("client: %v; server: %v", c.err, s.err)
	}
	if want := (Hello{Version: ProtocolVersion, Role: "manager", Rank: 3, Host: "node03"}); c.peer != want {
		t.Errorf("client saw %+v, want %+v", c.peer, want)
	}
	if want := (Hello{Version: ProtocolVersion, Role: "worker", Rank: 12, Host: "node12"}); s.peer != want {
		t.Errorf("server saw %+v, want %+v", s.peer, want)
	}
	// After the handshake the full frame limit applies again, and
	// compressed frames are accepted.
	cc.comp, cc.threshold = CompressS2, 1
	big := repetitiveBytes(512 << 10)
	errc := make(chan error, 1)
	go func() {
		if err := cc.WriteFrame(KindSubmit, big); err != nil {
			errc <- err
			return
		}
		errc <- cc.Flush()
	}()
	k, p, err := sc.ReadFrame()
	if err != nil || k != KindSubmit || !bytes.Equal(p, big) {
		t.Fatalf("frame after handshake: %s, %d bytes, %v", k, len(p), err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

func TestHandshakeWrongSecret(t *testing.T) {
	c, s, _, _ := runHandshake(t, testSecret(t, 1), testSecret(t, 2), Hello{Role: "client"}, Hello{Role: "server"}, Options{})
	if !errors.Is(c.err, ErrAuth) {
		t.Errorf("client: %v, want ErrAuth", c.err)
	}
	if !errors.Is(s.err, ErrAuth) {
		t.Errorf("server: %v, want ErrAuth", s.err)
	}
}

func TestHandshakeVersionMismatch(t *testing.T) {
	sec := testSecret(t, 1)
	c, s, _, _ := runHandshake(t, sec, sec, Hello{Version: ProtocolVersion + 1, Role: "client"}, Hello{Role: "server"}, Options{})
	for name, err := range map[string]error{"client": c.err, "server": s.err} {
		if !errors.Is(err, ErrVersion) {
			t.Errorf("%s: %v, want ErrVersion", name, err)
			continue
		}
		if !strings.Contains(err.Error(), fmt.Sprint("version ", ProtocolVersion)) || !strings.Contains(err.Error(), fmt.Sprint("version ", ProtocolVersion+1)) {
			t.Errorf("%s: %q does not name both versions", name, err)
		}
	}
}

// recorder is one end of a connection that also records what it wrote.
type recorder struct {
	net.Conn
	wrote bytes.Buffer
}

func (r *recorder) Write(p []byte) (int, error) {
	r.wrote.Write(p)
	return r.Conn.Write(p)
}

// recordHandshake runs a successful handshake and returns the bytes each end sent.
func recordHandshake(t testing.TB, sec Secret) (fromClient, fromServer []byte) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	ra, rb := &recorder{Conn: a}, &recorder{Conn: b}
	done := make(chan error, 1)
	go func() {
		_, err := ServerHandshake(NewConn(rb, Options{}), sec, Hello{Role: "server", Host: "s"})
		done <- err
	}()
	if _, err := ClientHandshake(NewConn(ra, Options{}), sec, Hello{Role: "client", Host: "c"}); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	return ra.wrote.Bytes(), rb.wrote.Bytes()
}

func TestHandshakeReplay(t *testing.T) {
	sec := testSecret(t, 5)
	fromClient, fromServer := recordHandshake(t, sec)
	// A recorded client, replayed to a server: its proof is bound to the
	// old server nonce.
	_, err := ServerHandshake(NewConn(readWriter{bytes.NewReader(fromClient), io.Discard}, Options{}), sec, Hello{Role: "server"})
	if !errors.Is(err, ErrAuth) {
		t.Errorf("server fed a replayed client: %v, want ErrAuth", err)
	}
	// A recorded server, replayed to a client: its proof is bound to the
	// old client nonce.
	_, err = ClientHandshake(NewConn(readWriter{bytes.NewReader(fromServer), io.Discard}, Options{}), sec, Hello{Role: "client"})
	if !errors.Is(err, ErrAuth) {
		t.Errorf("client fed a replayed server: %v, want ErrAuth", err)
	}
}

// TestHandshakeReflection plays an impostor server that does not know the
// secret and sends the client's own proof back as its proof.
func TestHandshakeReflection(t *testing.T) {
	sec := testSecret(t, 9)
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	done := make(chan error, 1)
	go func() {
		imp := NewConn(b, Options{})
		_, hello, err := imp.ReadFrame()
		if err != nil {
			done <- err
			return
		}
		// Echo the client's hello (same nonce), then a hello with a nonce of its own.
		mine := bytes.Clone(hello)
		mine[2] ^= 0xff
		if err := imp.WriteFrame(KindHello, mine); err != nil {
			done <- err
			return
		}
		if err := imp.Flush(); err != nil {
			done <- err
			return
		}
		_, proof, err := imp.ReadFrame()
		if err != nil {
			done <- err
			return
		}
		if err := imp.WriteFrame(KindAuth, proof); err != nil {
			done <- err
			return
		}
		done <- imp.Flush()
	}()
	_, err := ClientHandshake(NewConn(a, Options{}), sec, Hello{Role: "client"})
	if !errors.Is(err, ErrAuth) {
		t.Errorf("client against a reflecting server: %v, want ErrAuth", err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestHandshakeEchoedNonce plays a peer that answers with our own hello.
func TestHandshakeEchoedNonce(t *testing.T) {
	sec := testSecret(t, 9)
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	go func() {
		imp := NewConn(b, Options{})
		_, hello, err := imp.ReadFrame()
		if err == nil && imp.WriteFrame(KindHello, hello) == nil {
			imp.Flush()
		}
	}()
	_, err := ClientHandshake(NewConn(a, Options{}), sec, Hello{Role: "client"})
	if !errors.Is(err, ErrAuth) {
		t.Errorf("client whose nonce came back: %v, want ErrAuth", err)
	}
}

func TestHandshakeHostilePeer(t *testing.T) {
	sec := testSecret(t, 3)
	hello := appendTestHello(t, Hello{Version: ProtocolVersion, Role: "client"})
	cases := []struct {
		name   string
		stream []byte
		want   error
	}{
		{"empty", nil, io.ErrUnexpectedEOF},
		{"huge hello", frameBytes(1<<30, KindHello, 0, nil), ErrFrameTooLarge},
		{"hello just over 4 KiB", frameBytes(handshakeMaxFrame+1, KindHello, 0, nil), ErrFrameTooLarge},
		{"submit first", frameBytes(3, KindSubmit, 0, []byte("abc")), ErrBadFrame},
		{"compressed hello", frameBytes(uint32(len(hello)), KindHello, flagS2, hello), ErrBadFrame},
		{"hello too short", frameBytes(1, KindHello, 0, []byte{0}), ErrBadFrame},
		{"hello without nonce", frameBytes(4, KindHello, 0, []byte{0, byte(ProtocolVersion), 2, 3}), ErrBadFrame},
		{"hello with trailing bytes", frameBytes(uint32(len(hello)+1), KindHello, 0, append(bytes.Clone(hello), 0)), ErrBadFrame},
		{"hello then garbage", append(frameBytes(uint32(len(hello)), KindHello, 0, hello), "garbage"...), ErrFrameTooLarge},
		{"hello then part of a header", append(frameBytes(uint32(len(hello)), KindHello, 0, hello), "gar"...), io.ErrUnexpectedEOF},
		{"hello then wrong proof", append(frameBytes(uint32(len(hello)), KindHello, 0, hello), frameBytes(32, KindAuth, 0, make([]byte, 32))...), ErrAuth},
		{"hello then empty proof", append(frameBytes(uint32(len(hello)), KindHello, 0, hello), frameBytes(0, KindAuth, 0, nil)...), ErrAuth},
		{"hello then huge proof", append(frameBytes(uint32(len(hello)), KindHello, 0, hello), frameBytes(1<<20, KindAuth, 0, nil)...), ErrFrameTooLarge},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			_, err := ServerHandshake(NewConn(readWriter{&panicReader{b: tc.stream, eof: true}, &out}, Options{}), sec, Hello{Role: "server"})
			if !errors.Is(err, tc.want) {
				t.Errorf("ServerHandshake = %v, want %v", err, tc.want)
			}
		})
	}
}

func appendTestHello(t testing.TB, h Hello) []byte {
	b, err := appendHello(nil, &h, [nonceSize]byte{1, 2, 3})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestHandshakeBadArguments(t *testing.T) {
	var buf bytes.Buffer
	if _, err := ClientHandshake(NewConn(&buf, Options{}), Secret{}, Hello{}); !errors.Is(err, ErrSecretTooShort) {
		t.Errorf("ClientHandshake without a secret: %v", err)
	}
	if _, err := ServerHandshake(NewConn(&buf, Options{}), Secret{}, Hello{}); !errors.Is(err, ErrSecretTooShort) {
		t.Errorf("ServerHandshake without a secret: %v", err)
	}
	long := Hello{Host: strings.Repeat("h", handshakeMaxFrame)}
	if _, err := ClientHandshake(NewConn(&buf, Options{}), testSecret(t, 1), long); !errors.Is(err, ErrFrameTooLarge) {
		t.Errorf("ClientHandshake with a 4 KiB host name: %v", err)
	}
	if buf.Len() != 0 {
		t.Errorf("failed handshakes wrote %d bytes", buf.Len())
	}
}

func TestHelloRoundTrip(t *testing.T) {
	for _, h := range []Hello{
		{Version: 1},
		{Version: 1, Role: "worker", Rank: -1, Host: "n"},
		{Version: 1, Role: "manager", Rank: 1<<31 - 1, Host: strings.Repeat("x", 300)},
		{Version: 1, Role: "client", Rank: -1 << 31, Host: "héllo"},
	} {
		nonce := [nonceSize]byte{9, 8, 7}
		b, err := appendHello(nil, &h, nonce)
		if err != nil {
			t.Fatal(err)
		}
		got, n, err := decodeHello(b, 1)
		if err != nil || got != h || !bytes.Equal(n, nonce[:]) {
			t.Errorf("%+v: decoded %+v, nonce %x, %v", h, got, n, err)
		}
	}
	if _, err := appendHello(nil, &Hello{Rank: 1 << 40}, [nonceSize]byte{}); err == nil {
		t.Error("rank 1<<40 encoded")
	}
}
