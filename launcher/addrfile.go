package launcher

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// AddressRecord is what an address file holds: the address clients dial,
// and who wrote it, so that a client can tell a file left behind by a
// runtime that is gone from a live one. On disk the address is the first
// line (what a batch script's "read -r QLAUNCH_ADDR <FILE" takes), then one
// KEY=VALUE line per field set: pid, host, job, secret. A file of the
// first format, the address alone, reads as a record with only Addr.
type AddressRecord struct {
	Addr       string // the server's address for clients
	PID        int    // the server's process; 0 when not recorded
	Host       string // the host the server runs on (its hostname); "" when not recorded
	Job        string // the scheduler's job id; "" outside a job
	SecretFile string // the file of the job secret clients prove; "" when not recorded
}

// AddressOwner is what a server records about its runtime beside its
// address and its process: the scheduler's job and the secret's file.
type AddressOwner struct {
	Job        string // SLURM_JOB_ID, PBS_JOBID; "" outside a job
	SecretFile string
}

// maxAddressFile bounds what ReadAddressRecord reads: a record is a few
// short lines.
const maxAddressFile = 64 << 10

// ownRecord is the record this process writes as a server at addr.
func ownRecord(addr string, o AddressOwner) AddressRecord {
	host, _ := os.Hostname()
	return AddressRecord{Addr: addr, PID: os.Getpid(), Host: host, Job: o.Job, SecretFile: o.SecretFile}
}

// MarshalText is the record as an address file holds it.
func (r AddressRecord) MarshalText() ([]byte, error) {
	if r.Addr == "" || strings.ContainsAny(r.Addr, " =") || hasControl(r.Addr) {
		return nil, fmt.Errorf("address file: bad address %q", r.Addr)
	}
	b := []byte(r.Addr + "\n")
	for _, f := range []struct{ k, v string }{{"pid", itoa(r.PID)}, {"host", r.Host}, {"job", r.Job}, {"secret", r.SecretFile}} {
		if f.v == "" {
			continue
		}
		if hasControl(f.v) {
			return nil, fmt.Errorf("address file: %s %q holds a control character", f.k, f.v)
		}
		b = append(b, f.k+"="+f.v+"\n"...)
	}
	return b, nil
}

// hasControl reports whether s holds an ASCII control character (a line
// break among them).
func hasControl(s string) bool {
	return strings.ContainsFunc(s, func(c rune) bool { return c < 0x20 || c == 0x7f })
}

func itoa(n int) string {
	if n <= 0 {
		return ""
	}
	return strconv.Itoa(n)
}

// ParseAddressRecord reads a record as MarshalText writes it (or the
// address alone). Keys it does not know are skipped, so that an older
// client reads a newer server's file.
func ParseAddressRecord(b []byte) (AddressRecord, error) {
	var r AddressRecord
	lines := strings.Split(strings.TrimRight(string(b), "\r\n"), "\n")
	r.Addr = strings.TrimSpace(lines[0])
	if r.Addr == "" {
		return r, errors.New("empty")
	}
	if strings.ContainsAny(r.Addr, " =") || hasControl(r.Addr) {
		return r, fmt.Errorf("first line %q is not an address", r.Addr)
	}
	for _, l := range lines[1:] {
		l = strings.TrimRight(l, "\r")
		if l == "" {
			continue
		}
		k, v, ok := strings.Cut(l, "=")
		if !ok || hasControl(l) {
			return r, fmt.Errorf("line %q is not KEY=VALUE", l)
		}
		switch k {
		case "pid":
			pid, err := strconv.Atoi(v)
			if err != nil || pid <= 0 {
				return r, fmt.Errorf("pid %q is not a process id", v)
			}
			r.PID = pid
		case "host":
			r.Host = v
		case "job":
			r.Job = v
		case "secret":
			r.SecretFile = v
		}
	}
	return r, nil
}

// WriteAddressRecord writes r to path atomically: a reader sees either no
// file or the whole record, never a partial one.
func WriteAddressRecord(path string, r AddressRecord) error {
	b, err := r.MarshalText()
	if err != nil {
		return err
	}
	return writeAtomically(path, b)
}

// WriteAddressFile writes addr alone to path atomically (see
// WriteAddressRecord).
func WriteAddressFile(path, addr string) error {
	return WriteAddressRecord(path, AddressRecord{Addr: addr})
}

func writeAtomically(path string, b []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("address file: %w", err)
	}
	f, err := os.CreateTemp(dir, ".qlaunch-addr-*")
	if err != nil {
		return fmt.Errorf("address file: %w", err)
	}
	tmp := f.Name()
	_, werr := f.Write(b)
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

// ReadAddressRecord returns the record at path (see AddressRecord).
func ReadAddressRecord(path string) (AddressRecord, error) {
	f, err := os.Open(path)
	if err != nil {
		return AddressRecord{}, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxAddressFile+1))
	if err != nil {
		return AddressRecord{}, err
	}
	if len(b) > maxAddressFile {
		return AddressRecord{}, fmt.Errorf("address file %s: larger than %d bytes: not an address file", path, maxAddressFile)
	}
	r, err := ParseAddressRecord(b)
	if err != nil {
		return r, fmt.Errorf("address file %s: %w", path, err)
	}
	return r, nil
}

// ReadAddressFile returns the address of the record at path.
func ReadAddressFile(path string) (string, error) {
	r, err := ReadAddressRecord(path)
	return r.Addr, err
}

// Gone reports whether the record's server is known to be gone without
// asking it: it ran on host (this machine's hostname) under a process id
// that no process holds now. A record of another host, or without a pid,
// is never known gone this way: dial it.
func (r AddressRecord) Gone(host string) bool {
	if r.PID <= 0 || r.Host == "" || r.Host != host {
		return false
	}
	return errors.Is(syscall.Kill(r.PID, 0), syscall.ESRCH)
}

// Owner names the runtime a record describes, for messages: "job 42, pid
// 1234 on n1", or "" when the record names none.
func (r AddressRecord) Owner() string {
	var parts []string
	if r.Job != "" {
		parts = append(parts, "job "+r.Job)
	}
	if r.PID > 0 {
		p := "pid " + strconv.Itoa(r.PID)
		if r.Host != "" {
			p += " on " + r.Host
		}
		parts = append(parts, p)
	}
	return strings.Join(parts, ", ")
}

// removeOwnAddressFile removes the address file at path if it still holds
// the record this process wrote for addr (a newer server may have
// replaced it).
func removeOwnAddressFile(path, addr string) error {
	r, err := ReadAddressRecord(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return err
	}
	if r.Addr != addr || r.PID != os.Getpid() {
		return nil
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}
