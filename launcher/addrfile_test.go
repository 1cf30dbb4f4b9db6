package launcher_test

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/qlaunch/qlaunch/kernels"
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

func TestAddressRecordText(t *testing.T) {
	full := launcher.AddressRecord{Addr: "10.0.0.1:7472", PID: 1234, Host: "n1", Job: "42", SecretFile: "/home/u/.qlaunch/job 42 secret"}
	b, err := full.MarshalText()
	if err != nil {
		t.Fatal(err)
	}
	if want := "10.0.0.1:7472\npid=1234\nhost=n1\njob=42\nsecret=/home/u/.qlaunch/job 42 secret\n"; string(b) != want {
		t.Fatalf("MarshalText = %q, want %q", b, want)
	}
	for _, c := range []struct {
		text string
		want launcher.AddressRecord
	}{
		{string(b), full},
		{"127.0.0.1:7472\n", launcher.AddressRecord{Addr: "127.0.0.1:7472"}}, // the first format
		{"127.0.0.1:7472", launcher.AddressRecord{Addr: "127.0.0.1:7472"}},
		{"h:1\r\npid=7\r\nfuture=x\r\n\r\n", launcher.AddressRecord{Addr: "h:1", PID: 7}}, // unknown keys skipped
	} {
		got, err := launcher.ParseAddressRecord([]byte(c.text))
		if err != nil || got != c.want {
			t.Errorf("ParseAddressRecord(%q) = %+v, %v; want %+v", c.text, got, err, c.want)
		}
	}
	for _, bad := range []string{"", "\n\n", "pid=3\n", "h:1\npid=x\n", "h:1\npid=-1\n", "h:1\njunk\n", "a b:1\n"} {
		if r, err := launcher.ParseAddressRecord([]byte(bad)); err == nil {
			t.Errorf("ParseAddressRecord(%q) = %+v, want an error", bad, r)
		}
	}
	for _, bad := range []launcher.AddressRecord{{}, {Addr: "a\nb"}, {Addr: "h:1", Host: "x\ny"}} {
		if _, err := bad.MarshalText(); err == nil {
			t.Errorf("MarshalText(%+v) succeeded, want an error", bad)
		}
	}
}

// TestAddressRecordGone checks Gone against real processes: this one is
// alive, one that exited is gone, and neither another host's nor a
// record without a pid is known gone.
func TestAddressRecordGone(t *testing.T) {
	host, _ := os.Hostname()
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	dead := cmd.Process.Pid
	for _, c := range []struct {
		r    launcher.AddressRecord
		gone bool
	}{
		{launcher.AddressRecord{Addr: "h:1", PID: os.Getpid(), Host: host}, false},
		{launcher.AddressRecord{Addr: "h:1", PID: dead, Host: host}, true},
		{launcher.AddressRecord{Addr: "h:1", PID: dead, Host: host + "-other"}, false},
		{launcher.AddressRecord{Addr: "h:1", Host: host}, false},
	} {
		if got := c.r.Gone(host); got != c.gone {
			t.Errorf("%+v.Gone(%q) = %v, want %v", c.r, host, got, c.gone)
		}
	}
	if got := (launcher.AddressRecord{Addr: "h:1", PID: 12, Host: "n1", Job: "42"}).Owner(); got != "job 42, pid 12 on n1" {
		t.Errorf("Owner() = %q", got)
	}
}

// TestServerOwnsItsAddressFile starts a runtime in process: once ready its
// address file records this process, the host, the job and the secret's
// file; a clean stop removes it, unless another server replaced it.
func TestServerOwnsItsAddressFile(t *testing.T) {
	reg, err := kernels.NewRegistry(kernels.Builtin()...)
	if err != nil {
		t.Fatal(err)
	}
	host, _ := os.Hostname()
	for _, replaced := range []bool{false, true} {
		addrFile := filepath.Join(t.TempDir(), "addr")
		a, err := launcher.StartAttached(t.Context(), launcher.AttachedConfig{
			NodeConfig: launcher.NodeConfig{Host: "here", Registry: reg}, InProcess: true, AddressFile: addrFile, Job: "42",
			Workers: []launcher.WorkerSpec{{Rank: 1, Slots: 1}},
		})
		if err != nil {
			t.Fatal(err)
		}
		got, err := launcher.ReadAddressRecord(addrFile)
		want := launcher.AddressRecord{Addr: a.Addr, PID: os.Getpid(), Host: host, Job: "42", SecretFile: a.SecretFile}
		if err != nil || got != want {
			t.Fatalf("address file: %+v, %v; want %+v", got, err, want)
		}
		other := launcher.AddressRecord{Addr: "127.0.0.1:1", PID: os.Getpid() + 1, Host: host}
		if replaced {
			if err := launcher.WriteAddressRecord(addrFile, other); err != nil {
				t.Fatal(err)
			}
		}
		if err := a.Close(); err != nil {
			t.Fatal(err)
		}
		got, err = launcher.ReadAddressRecord(addrFile)
		switch {
		case !replaced && !errors.Is(err, os.ErrNotExist):
			t.Errorf("after a clean stop the address file is still there: %+v, %v", got, err)
		case replaced && (err != nil || got != other):
			t.Errorf("another server's address file was touched: %+v, %v; want %+v", got, err, other)
		}
	}
}

func FuzzParseAddressRecord(f *testing.F) {
	for _, s := range []string{"127.0.0.1:7472\n", "h:1\npid=12\nhost=n1\njob=42\nsecret=/s\n", "h:1\r\npid=x", "", "=\n=", "h:1\nsecret=\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := launcher.ParseAddressRecord(b)
		if err != nil {
			return
		}
		text, err := r.MarshalText()
		if err != nil {
			t.Fatalf("parsed %q to %+v, which does not marshal: %v", b, r, err)
		}
		back, err := launcher.ParseAddressRecord(text)
		if err != nil || back != r {
			t.Fatalf("round trip of %+v: %+v, %v", r, back, err)
		}
	})
}
