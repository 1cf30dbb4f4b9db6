package netpick

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"testing"

	"golang.org/x/sys/unix"
)

func TestParse(t *testing.T) {
	for _, c := range []struct {
		in, want string
		auto     bool
		err      string
	}{
		{in: "", want: "auto", auto: true},
		{in: "auto", want: "auto", auto: true},
		{in: "ib0", want: "ib0"},
		{in: "hsn0", want: "hsn0"},
		{in: "10.1.2.3/16", want: "10.1.0.0/16"},
		{in: "127.0.0.0/8", want: "127.0.0.0/8"},
		{in: "fd00::/64", want: "fd00::/64"},
		{in: "127.0.0.11", want: "127.0.0.11"},
		{in: "10.1.0.0/33", err: `network "10.1.0.0/33": not a CIDR: netip.ParsePrefix("10.1.0.0/33"): prefix length out of range`},
		{in: "a b", err: `network "a b": not auto, a CIDR, an address or an interface name (character ' ')`},
		{in: "eth0:1", err: `network "eth0:1": not auto, a CIDR, an address or an interface name (character ':')`},
		{in: "averylonginterface", err: `network "averylonginterface": an interface name has at most 15 characters`},
		{in: "fe80::1%eth0", err: `network "fe80::1%eth0": an address with a zone is not supported`},
	} {
		t.Run(c.in, func(t *testing.T) {
			s, err := Parse(c.in)
			if c.err != "" {
				if err == nil || err.Error() != c.err {
					t.Fatalf("Parse(%q) = %v, %v; want error %q", c.in, s, err, c.err)
				}
				return
			}
			if err != nil || s.String() != c.want || s.IsAuto() != c.auto {
				t.Fatalf("Parse(%q) = %q (auto %v), %v; want %q (auto %v)", c.in, s, s.IsAuto(), err, c.want, c.auto)
			}
		})
	}
}

func pfx(s string) netip.Prefix { return netip.MustParsePrefix(s) }

// fakeHost is a node with loopback, an Ethernet, a fast network and a
// downed interface, whose names resolve through a table.
func fakeHost(ifs []Interface, hosts map[string][]string) Picker {
	return Picker{
		Interfaces: func() ([]Interface, error) { return ifs, nil },
		LookupHost: func(_ context.Context, h string) ([]string, error) {
			if a, ok := hosts[h]; ok {
				return a, nil
			}
			return nil, &net.DNSError{Err: "no such host", Name: h, IsNotFound: true}
		},
	}
}

var (
	ifLo   = Interface{Name: "lo", Up: true, Loopback: true, Addrs: []netip.Prefix{pfx("127.0.0.1/8"), pfx("::1/128")}}
	ifEth0 = Interface{Name: "eth0", Up: true, Addrs: []netip.Prefix{pfx("fe80::1/64"), pfx("192.0.2.2/24")}}
	ifIB0  = Interface{Name: "ib0", Up: true, Addrs: []netip.Prefix{pfx("10.1.2.3/16")}}
	ifEth1 = Interface{Name: "eth1", Addrs: []netip.Prefix{pfx("10.9.0.1/16")}}
	ifV6   = Interface{Name: "v6", Up: true, Addrs: []netip.Prefix{pfx("fe80::2/64"), pfx("fd00::2/64")}}
	hosts  = map[string][]string{
		"n1":      {"192.0.2.2"},
		"n1-both": {"fd00::9", "192.0.2.2", "10.1.2.3"},
		"alias":   {"127.0.0.11"},
		"n2":      {"192.0.2.3", "10.1.2.4"},
		"n2-v6":   {"fd00::3"},
		"n3":      {"192.0.2.4"},
	}
)

func TestLocal(t *testing.T) {
	all := []Interface{ifLo, ifEth0, ifIB0, ifEth1}
	for _, c := range []struct {
		name, spec, host string
		ifs              []Interface
		want, err        string
	}{
		{name: "auto: the node name", spec: "auto", host: "n1", ifs: all, want: "192.0.2.2"},
		{name: "auto: a loopback alias", spec: "auto", host: "alias", ifs: all, want: "127.0.0.11"},
		{name: "auto: name not local", spec: "auto", host: "n2", ifs: all, want: "192.0.2.2"},
		{name: "auto: name unresolved", spec: "auto", host: "nowhere", ifs: []Interface{ifLo, ifIB0}, want: "10.1.2.3"},
		{name: "auto: only loopback", spec: "auto", host: "nowhere", ifs: []Interface{ifLo, ifEth1}, want: "127.0.0.1"},
		{name: "auto: IPv6 only", spec: "auto", host: "", ifs: []Interface{ifLo, ifV6}, want: "fd00::2"},
		{name: "interface", spec: "ib0", host: "n1", ifs: all, want: "10.1.2.3"},
		{name: "interface: the name's address on it", spec: "eth0", host: "n1-both", ifs: all, want: "192.0.2.2"},
		{name: "interface lo with an alias", spec: "lo", host: "alias", ifs: all, want: "127.0.0.11"},
		{name: "interface lo", spec: "lo", host: "n1", ifs: all, want: "127.0.0.1"},
		{name: "CIDR", spec: "10.1.0.0/16", host: "n1", ifs: all, want: "10.1.2.3"},
		{name: "CIDR: the name's address", spec: "127.0.0.0/8", host: "alias", ifs: all, want: "127.0.0.11"},
		{name: "CIDR inside loopback", spec: "127.0.0.16/28", host: "", ifs: all, want: "127.0.0.16"},
		{name: "address", spec: "127.0.0.12", host: "n1", ifs: all, want: "127.0.0.12"},
		{name: "address on an interface", spec: "10.1.2.3", host: "", ifs: all, want: "10.1.2.3"},
		{name: "interface down", spec: "eth1", host: "n1", ifs: all,
			err: "network eth1: no address: no interface eth1 that is up (up: lo, eth0, ib0)"},
		{name: "no such interface", spec: "hsn0", host: "n1", ifs: all,
			err: "network hsn0: no address: no interface hsn0 that is up (up: lo, eth0, ib0)"},
		{name: "CIDR with no address", spec: "172.16.0.0/12", host: "n1", ifs: []Interface{ifLo, ifEth0},
			err: "network 172.16.0.0/12: no address: no interface has an address in it (up: lo 127.0.0.1/8 ::1/128, eth0 fe80::1/64 192.0.2.2/24)"},
		{name: "address not local", spec: "10.9.0.1", host: "n1", ifs: all, err: "network 10.9.0.1: no address: the address is not local"},
		{name: "nothing up", spec: "auto", host: "n1", ifs: []Interface{ifEth1}, err: "network auto: no address: no interface is up"},
	} {
		t.Run(c.name, func(t *testing.T) {
			spec, err := Parse(c.spec)
			if err != nil {
				t.Fatal(err)
			}
			got, err := fakeHost(c.ifs, hosts).Local(t.Context(), spec, c.host)
			if c.err != "" {
				if err == nil || err.Error() != c.err || !errors.Is(err, ErrNoAddress) {
					t.Fatalf("Local(%s, %s) = %v, %v; want error %q wrapping ErrNoAddress", c.spec, c.host, got, err, c.err)
				}
				return
			}
			if err != nil || got.String() != c.want {
				t.Fatalf("Local(%s, %s) = %v, %v; want %s", c.spec, c.host, got, err, c.want)
			}
		})
	}
}

func TestRemote(t *testing.T) {
	all := []Interface{ifLo, ifEth0, ifIB0, ifV6}
	for _, c := range []struct {
		name, spec, host string
		want, err        string
	}{
		{name: "auto: IPv4 first", spec: "auto", host: "n1-both", want: "192.0.2.2"},
		{name: "auto: IPv6", spec: "auto", host: "n2-v6", want: "fd00::3"},
		{name: "literal", spec: "ib0", host: "10.1.9.9", want: "10.1.9.9"},
		{name: "CIDR", spec: "10.1.0.0/16", host: "n2", want: "10.1.2.4"},
		{name: "interface prefix", spec: "ib0", host: "n2", want: "10.1.2.4"},
		{name: "interface prefix, IPv6", spec: "v6", host: "n2-v6", want: "fd00::3"},
		{name: "address spec: by name", spec: "10.1.2.3", host: "n2", want: "192.0.2.3"},
		{name: "not in the CIDR", spec: "10.1.0.0/16", host: "n3",
			err: "network 10.1.0.0/16: no address: node n3 resolves to 192.0.2.4, none in 10.1.0.0/16"},
		{name: "not on the interface's network", spec: "ib0", host: "n3",
			err: "network ib0: no address: node n3 resolves to 192.0.2.4, none in 10.1.0.0/16"},
		{name: "no interface here", spec: "hsn0", host: "n3",
			err: "network hsn0: no address: no interface hsn0 here to tell its network"},
		{name: "does not resolve", spec: "auto", host: "nowhere", err: "resolve node nowhere: lookup nowhere: no such host"},
	} {
		t.Run(c.name, func(t *testing.T) {
			spec, err := Parse(c.spec)
			if err != nil {
				t.Fatal(err)
			}
			got, err := fakeHost(all, hosts).Remote(t.Context(), spec, c.host)
			if c.err != "" {
				if err == nil || err.Error() != c.err {
					t.Fatalf("Remote(%s, %s) = %v, %v; want error %q", c.spec, c.host, got, err, c.err)
				}
				return
			}
			if err != nil || got.String() != c.want {
				t.Fatalf("Remote(%s, %s) = %v, %v; want %s", c.spec, c.host, got, err, c.want)
			}
		})
	}
}

// TestLoopbackAliases picks addresses on this machine's real loopback
// interface and listens on them: every 127.x address is local on Linux.
func TestLoopbackAliases(t *testing.T) {
	ifs, err := Interfaces()
	if err != nil {
		t.Fatal(err)
	}
	lo := ""
	for _, i := range ifs {
		if i.Up && i.Loopback && len(i.Addrs) > 0 && i.Addrs[0] == pfx("127.0.0.1/8") {
			lo = i.Name
		}
	}
	if runtime.GOOS != "linux" || lo == "" {
		t.Skipf("needs Linux with a loopback interface holding 127.0.0.1/8 (have %v)", ifs)
	}
	var p Picker
	for _, c := range []struct{ spec, host, want string }{
		{lo, "", "127.0.0.1"},
		{lo, "127.0.0.23", "127.0.0.23"},
		{"127.0.0.0/8", "127.0.0.24", "127.0.0.24"},
		{"127.0.0.0/8", "", "127.0.0.1"},
		{"127.0.0.32/28", "", "127.0.0.32"},
		{"127.0.0.25", "", "127.0.0.25"},
	} {
		spec, err := Parse(c.spec)
		if err != nil {
			t.Fatal(err)
		}
		a, err := p.Local(t.Context(), spec, c.host)
		if err != nil || a.String() != c.want {
			t.Fatalf("Local(%s, %q) = %v, %v; want %s", c.spec, c.host, a, err, c.want)
		}
		ln, err := net.Listen("tcp", netip.AddrPortFrom(a, 0).String())
		if err != nil {
			t.Fatalf("listen on the picked %s: %v", a, err)
		}
		ln.Close()
	}
}

// TestNetworkNamespace builds a veth pair to a network namespace of its
// own, picks the address of this side by interface name and by CIDR, and
// dials a listener opened inside the namespace at the address Remote picks.
func TestNetworkNamespace(t *testing.T) {
	ipCmd, err := exec.LookPath("ip")
	switch {
	case os.Geteuid() != 0:
		t.Skip("needs root to create a network namespace")
	case err != nil && os.Getenv("CI") == "true":
		t.Fatalf("CI runs as root: the ip command (Debian package iproute2) must be installed: %v", err)
	case err != nil:
		t.Skipf("needs the ip command (iproute2): %v", err)
	}
	id := os.Getpid() % 100000
	ns := fmt.Sprintf("qlnp-%d", id)
	here, there := fmt.Sprintf("qlnp%da", id), fmt.Sprintf("qlnp%db", id)
	net3 := fmt.Sprintf("10.%d.%d", 200+id%50, id%250)
	ip := func(args ...string) {
		t.Helper()
		if out, err := exec.Command(ipCmd, args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %v: %v\n%s", args, err, out)
		}
	}
	ip("netns", "add", ns)
	t.Cleanup(func() { _ = exec.Command(ipCmd, "netns", "delete", ns).Run() })
	ip("link", "add", here, "type", "veth", "peer", "name", there)
	t.Cleanup(func() { _ = exec.Command(ipCmd, "link", "delete", here).Run() })
	ip("link", "set", there, "netns", ns)
	ip("addr", "add", net3+".1/24", "dev", here)
	ip("link", "set", here, "up")
	ip("-n", ns, "addr", "add", net3+".2/24", "dev", there)
	ip("-n", ns, "link", "set", there, "up")
	ip("-n", ns, "link", "set", "lo", "up")

	p := Picker{LookupHost: func(_ context.Context, h string) ([]string, error) {
		if h == "peer" {
			return []string{"192.0.2.250", net3 + ".2"}, nil
		}
		return nil, &net.DNSError{Err: "no such host", Name: h, IsNotFound: true}
	}}
	for _, s := range []string{here, net3 + ".0/24"} {
		spec, err := Parse(s)
		if err != nil {
			t.Fatal(err)
		}
		a, err := p.Local(t.Context(), spec, "")
		if err != nil || a.String() != net3+".1" {
			t.Fatalf("Local(%s) = %v, %v; want %s.1", s, a, err, net3)
		}
		r, err := p.Remote(t.Context(), spec, "peer")
		if err != nil || r.String() != net3+".2" {
			t.Fatalf("Remote(%s, peer) = %v, %v; want %s.2", s, r, err, net3)
		}
	}

	ln := listenInNamespace(t, ns, net3+".2:0")
	defer ln.Close()
	accepted := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			c.Close()
		}
		accepted <- err
	}()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(net3 + ".1")}}
	c, err := d.DialContext(t.Context(), "tcp", ln.Addr().String())
	if err != nil {
		t.Fatalf("dial %s through %s: %v", ln.Addr(), here, err)
	}
	c.Close()
	if err := <-accepted; err != nil {
		t.Fatalf("accept in the namespace: %v", err)
	}
}

// listenInNamespace opens a TCP listener inside network namespace ns: a
// socket belongs to the namespace of the thread that creates it.
func listenInNamespace(t *testing.T, ns, addr string) net.Listener {
	t.Helper()
	type result struct {
		ln  net.Listener
		err error
	}
	done := make(chan result, 1)
	go func() {
		runtime.LockOSThread() // never unlocked when the switch back fails: the thread then dies with the goroutine
		orig, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			done <- result{err: err}
			return
		}
		defer orig.Close()
		target, err := os.Open("/var/run/netns/" + ns)
		if err != nil {
			done <- result{err: err}
			return
		}
		defer target.Close()
		if err := setns(target); err != nil {
			done <- result{err: fmt.Errorf("setns %s: %w", ns, err)}
			return
		}
		ln, lerr := net.Listen("tcp", addr)
		if err := setns(orig); err != nil {
			if ln != nil {
				ln.Close()
			}
			done <- result{err: fmt.Errorf("setns back: %w", err)}
			return
		}
		runtime.UnlockOSThread()
		done <- result{ln, lerr}
	}()
	r := <-done
	if r.err != nil {
		t.Fatalf("listen in namespace %s on %s: %v", ns, addr, r.err)
	}
	return r.ln
}

func setns(f *os.File) error { return unix.Setns(int(f.Fd()), unix.CLONE_NEWNET) }

// FuzzParse: a spec Parse accepts prints as a spec that parses to itself.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"", "auto", "ib0", "10.1.2.3/16", "fd00::/64", "127.0.0.11", "::ffff:10.0.0.1", "a b", "eth0:1", "1.2.3.4/40"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		spec, err := Parse(s)
		if err != nil {
			return
		}
		again, err := Parse(spec.String())
		if err != nil || again != spec {
			t.Fatalf("Parse(%q) = %v; Parse(%q) = %v, %v", s, spec, spec.String(), again, err)
		}
	})
}
