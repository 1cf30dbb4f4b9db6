package wire

import (
	"bytes"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
)

// MinSecretLen is the least length of a job secret, in bytes.
const MinSecretLen = 32

// maxSecretFile bounds how much of a secret file is read.
const maxSecretFile = 64 << 10

// Secret is the job secret. It never appears in logs or formatted output:
// String, GoString, Format (every verb), LogValue and MarshalText all give
// "REDACTED".
type Secret struct {
	key []byte
}

const redacted = "REDACTED"

// NewSecret returns a secret holding a copy of b, which must be at least
// MinSecretLen bytes long.
func NewSecret(b []byte) (Secret, error) {
	if len(b) < MinSecretLen {
		return Secret{}, fmt.Errorf("%w: %d bytes, need at least %d", ErrSecretTooShort, len(b), MinSecretLen)
	}
	return Secret{key: bytes.Clone(b)}, nil
}

// GenerateSecret returns a fresh random secret: 32 bytes from crypto/rand,
// written as 64 hexadecimal digits (the form EnsureSecretFile stores).
func GenerateSecret() (Secret, error) {
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return Secret{}, fmt.Errorf("wire: generate secret: %w", err)
	}
	return Secret{key: hex.AppendEncode(nil, raw[:])}, nil
}

// IsZero reports whether s holds no secret.
func (s Secret) IsZero() bool { return len(s.key) == 0 }

// Equal reports, in constant time for secrets of equal length, whether s
// and t are the same secret.
func (s Secret) Equal(t Secret) bool { return subtle.ConstantTimeCompare(s.key, t.key) == 1 }

func (s Secret) check() error {
	if len(s.key) < MinSecretLen {
		return fmt.Errorf("%w: %d bytes, need at least %d", ErrSecretTooShort, len(s.key), MinSecretLen)
	}
	return nil
}

// String returns "REDACTED".
func (Secret) String() string { return redacted }

// GoString returns "REDACTED", for %#v.
func (Secret) GoString() string { return redacted }

// Format writes "REDACTED" for every verb, so %x or %q cannot leak it.
func (Secret) Format(f fmt.State, _ rune) { io.WriteString(f, redacted) }

// LogValue implements slog.LogValuer.
func (Secret) LogValue() slog.Value { return slog.StringValue(redacted) }

// MarshalText returns "REDACTED", so encoders of configuration print no
// secret either.
func (Secret) MarshalText() ([]byte, error) { return []byte(redacted), nil }

// LoadSecretFile reads the secret from a file. The secret is the file's
// content less trailing white space (a line of `openssl rand -hex 32` will
// do), at least MinSecretLen bytes. The file must be a regular file owned by
// the user and readable by nobody else (mode 0600 or 0400); otherwise the
// error wraps ErrInsecureSecretFile and says how to fix it.
func LoadSecretFile(path string) (Secret, error) {
	f, err := os.Open(path)
	if err != nil {
		return Secret{}, fmt.Errorf("wire: secret file: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return Secret{}, fmt.Errorf("wire: secret file: %w", err)
	}
	if err := checkSecretFile(path, fi); err != nil {
		return Secret{}, err
	}
	b, err := io.ReadAll(io.LimitReader(f, maxSecretFile+1))
	if err != nil {
		return Secret{}, fmt.Errorf("wire: secret file %s: %w", path, err)
	}
	if len(b) > maxSecretFile {
		return Secret{}, fmt.Errorf("wire: secret file %s is larger than %d bytes", path, maxSecretFile)
	}
	s, err := NewSecret(bytes.TrimRight(b, " \t\r\n"))
	if err != nil {
		return Secret{}, fmt.Errorf("secret file %s: %w (write one with: openssl rand -hex 32 > %s)", path, err, path)
	}
	return s, nil
}

func checkSecretFile(path string, fi fs.FileInfo) error {
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%w: %s is not a regular file (%s)", ErrInsecureSecretFile, path, fi.Mode().Type())
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return fmt.Errorf("%w: %s has mode %#o, so others may read it; make it private to you: chmod 600 %s",
			ErrInsecureSecretFile, path, perm, path)
	}
	if uid, ok := fileOwner(fi); ok && uid != os.Getuid() {
		return fmt.Errorf("%w: %s is owned by uid %d, not by you (uid %d); use your own secret file, or: chown %d %s && chmod 600 %s",
			ErrInsecureSecretFile, path, uid, os.Getuid(), os.Getuid(), path, path)
	}
	return nil
}

// EnsureSecretFile loads the secret from path or, when the file does not
// exist, creates it with a fresh secret and mode 0600, creating its
// directory (mode 0700) if needed. Creation is atomic: the file appears
// whole or not at all, and when several processes race to create it (ranks
// sharing a home directory), all of them end up with the one that won.
func EnsureSecretFile(path string) (Secret, error) {
	s, err := LoadSecretFile(path)
	if !errors.Is(err, fs.ErrNotExist) {
		return s, err
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return Secret{}, fmt.Errorf("wire: secret file: %w", err)
	}
	if err := checkJobDir(dir); err != nil {
		return Secret{}, err
	}
	s, err = GenerateSecret()
	if err != nil {
		return Secret{}, err
	}
	if err := createExclusive(path, append(bytes.Clone(s.key), '\n')); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return LoadSecretFile(path)
		}
		return Secret{}, fmt.Errorf("wire: create secret file: %w", err)
	}
	return s, nil
}

// checkJobDir refuses a per-job directory (JobDirPrefix…) that others may
// enter: MkdirAll creates it 0700, so a wider one was made by someone else.
func checkJobDir(dir string) error {
	if !strings.HasPrefix(filepath.Base(dir), JobDirPrefix) {
		return nil
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("wire: secret file: %w", err)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return fmt.Errorf("%w: the job directory %s has mode %#o, so others may enter it; make it private to you: chmod 700 %s",
			ErrInsecureSecretFile, dir, perm, dir)
	}
	if uid, ok := fileOwner(fi); ok && uid != os.Getuid() {
		return fmt.Errorf("%w: the job directory %s is owned by uid %d, not by you (uid %d)", ErrInsecureSecretFile, dir, uid, os.Getuid())
	}
	return nil
}

// createExclusive creates path holding data, mode 0600, failing with
// fs.ErrExist if it exists. The data is written to a temporary file in the
// same directory which is then hard-linked to path, so no reader ever sees
// a partial file; where hard links are not supported it falls back to
// O_CREATE|O_EXCL.
func createExclusive(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := writeSync(tmp, data); err != nil {
		return err
	}
	err = os.Link(tmp.Name(), path)
	if err == nil || errors.Is(err, fs.ErrExist) {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if err := writeSync(f, data); err != nil {
		os.Remove(path)
		return err
	}
	return nil
}

func writeSync(f *os.File, data []byte) error {
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// DefaultSecretPath returns the default secret file: qlaunch/secret in the
// user's configuration directory (os.UserConfigDir). It is computed on each
// call.
func DefaultSecretPath() (string, error) { return defaultSecretPath(os.Getenv) }

// UserSecret, given as the secret file (--secret-file, $QLAUNCH_SECRET_FILE
// or the topology's secret_file), names the user's long-lived secret
// (DefaultSecretPath), which is otherwise never used under a scheduler.
const UserSecret = "@user"

// JobDirPrefix names the per-job directories of a folder: job-<id>.
const JobDirPrefix = "job-"

// ResolveSecretPath picks the secret file: flagValue (--secret-file) when
// set, else $QLAUNCH_SECRET_FILE, else, inside a scheduler's job
// ($SLURM_JOB_ID, else $PBS_JOBID), the job's own secret JobSecretPath,
// else the user's default file. UserSecret as flagValue or in
// $QLAUNCH_SECRET_FILE selects the user's default file explicitly. The
// environment is read through getenv (os.Getenv when nil).
//
// So every job of a scheduler has its own secret unless the user asks for
// the long-lived one: two jobs of one user started in one folder cannot
// authenticate to each other.
func ResolveSecretPath(flagValue string, getenv func(string) string) (string, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	p := flagValue
	if p == "" {
		p = getenv("QLAUNCH_SECRET_FILE")
	}
	switch {
	case p == UserSecret:
		return defaultSecretPath(getenv)
	case p != "":
		return p, nil
	}
	if jp := JobSecretPath(getenv); jp != "" {
		return jp, nil
	}
	return defaultSecretPath(getenv)
}

// JobID returns the scheduler's id of the job this process runs in:
// $SLURM_JOB_ID, else $PBS_JOBID; "" outside a job.
func JobID(getenv func(string) string) string {
	if j := getenv("SLURM_JOB_ID"); j != "" {
		return j
	}
	return getenv("PBS_JOBID")
}

// JobSecretPath returns the secret file of the scheduler's job this process
// runs in: secret in the directory job-<id> beside the address file (the
// directory of $QLAUNCH_ADDRESS_FILE, else .qlaunch, on the shared file
// system where the job was started), which EnsureSecretFile creates with
// mode 0700. It returns "" outside a job, and for a job id that cannot
// name a directory.
func JobSecretPath(getenv func(string) string) string {
	id := JobID(getenv)
	if id == "" || id == "." || id == ".." || strings.ContainsAny(id, "/\\\x00") {
		return ""
	}
	dir := ".qlaunch"
	if a := getenv("QLAUNCH_ADDRESS_FILE"); a != "" {
		dir = filepath.Dir(a)
	}
	return filepath.Join(dir, JobDirPrefix+id, "secret")
}

func defaultSecretPath(getenv func(string) string) (string, error) {
	dir, err := userConfigDir(getenv)
	if err != nil {
		return "", fmt.Errorf("wire: default secret file: %w (use --secret-file or QLAUNCH_SECRET_FILE)", err)
	}
	return filepath.Join(dir, "qlaunch", "secret"), nil
}

// userConfigDir is os.UserConfigDir reading the environment through getenv
// on the Unix systems where it depends on XDG_CONFIG_HOME and HOME.
func userConfigDir(getenv func(string) string) (string, error) {
	switch runtime.GOOS {
	case "windows", "darwin", "ios", "plan9":
		return os.UserConfigDir()
	}
	if dir := getenv("XDG_CONFIG_HOME"); dir != "" {
		if !filepath.IsAbs(dir) {
			return "", errors.New("path in $XDG_CONFIG_HOME is relative")
		}
		return dir, nil
	}
	home := getenv("HOME")
	if home == "" {
		return "", errors.New("neither $XDG_CONFIG_HOME nor $HOME are defined")
	}
	return filepath.Join(home, ".config"), nil
}
