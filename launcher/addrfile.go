package launcher

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// WriteAddressFile writes addr to path atomically: a reader sees either no
// file or the whole address, never a partial one.
func WriteAddressFile(path, addr string) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("address file: %w", err)
	}
	f, err := os.CreateTemp(dir, ".qlaunch-addr-*")
	if err != nil {
		return fmt.Errorf("address file: %w", err)
	}
	tmp := f.Name()
	_, werr := f.WriteString(addr + "\n")
	cerr := f.Close()
	if werr != nil || cerr != nil {
		os.Remove(tmp)
		return fmt.Errorf("address file: write %s: %w", tmp, errors.Join(werr, cerr))
	}
	if err := os.Chmod(tmp, 0o644); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("address file: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("address file: %w", err)
	}
	return nil
}

// StartingFile is where a server writes its address while it waits for
// its tree to join: the address file's path with ".starting" added. A
// client must not use it to run work; qlaunch wait reads it to ask a
// server that is not ready which ranks it still misses. The server
// removes it once ready and when it stops.
func StartingFile(addressFile string) string { return addressFile + ".starting" }

// ReadAddressFile returns the address written by WriteAddressFile.
func ReadAddressFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	addr := strings.TrimSpace(string(b))
	if addr == "" {
		return "", fmt.Errorf("address file %s is empty", path)
	}
	return addr, nil
}
