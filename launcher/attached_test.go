package launcher_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/qlaunch/qlaunch/kernels"
	"github.com/qlaunch/qlaunch/launcher"
	"github.com/qlaunch/qlaunch/launcher/client"
)

func TestAttachedStartClose(t *testing.T) {
	reg, err := kernels.NewRegistry(kernels.Builtin()...)
	if err != nil {
		t.Fatal(err)
	}
	addrFile := filepath.Join(t.TempDir(), "sub", "addr")
	a, err := launcher.StartAttached(t.Context(), launcher.AttachedConfig{
		NodeConfig: launcher.NodeConfig{Host: "here", Registry: reg}, InProcess: true, AddressFile: addrFile,
		Workers: []launcher.WorkerSpec{{Rank: 1, Slots: 1}, {Rank: 2, Slots: 2}},
	})
	if err != nil {
		t.Fatal(err)
	}
	// Ready means the address file holds the address.
	if got, err := launcher.ReadAddressFile(addrFile); err != nil || got != a.Addr {
		t.Fatalf("address file: %q %v, want %q", got, err, a.Addr)
	}
	if st, err := os.Stat(a.SecretFile); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("secret file: %v %v, want mode 0600", st, err)
	}
	c, err := client.Dial(t.Context(), a.Addr, client.Options{Secret: a.Secret})
	if err != nil {
		t.Fatal(err)
	}
	if got := mustRun(t, c, "fanout", "10", "2"); got != "100" {
		t.Fatalf("fanout 10 2 = %q", got)
	}
	st, err := c.Status(t.Context())
	if err != nil || len(st) != 3 {
		t.Fatalf("status: %+v %v, want 3 ranks", st, err)
	}
	c.Close()
	if err := a.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	if err := a.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
	if _, err := os.Stat(a.SecretFile); !os.IsNotExist(err) {
		t.Fatalf("per-run secret file left behind: %v", err)
	}
}
