package launcher_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/qlaunch/qlaunch/launcher"
)

func TestAddressFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "run", "addr")
	if _, err := launcher.ReadAddressFile(path); err == nil {
		t.Fatal("reading a missing address file succeeded")
	}
	for _, addr := range []string{"127.0.0.1:7472", "node1:9000"} {
		if err := launcher.WriteAddressFile(path, addr); err != nil {
			t.Fatal(err)
		}
		if got, err := launcher.ReadAddressFile(path); err != nil || got != addr {
			t.Fatalf("read back %q %v, want %q", got, err, addr)
		}
	}
	ents, _ := os.ReadDir(filepath.Dir(path))
	if len(ents) != 1 {
		t.Fatalf("files next to the address file: %v, want only it (no temporaries)", ents)
	}
	if err := os.WriteFile(path, []byte("\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := launcher.ReadAddressFile(path); err == nil {
		t.Fatal("an empty address file was accepted")
	}
}
