package python_test

import (
	"bufio"
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/qlaunch/qlaunch/launcher/wire"
)

// These tests hold docs/protocol.md to the Go implementation: every vector
// of its "vectors" block must be what launcher/wire writes and reads, and
// the handshake formula it states must be the one wire's handshakes check.

func vectors(t *testing.T) map[string][]byte {
	t.Helper()
	f, err := os.Open(filepath.Join(repoRoot(t), "docs", "protocol.md"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	vs := make(map[string][]byte)
	in := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "```vectors":
			in = true
		case in && line == "```":
			in = false
		case in && line != "":
			name, hx, ok := strings.Cut(line, " ")
			b, err := hex.DecodeString(hx)
			if !ok || err != nil {
				t.Fatalf("protocol.md: bad vector line %q", line)
			}
			vs[name] = b
		}
	}
	if len(vs) < 20 {
		t.Fatalf("protocol.md: %d vectors, want at least 20", len(vs))
	}
	return vs
}

func want(t *testing.T, vs map[string][]byte, name string, got []byte) {
	t.Helper()
	v, ok := vs[name]
	if !ok {
		t.Fatalf("protocol.md has no vector %s", name)
	}
	if !bytes.Equal(v, got) {
		t.Errorf("%s: the document says %x, launcher/wire gives %x", name, v, got)
	}
}

func TestProtocolIntegers(t *testing.T) {
	vs := vectors(t)
	want(t, vs, "uvarint-300", binary.AppendUvarint(nil, 300))
	want(t, vs, "varint-minus-1", binary.AppendVarint(nil, -1))
	want(t, vs, "varint-minus-4", binary.AppendVarint(nil, -4))
	want(t, vs, "varint-300", binary.AppendVarint(nil, 300))
}

func compressedPayload() []byte { return bytes.Repeat([]byte("qlaunch "), 64) }

func TestProtocolFrames(t *testing.T) {
	vs := vectors(t)
	var buf bytes.Buffer
	c := wire.NewConn(&buf, wire.Options{})
	_ = c.WriteFrame(wire.KindHeartbeat, nil)
	_ = c.WriteFrame(wire.KindShutdown, wire.AppendText(nil, "interrupted"))
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	want(t, vs, "frame-heartbeat", buf.Bytes()[:6])
	want(t, vs, "frame-shutdown", buf.Bytes()[6:])
	for _, name := range []string{"frame-zstd", "frame-s2", "frame-shutdown", "frame-heartbeat"} {
		r := wire.NewConn(bytes.NewBuffer(bytes.Clone(vs[name])), wire.Options{})
		k, p, err := r.ReadFrame()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		switch name {
		case "frame-zstd", "frame-s2":
			if k != wire.KindSubmit || !bytes.Equal(p, compressedPayload()) {
				t.Errorf("%s decodes to %s %q", name, k, p)
			}
			if vs[name][5] == 0 {
				t.Errorf("%s is not compressed", name)
			}
		case "frame-shutdown":
			if s, err := wire.DecodeText(p); k != wire.KindShutdown || err != nil || s != "interrupted" {
				t.Errorf("%s decodes to %s %q %v", name, k, s, err)
			}
		}
	}
}

func TestProtocolMessages(t *testing.T) {
	vs := vectors(t)
	want(t, vs, "submit-echo", wire.AppendTaskRecord(nil, 1<<32, &wire.Task{Kernel: "echo", Args: []string{"a", "bc"}, Payload: []byte("xyz"), LogDepth: -1}))
	want(t, vs, "task-fanout", wire.AppendTask(nil, &wire.Task{Kernel: "fanout", Args: []string{"10", "2"}, LogLevel: -4, LogDepth: 2}))
	want(t, vs, "result-ok", wire.AppendRecord(nil, 1<<32, wire.AppendResult(nil, &wire.Result{Value: []byte("a bc")})))
	want(t, vs, "result-error", wire.AppendResult(nil, &wire.Result{Status: wire.ResultError, Message: "boom", Kernel: "fail", Rank: 1, Host: "n1"}))
	want(t, vs, "result-lost", wire.AppendResult(nil, &wire.Result{Status: wire.ResultLost, Message: "connection lost", Kernel: "sleep", Rank: 3, Host: "n2"}))
	want(t, vs, "cancel", wire.AppendCancel(nil, []uint64{1 << 32, 1<<32 | 1, 300}))
	want(t, vs, "log", wire.AppendLog(nil, &wire.LogRecord{Task: 1 << 32, Time: 1700000000000000000, Level: 4, Rank: 1, Host: "n1", Msg: "hi", Attrs: []string{"k", "v"}}))

	want(t, vs, "status-request", wire.AppendStatus(nil, &wire.Status{ID: 7}))
	want(t, vs, "status-reply", wire.AppendStatus(nil, &wire.Status{ID: 7, Reply: true, Ranks: []wire.RankStatus{
		{Rank: 0, Parent: -1, Role: "server+manager", Host: "n1"},
		{Rank: 1, Parent: 0, Depth: 1, Role: "worker", Host: "n1", Slots: 2, Busy: 1, Queued: 3, Done: 40},
	}}))

	var task wire.Task
	recs := wire.NewRecords(vs["submit-echo"])
	id, body, ok := recs.Next()
	if !ok || id != 1<<32 {
		t.Fatalf("submit-echo: record %d %v %v", id, ok, recs.Err())
	}
	if err := wire.DecodeTask(body, &task); err != nil || task.Kernel != "echo" || string(task.Payload) != "xyz" {
		t.Errorf("submit-echo decodes to %+v, %v", task, err)
	}
	var r wire.Result
	if err := wire.DecodeResult(vs["result-lost"], &r); err != nil || r.Status != wire.ResultLost || r.Rank != 3 || r.Host != "n2" {
		t.Errorf("result-lost decodes to %+v, %v", r, err)
	}
}

// docHello and docProof are the document's formulas, written from it.
func docHello(nonce []byte, role string, rank int, host string) []byte {
	b := binary.BigEndian.AppendUint16(nil, wire.ProtocolVersion)
	b = append(b, nonce...)
	b = binary.AppendUvarint(b, uint64(len(role)))
	b = append(b, role...)
	b = binary.AppendVarint(b, int64(rank))
	b = binary.AppendUvarint(b, uint64(len(host)))
	return append(b, host...)
}

func docProof(secret []byte, label string, hc, hs []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(label))
	m.Write(binary.BigEndian.AppendUint32(nil, uint32(len(hc))))
	m.Write(hc)
	m.Write(binary.BigEndian.AppendUint32(nil, uint32(len(hs))))
	m.Write(hs)
	return m.Sum(nil)
}

const (
	clientLabel       = "qlaunch wire client proof\x00"
	serverLabel       = "qlaunch wire server proof\x00"
	clientFramesLabel = "qlaunch wire client frames\x00"
	serverFramesLabel = "qlaunch wire server frames\x00"
)

// docMACFrame is the document's frame after the handshake: header |
// payload | GMAC(key, nonce = header | seq as 6 bytes BE, payload).
func docMACFrame(t *testing.T, key []byte, seq uint64, kind wire.Kind, payload []byte) []byte {
	t.Helper()
	block, err := aes.NewCipher(key)
	if err != nil {
		t.Fatal(err)
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		t.Fatal(err)
	}
	header := binary.BigEndian.AppendUint32(nil, uint32(len(payload)))
	header = append(header, byte(kind), 0)
	nonce := append(bytes.Clone(header), binary.BigEndian.AppendUint64(nil, seq)[2:]...)
	f := append(bytes.Clone(header), payload...)
	return gcm.Seal(f, nonce, nil, payload)
}

// docLargePayload is 150000 bytes, byte i being i mod 251: it does not
// compress much, and a relay writes it in two parts.
func docLargePayload() []byte {
	p := make([]byte, 150000)
	for i := range p {
		p[i] = byte(i % 251)
	}
	return p
}

func TestProtocolFrameMACVectors(t *testing.T) {
	vs := vectors(t)
	hc, hs, k := vs["hello-client"], vs["hello-server"], vs["secret"]
	kc, ks := docProof(k, clientFramesLabel, hc, hs), docProof(k, serverFramesLabel, hc, hs)
	want(t, vs, "mac-key-client", kc)
	want(t, vs, "mac-key-server", ks)
	want(t, vs, "frame-heartbeat-mac", docMACFrame(t, kc, 0, wire.KindHeartbeat, nil))
	want(t, vs, "frame-submit-mac", docMACFrame(t, kc, 1, wire.KindSubmit, vs["submit-echo"]))
	want(t, vs, "frame-shutdown-mac", docMACFrame(t, ks, 0, wire.KindShutdown, wire.AppendText(nil, "interrupted")))
}

func TestProtocolHandshakeVectors(t *testing.T) {
	vs := vectors(t)
	hc := docHello(bytes.Repeat([]byte{0x11}, 32), "client", -1, "laptop")
	hs := docHello(bytes.Repeat([]byte{0x22}, 32), "server", 0, "node1")
	want(t, vs, "hello-client", hc)
	want(t, vs, "hello-server", hs)
	want(t, vs, "proof-client", docProof(vs["secret"], clientLabel, hc, hs))
	want(t, vs, "proof-server", docProof(vs["secret"], serverLabel, hc, hs))
}

// TestProtocolHandshakeLive runs the document's client side against
// wire.ServerHandshake, and its server side against wire.ClientHandshake.
func TestProtocolHandshakeLive(t *testing.T) {
	vs := vectors(t)
	secret, err := wire.NewSecret(vs["secret"])
	if err != nil {
		t.Fatal(err)
	}
	t.Run("server", func(t *testing.T) {
		a, b := net.Pipe()
		defer a.Close()
		errc := make(chan error, 1)
		go func() {
			defer b.Close()
			sc := wire.NewConn(b, wire.Options{})
			if _, err := wire.ServerHandshake(sc, secret, wire.Hello{Role: "server", Host: "node1"}); err != nil {
				errc <- err
				return
			}
			// The document's MACed frames are read, and ours follow it.
			for _, want := range []wire.Kind{wire.KindHeartbeat, wire.KindSubmit} {
				if k, _, err := sc.ReadFrame(); err != nil || k != want {
					errc <- fmt.Errorf("reading the document's %s frame: %s, %v", want, k, err)
					return
				}
			}
			if err := sc.WriteFrame(wire.KindShutdown, wire.AppendText(nil, "interrupted")); err != nil {
				errc <- err
				return
			}
			// A large frame in two parts, as a relay forwards a body.
			large := docLargePayload()
			if err := sc.WriteFrameParts(wire.KindResult, large[:7], large[7:]); err != nil {
				errc <- err
				return
			}
			errc <- sc.Flush()
		}()
		c := wire.NewConn(a, wire.Options{})
		hc := vs["hello-client"]
		mustWrite(t, c, wire.KindHello, hc)
		k, hs, err := c.ReadFrame()
		if err != nil || k != wire.KindHello {
			t.Fatalf("server hello: %s %v", k, err)
		}
		hs = bytes.Clone(hs)
		mustWrite(t, c, wire.KindAuth, docProof(vs["secret"], clientLabel, hc, hs))
		k, p, err := c.ReadFrame()
		if err != nil || k != wire.KindAuth {
			t.Fatalf("server auth: %s %v", k, err)
		}
		if !bytes.Equal(p, docProof(vs["secret"], serverLabel, hc, hs)) {
			t.Errorf("the server's proof is not the document's formula")
		}
		kc, ks := docProof(vs["secret"], clientFramesLabel, hc, hs), docProof(vs["secret"], serverFramesLabel, hc, hs)
		frames := append(docMACFrame(t, kc, 0, wire.KindHeartbeat, nil), docMACFrame(t, kc, 1, wire.KindSubmit, vs["submit-echo"])...)
		if _, err := a.Write(frames); err != nil {
			t.Fatalf("the server refused the document's MACed frames: %v", err)
		}
		wantFrame := docMACFrame(t, ks, 0, wire.KindShutdown, wire.AppendText(nil, "interrupted"))
		got := make([]byte, len(wantFrame))
		if _, err := io.ReadFull(a, got); err != nil || !bytes.Equal(got, wantFrame) {
			t.Errorf("the server's first frame after the handshake is %x (%v), the document's formula gives %x", got, err, wantFrame)
		}
		wantFrame = docMACFrame(t, ks, 1, wire.KindResult, docLargePayload())
		got = make([]byte, len(wantFrame))
		if _, err := io.ReadFull(a, got); err != nil || !bytes.Equal(got, wantFrame) {
			t.Errorf("the server's large frame written in two parts does not follow the document's formula (%v): tag %x, want %x",
				err, got[len(got)-16:], wantFrame[len(wantFrame)-16:])
		}
		if err := <-errc; err != nil {
			t.Errorf("ServerHandshake refused the document's client: %v", err)
		}
	})
	t.Run("client", func(t *testing.T) {
		a, b := net.Pipe()
		defer a.Close()
		errc := make(chan error, 1)
		go func() {
			_, err := wire.ClientHandshake(wire.NewConn(b, wire.Options{}), secret, wire.Hello{Role: "client", Rank: -1, Host: "laptop"})
			b.Close()
			errc <- err
		}()
		s := wire.NewConn(a, wire.Options{})
		k, hc, err := s.ReadFrame()
		if err != nil || k != wire.KindHello {
			t.Fatalf("client hello: %s %v", k, err)
		}
		hc = bytes.Clone(hc)
		hs := vs["hello-server"]
		mustWrite(t, s, wire.KindHello, hs)
		k, p, err := s.ReadFrame()
		if err != nil || k != wire.KindAuth {
			t.Fatalf("client auth: %s %v", k, err)
		}
		if !bytes.Equal(p, docProof(vs["secret"], clientLabel, hc, hs)) {
			t.Errorf("the client's proof is not the document's formula")
		}
		mustWrite(t, s, wire.KindAuth, docProof(vs["secret"], serverLabel, hc, hs))
		if err := <-errc; err != nil {
			t.Errorf("ClientHandshake refused the document's server: %v", err)
		}
	})
}

func mustWrite(t *testing.T, c *wire.Conn, k wire.Kind, p []byte) {
	t.Helper()
	if err := c.WriteFrame(k, p); err != nil {
		t.Fatal(err)
	}
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
}
