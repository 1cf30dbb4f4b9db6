package wire

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func TestNewSecret(t *testing.T) {
	if _, err := NewSecret(make([]byte, 31)); !errors.Is(err, ErrSecretTooShort) {
		t.Errorf("NewSecret(31 bytes) = %v, want ErrSecretTooShort", err)
	}
	b := bytes.Repeat([]byte{'k'}, 32)
	s, err := NewSecret(b)
	if err != nil {
		t.Fatal(err)
	}
	b[0] = 'x' // NewSecret copied
	if u, _ := NewSecret(bytes.Repeat([]byte{'k'}, 32)); !s.Equal(u) {
		t.Error("secret changed with the caller's slice")
	}
	g1, err := GenerateSecret()
	if err != nil {
		t.Fatal(err)
	}
	g2, _ := GenerateSecret()
	if g1.Equal(g2) || g1.IsZero() || len(g1.key) != 64 {
		t.Errorf("generated secrets: equal %v, length %d", g1.Equal(g2), len(g1.key))
	}
	if !(Secret{}).IsZero() {
		t.Error("zero Secret is not IsZero")
	}
}

func TestSecretRedacted(t *testing.T) {
	key := "0123456789abcdef0123456789abcdef-the-key"
	s, err := NewSecret([]byte(key))
	if err != nil {
		t.Fatal(err)
	}
	for _, verb := range []string{"%v", "%s", "%+v", "%#v", "%x", "%X", "%q", "%d", "%10s"} {
		if got := fmt.Sprintf(verb, s); strings.TrimSpace(got) != "REDACTED" {
			t.Errorf("Sprintf(%q) = %q", verb, got)
		}
	}
	type config struct {
		Name   string
		Secret Secret
	}
	cfg := config{"job", s}
	if got := fmt.Sprintf("%+v", cfg); got != "{Name:job Secret:REDACTED}" {
		t.Errorf("%%+v of a struct = %q", got)
	}
	if got := fmt.Sprintf("%v", &cfg); got != "&{job REDACTED}" {
		t.Errorf("%%v of a pointer = %q", got)
	}
	j, err := json.Marshal(cfg)
	if err != nil || string(j) != `{"Name":"job","Secret":"REDACTED"}` {
		t.Errorf("json = %s, %v", j, err)
	}
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
		if a.Key == slog.TimeKey {
			return slog.Attr{}
		}
		return a
	}}))
	log.Info("starting", "secret", s, "config", cfg)
	if got, want := buf.String(), "level=INFO msg=starting secret=REDACTED config=\"{Name:job Secret:REDACTED}\"\n"; got != want {
		t.Errorf("slog text:\n got %q\nwant %q", got, want)
	}
	buf.Reset()
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("x", "secret", s)
	if strings.Contains(buf.String(), "the-key") || !strings.Contains(buf.String(), `"secret":"REDACTED"`) {
		t.Errorf("slog json: %s", buf.String())
	}
}

func writeFile(t *testing.T, path, content string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil { // whatever the umask
		t.Fatal(err)
	}
}

func TestLoadSecretFile(t *testing.T) {
	dir := t.TempDir()
	key := strings.Repeat("ab", 32)
	cases := []struct {
		name    string
		content string
		mode    os.FileMode
		want    error  // nil: loads key
		message string // in the error
	}{
		{"0600", key + "\n", 0o600, nil, ""},
		{"0400", key, 0o400, nil, ""},
		{"0600 with CRLF", key + "\r\n", 0o600, nil, ""},
		{"0644", key + "\n", 0o644, ErrInsecureSecretFile, "chmod 600 "},
		{"0640", key + "\n", 0o640, ErrInsecureSecretFile, "mode 0640"},
		{"0604", key + "\n", 0o604, ErrInsecureSecretFile, "chmod 600 "},
		{"0660", key + "\n", 0o660, ErrInsecureSecretFile, "chmod 600 "},
		{"short", "tooshort\n", 0o600, ErrSecretTooShort, "openssl rand -hex 32"},
		{"empty", "", 0o600, ErrSecretTooShort, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "_"))
			writeFile(t, path, tc.content, tc.mode)
			s, err := LoadSecretFile(path)
			if tc.want == nil {
				want, _ := NewSecret([]byte(key))
				if err != nil || !s.Equal(want) {
					t.Fatalf("LoadSecretFile = %v, equal %v", err, s.Equal(want))
				}
				return
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("LoadSecretFile = %v, want %v", err, tc.want)
			}
			if !strings.Contains(err.Error(), tc.message) || !strings.Contains(err.Error(), path) {
				t.Errorf("error %q does not say %q about %s", err, tc.message, path)
			}
			if strings.Contains(err.Error(), key) {
				t.Errorf("error %q shows the secret", err)
			}
		})
	}
	t.Run("missing", func(t *testing.T) {
		if _, err := LoadSecretFile(filepath.Join(dir, "none")); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("LoadSecretFile(missing) = %v", err)
		}
	})
	t.Run("directory", func(t *testing.T) {
		d := filepath.Join(dir, "adir")
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
		if _, err := LoadSecretFile(d); !errors.Is(err, ErrInsecureSecretFile) {
			t.Errorf("LoadSecretFile(directory) = %v", err)
		}
	})
	t.Run("too large", func(t *testing.T) {
		path := filepath.Join(dir, "large")
		writeFile(t, path, strings.Repeat("a", maxSecretFile+1), 0o600)
		if _, err := LoadSecretFile(path); err == nil || !strings.Contains(err.Error(), "larger than") {
			t.Errorf("LoadSecretFile(large) = %v", err)
		}
	})
	t.Run("other owner", func(t *testing.T) {
		path := filepath.Join(dir, "theirs")
		writeFile(t, path, key, 0o600)
		if err := os.Chown(path, os.Getuid()+4242, -1); err != nil {
			t.Skipf("cannot give a file away (needs root): %v", err)
		}
		_, err := LoadSecretFile(path)
		if !errors.Is(err, ErrInsecureSecretFile) || !strings.Contains(err.Error(), fmt.Sprintf("owned by uid %d", os.Getuid()+4242)) {
			t.Errorf("LoadSecretFile(owned by another) = %v", err)
		}
	})
}

func TestEnsureSecretFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cfg", "qlaunch")
	path := filepath.Join(dir, "secret")
	s, err := EnsureSecretFile(path)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode() != 0o600 {
		t.Errorf("created file mode %v, want -rw-------", fi.Mode())
	}
	if di, err := os.Stat(dir); err != nil || di.Mode().Perm() != 0o700 {
		t.Errorf("created directory: %v, %v", di.Mode(), err)
	}
	b, _ := os.ReadFile(path)
	if len(b) != 65 || b[64] != '\n' || !bytes.Equal(b[:64], s.key) {
		t.Errorf("file holds %q", b)
	}
	again, err := EnsureSecretFile(path)
	if err != nil || !again.Equal(s) {
		t.Errorf("second EnsureSecretFile: %v, same %v", err, again.Equal(s))
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("directory holds %d entries, want only the secret", len(entries))
	}
	// An insecure existing file is refused, not replaced.
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := EnsureSecretFile(path); !errors.Is(err, ErrInsecureSecretFile) {
		t.Errorf("EnsureSecretFile(0644) = %v", err)
	}
}

func TestEnsureSecretFileRace(t *testing.T) {
	path := filepath.Join(t.TempDir(), "secret")
	const n = 8
	secrets := make([]Secret, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { secrets[i], errs[i] = EnsureSecretFile(path) })
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil || !secrets[i].Equal(secrets[0]) {
			t.Errorf("racer %d: %v, same as racer 0: %v", i, errs[i], secrets[i].Equal(secrets[0]))
		}
	}
}

func TestResolveSecretPath(t *testing.T) {
	cases := []struct {
		name string
		flag string
		env  map[string]string
		want string
		err  bool
	}{
		{"flag wins", "/f/secret", map[string]string{"QLAUNCH_SECRET_FILE": "/e/secret", "HOME": "/home/u"}, "/f/secret", false},
		{"environment", "", map[string]string{"QLAUNCH_SECRET_FILE": "/e/secret", "HOME": "/home/u"}, "/e/secret", false},
		{"XDG_CONFIG_HOME", "", map[string]string{"XDG_CONFIG_HOME": "/xdg", "HOME": "/home/u"}, "/xdg/qlaunch/secret", false},
		{"HOME", "", map[string]string{"HOME": "/home/u"}, "/home/u/.config/qlaunch/secret", false},
		{"relative XDG", "", map[string]string{"XDG_CONFIG_HOME": "rel", "HOME": "/home/u"}, "", true},
		{"nothing", "", nil, "", true},
		{"SLURM job", "", map[string]string{"SLURM_JOB_ID": "42", "HOME": "/home/u"}, ".qlaunch/job-42/secret", false},
		{"PBS job", "", map[string]string{"PBS_JOBID": "7.pbs", "HOME": "/home/u"}, ".qlaunch/job-7.pbs/secret", false},
		{"job beside the address file", "", map[string]string{"SLURM_JOB_ID": "42", "QLAUNCH_ADDRESS_FILE": "/shared/run/addr"}, "/shared/run/job-42/secret", false},
		{"job, environment wins", "", map[string]string{"SLURM_JOB_ID": "42", "QLAUNCH_SECRET_FILE": "/e/secret"}, "/e/secret", false},
		{"job, the user's secret asked for", UserSecret, map[string]string{"SLURM_JOB_ID": "42", "HOME": "/home/u"}, "/home/u/.config/qlaunch/secret", false},
		{"job, the user's secret in the environment", "", map[string]string{"SLURM_JOB_ID": "42", "QLAUNCH_SECRET_FILE": UserSecret, "HOME": "/home/u"}, "/home/u/.config/qlaunch/secret", false},
		{"job id that names no directory", "", map[string]string{"SLURM_JOB_ID": "../x", "HOME": "/home/u"}, "/home/u/.config/qlaunch/secret", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ResolveSecretPath(tc.flag, func(k string) string { return tc.env[k] })
			if (err != nil) != tc.err || got != tc.want {
				t.Errorf("ResolveSecretPath = %q, %v; want %q (error %v)", got, err, tc.want, tc.err)
			}
			if err != nil && !strings.Contains(err.Error(), "--secret-file") {
				t.Errorf("error %q does not say how to choose a file", err)
			}
		})
	}
	t.Setenv("XDG_CONFIG_HOME", "/xdg-test")
	if got, err := DefaultSecretPath(); err != nil || got != "/xdg-test/qlaunch/secret" {
		t.Errorf("DefaultSecretPath = %q, %v", got, err)
	}
}

// TestJobSecretDirectory: a job's secret is created in a directory of mode
// 0700; one that others may enter is refused.
func TestJobSecretDirectory(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{"SLURM_JOB_ID": "9", "QLAUNCH_ADDRESS_FILE": filepath.Join(dir, "addr")}
	path, err := ResolveSecretPath("", func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if _, err := EnsureSecretFile(path); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Dir(path))
	if err != nil || fi.Mode().Perm() != 0o700 || filepath.Base(filepath.Dir(path)) != "job-9" {
		t.Fatalf("job directory %s: %v %v, want mode 0700", filepath.Dir(path), fi.Mode(), err)
	}
	wide := filepath.Join(dir, "job-10")
	if err := os.Mkdir(wide, 0o755); err != nil {
		t.Fatal(err)
	}
	os.Chmod(wide, 0o755)
	if _, err := EnsureSecretFile(filepath.Join(wide, "secret")); !errors.Is(err, ErrInsecureSecretFile) || !strings.Contains(err.Error(), "chmod 700") {
		t.Fatalf("secret in a job directory of mode 0755: %v, want ErrInsecureSecretFile saying how to fix it", err)
	}
}
