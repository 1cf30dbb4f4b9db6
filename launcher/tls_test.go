package launcher_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/qlaunch/qlaunch/kernels"
	"github.com/qlaunch/qlaunch/launcher"
	"github.com/qlaunch/qlaunch/launcher/client"
	"github.com/qlaunch/qlaunch/launcher/launchertest"
	"github.com/qlaunch/qlaunch/launcher/wire"
)

func loadTLS(t *testing.T, f wire.TLSFiles) *wire.TLS {
	t.Helper()
	tl, err := wire.LoadTLS(f)
	if err != nil {
		t.Fatal(err)
	}
	return tl
}

// TestTLSTree runs a tree of two levels whose every link, the client's
// included, is inside mutual TLS: tasks run on every worker rank.
func TestTLSTree(t *testing.T) {
	files := launchertest.TLSFiles(t, t.TempDir())
	tr := launchertest.Start(t, launchertest.Shape{Workers: []int{2}, Managers: []launchertest.Shape{{Workers: []int{1, 1}}}},
		launchertest.Options{TLS: loadTLS(t, files)})
	c := tr.Client()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	for i, v := range mapWait(t, ctx, c, echoes(40)) {
		if string(v) != strconv.Itoa(i) {
			t.Fatalf("task %d returned %q, want %q", i, v, strconv.Itoa(i))
		}
	}
}

// TestTLSRefusals: a TLS server refuses a plain peer, a peer whose
// certificate another CA signed, a peer without a certificate (mutual TLS)
// and, inside TLS, a peer without the job secret; a plain server refuses a
// TLS peer. Each refusal is an error saying which.
func TestTLSRefusals(t *testing.T) {
	files := launchertest.TLSFiles(t, t.TempDir())
	good := loadTLS(t, files)
	tr := launchertest.Start(t, launchertest.Shape{Workers: []int{1}}, launchertest.Options{TLS: good})
	plainTree := launchertest.Start(t, launchertest.Shape{Workers: []int{1}})
	other := loadTLS(t, launchertest.TLSFiles(t, t.TempDir()))
	noCert := loadTLS(t, wire.TLSFiles{CAFile: files.CAFile})
	wrongSecret, err := wire.GenerateSecret()
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		addr   string
		tls    *wire.TLS
		secret wire.Secret
		want   error
		text   string
	}{
		{"plain client, TLS server", tr.Addr, nil, tr.Secret, wire.ErrRefused, "requires TLS"},
		{"TLS client, plain server", plainTree.Addr, good, plainTree.Secret, wire.ErrTLS, "is TLS configured at the peer?"},
		{"server certificate of another CA", tr.Addr, other, tr.Secret, wire.ErrTLS, "certificate signed by unknown authority"},
		{"no client certificate", tr.Addr, noCert, tr.Secret, wire.ErrTLS, "certificate required"},
		{"wrong secret inside TLS", tr.Addr, good, wrongSecret, wire.ErrAuth, "refused our proof"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cl, err := client.Dial(t.Context(), c.addr, client.Options{Secret: c.secret, TLS: c.tls, DialTimeout: 10 * time.Second})
			if err == nil {
				cl.Close()
				t.Fatal("connected")
			}
			if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.text) {
				t.Fatalf("error %q, want %v containing %q", err, c.want, c.text)
			}
		})
	}
	// A worker rank without TLS cannot join the TLS tree, nor one with
	// TLS the plain tree: the first refusal is final, no retries.
	for _, w := range []struct {
		name, addr string
		tls        *wire.TLS
		secret     wire.Secret
		want       error
	}{
		{"plain worker", tr.Addr, nil, tr.Secret, wire.ErrRefused},
		{"TLS worker", plainTree.Addr, good, plainTree.Secret, wire.ErrTLS},
	} {
		t.Run(w.name, func(t *testing.T) {
			reg, err := kernels.NewRegistry(kernels.Builtin()...)
			if err != nil {
				t.Fatal(err)
			}
			err = launcher.RunWorker(t.Context(), launcher.WorkerConfig{NodeConfig: launcher.NodeConfig{
				Rank: 9, Parent: w.addr, Registry: reg,
				Link: launcher.LinkConfig{Secret: w.secret, TLS: w.tls, DialTimeout: 20 * time.Second},
			}})
			if !errors.Is(err, w.want) {
				t.Fatalf("worker: %v, want %v", err, w.want)
			}
		})
	}
	// Both trees still serve their own clients.
	for _, tree := range []*launchertest.Tree{tr, plainTree} {
		c := tree.Client()
		f, err := c.Submit(t.Context(), kernels.Task{Kernel: "echo", Args: []string{"ok"}})
		if err != nil {
			t.Fatal(err)
		}
		if v, err := c.Wait(t.Context(), f); err != nil || string(v[0]) != "ok" {
			t.Fatalf("after the refusals: %q, %v", v, err)
		}
	}
}

// TestLoadTLSErrors: incomplete TLS settings are refused with what is
// missing.
func TestLoadTLSErrors(t *testing.T) {
	files := launchertest.TLSFiles(t, t.TempDir())
	for _, c := range []struct {
		name string
		f    wire.TLSFiles
		text string
	}{
		{"no CA", wire.TLSFiles{CertFile: files.CertFile, KeyFile: files.KeyFile}, "no CA file"},
		{"cert without key", wire.TLSFiles{CertFile: files.CertFile, CAFile: files.CAFile}, "needs a key file"},
		{"missing CA file", wire.TLSFiles{CAFile: files.CAFile + ".missing"}, "no such file"},
		{"CA file not PEM", wire.TLSFiles{CAFile: files.KeyFile + "x"}, "no such file"},
		{"key of no certificate", wire.TLSFiles{CertFile: files.CAFile, KeyFile: files.KeyFile, CAFile: files.CAFile}, "private key does not match"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := wire.LoadTLS(c.f)
			if !errors.Is(err, wire.ErrTLS) || !strings.Contains(err.Error(), c.text) {
				t.Fatalf("LoadTLS: %v, want ErrTLS containing %q", err, c.text)
			}
		})
	}
	if tl, err := wire.LoadTLS(wire.TLSFiles{}); tl != nil || err != nil {
		t.Fatalf("LoadTLS of no files: %v, %v; want plain TCP", tl, err)
	}
}
