// Package netpick chooses the network address a rank listens on and the
// address it dials to reach another node, from a network spec:
//
//	auto          the address the node name resolves to when it is local,
//	              else the first non-loopback interface that is up, else
//	              loopback
//	ib0, lo       an interface name: its address (the node name's address
//	              when that is on the interface)
//	10.1.0.0/16   a CIDR: the local address in it (the node name's first)
//	127.0.0.11    one address, which must be local
//
// Local picks this node's address; Remote picks, among the addresses a
// remote node name resolves to, the one in the same network (for an
// interface name: in a prefix of this node's interface of that name). A
// remote node is thus reached on the network of the spec only when its
// name resolves to an address there, as on clusters whose hosts file lists
// the fast network; an MPI bootstrap exchanges the actual addresses and
// needs no such names.
//
// An address is local when it is assigned to an interface that is up, or
// lies in the prefix of an up loopback interface (on Linux every 127.x
// address is local through lo's 127.0.0.0/8).
package netpick

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
)

// ErrNoAddress is wrapped by every failure to find an address for a spec.
var ErrNoAddress = errors.New("no address")

// AddressError is a network spec with no address: none of this node's, or
// none of a remote node's in the network.
type AddressError struct {
	Spec   string // the network
	Reason string
}

func (e *AddressError) Error() string { return "network " + e.Spec + ": no address: " + e.Reason }

// Unwrap returns ErrNoAddress.
func (e *AddressError) Unwrap() error { return ErrNoAddress }

func noAddress(spec Spec, format string, a ...any) error {
	return &AddressError{Spec: spec.String(), Reason: fmt.Sprintf(format, a...)}
}

// Auto is the spec of the default network.
const Auto = "auto"

// kind is what a spec names.
type kind int

const (
	kindAuto kind = iota
	kindInterface
	kindPrefix
	kindAddr
)

// Spec is a parsed network spec. The zero value is auto.
type Spec struct {
	kind   kind
	name   string       // interface name
	prefix netip.Prefix // CIDR, or the single address as a full-length prefix
}

// maxInterfaceName is the longest Linux interface name (IFNAMSIZ − 1).
const maxInterfaceName = 15

// Parse parses a network spec: "" or "auto", a CIDR, an IP address or an
// interface name.
func Parse(s string) (Spec, error) {
	switch {
	case s == "" || s == Auto:
		return Spec{}, nil
	case strings.Contains(s, "/"):
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return Spec{}, fmt.Errorf("network %q: not a CIDR: %w", s, err)
		}
		return Spec{kind: kindPrefix, prefix: p.Masked()}, nil
	}
	if a, err := netip.ParseAddr(s); err == nil {
		if a.Zone() != "" {
			return Spec{}, fmt.Errorf("network %q: an address with a zone is not supported", s)
		}
		return Spec{kind: kindAddr, prefix: netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen())}, nil
	}
	if err := checkInterfaceName(s); err != nil {
		return Spec{}, fmt.Errorf("network %q: %w", s, err)
	}
	return Spec{kind: kindInterface, name: s}, nil
}

func checkInterfaceName(s string) error {
	if len(s) > maxInterfaceName {
		return fmt.Errorf("an interface name has at most %d characters", maxInterfaceName)
	}
	for _, c := range s {
		if c <= ' ' || c == ':' || c > '~' {
			return fmt.Errorf("not auto, a CIDR, an address or an interface name (character %q)", c)
		}
	}
	return nil
}

// String returns the spec as Parse accepts it.
func (s Spec) String() string {
	switch s.kind {
	case kindInterface:
		return s.name
	case kindPrefix:
		return s.prefix.String()
	case kindAddr:
		return s.prefix.Addr().String()
	}
	return Auto
}

// IsAuto reports whether s is auto.
func (s Spec) IsAuto() bool { return s.kind == kindAuto }

// Interface is a network interface and its addresses.
type Interface struct {
	Name     string
	Up       bool
	Loopback bool
	Addrs    []netip.Prefix // address with the length of its network
}

// Interfaces lists this machine's interfaces.
func Interfaces() ([]Interface, error) {
	ifs, err := net.Interfaces()
	if err != nil {
		return nil, fmt.Errorf("list interfaces: %w", err)
	}
	out := make([]Interface, 0, len(ifs))
	for _, ifc := range ifs {
		addrs, err := ifc.Addrs()
		if err != nil {
			return nil, fmt.Errorf("interface %s: %w", ifc.Name, err)
		}
		i := Interface{Name: ifc.Name, Up: ifc.Flags&net.FlagUp != 0, Loopback: ifc.Flags&net.FlagLoopback != 0}
		for _, a := range addrs {
			ipn, ok := a.(*net.IPNet)
			if !ok {
				continue
			}
			ip, ok := netip.AddrFromSlice(ipn.IP)
			if !ok {
				continue
			}
			ones, _ := ipn.Mask.Size()
			ip = ip.Unmap()
			if ip.Is4() && ones > 32 {
				ones -= 96
			}
			i.Addrs = append(i.Addrs, netip.PrefixFrom(ip, ones))
		}
		out = append(out, i)
	}
	return out, nil
}

// Picker picks addresses; its zero value uses this machine's interfaces
// and the system resolver.
type Picker struct {
	// Interfaces lists the interfaces; nil means Interfaces.
	Interfaces func() ([]Interface, error)
	// LookupHost resolves a node name to its addresses; nil means
	// net.DefaultResolver.LookupHost.
	LookupHost func(ctx context.Context, host string) ([]string, error)
}

func (p Picker) interfaces() ([]Interface, error) {
	if p.Interfaces != nil {
		return p.Interfaces()
	}
	return Interfaces()
}

// lookup returns host's addresses, IPv4 first, in resolver order.
func (p Picker) lookup(ctx context.Context, host string) ([]netip.Addr, error) {
	if a, err := netip.ParseAddr(host); err == nil {
		return []netip.Addr{a.Unmap()}, nil
	}
	look := p.LookupHost
	if look == nil {
		look = net.DefaultResolver.LookupHost
	}
	names, err := look(ctx, host)
	if err != nil {
		return nil, err
	}
	var out []netip.Addr
	for _, n := range names {
		if a, err := netip.ParseAddr(n); err == nil {
			out = append(out, a.Unmap())
		}
	}
	slices.SortStableFunc(out, func(a, b netip.Addr) int {
		switch {
		case a.Is4() == b.Is4():
			return 0
		case a.Is4():
			return -1
		}
		return 1
	})
	return out, nil
}

// Local returns the address of this node, named host, on the network of
// spec. The node name is resolved first: its first local address on the
// network wins, so that several nodes sharing one machine (each with its
// own loopback alias) keep apart.
func (p Picker) Local(ctx context.Context, spec Spec, host string) (netip.Addr, error) {
	ifs, err := p.interfaces()
	if err != nil {
		return netip.Addr{}, err
	}
	ifs = slices.DeleteFunc(slices.Clone(ifs), func(i Interface) bool { return !i.Up })
	if spec.kind == kindInterface {
		i := slices.IndexFunc(ifs, func(i Interface) bool { return i.Name == spec.name })
		if i < 0 {
			return netip.Addr{}, noAddress(spec, "no interface %s that is up (up: %s)", spec.name, names(ifs))
		}
		ifs = ifs[i : i+1]
	}
	inNet := func(a netip.Addr) bool {
		switch spec.kind {
		case kindPrefix, kindAddr:
			return spec.prefix.Contains(a)
		}
		return true
	}
	var resolved []netip.Addr
	if host != "" {
		resolved, _ = p.lookup(ctx, host) // a node name that does not resolve falls through to the interfaces
		for _, a := range resolved {
			if inNet(a) && isLocal(a, ifs) {
				return a, nil
			}
		}
	}
	switch spec.kind {
	case kindAddr:
		if a := spec.prefix.Addr(); isLocal(a, ifs) {
			return a, nil
		}
		return netip.Addr{}, noAddress(spec, "the address is not local")
	case kindInterface:
		if a, ok := firstAddr(ifs[0], inNet); ok {
			return a, nil
		}
		return netip.Addr{}, noAddress(spec, "the interface has no usable address")
	case kindPrefix:
		for _, i := range ifs {
			if a, ok := firstAddr(i, inNet); ok {
				return a, nil
			}
		}
		// A loopback interface makes its whole prefix local.
		for _, i := range ifs {
			for _, pre := range i.Addrs {
				if a := spec.prefix.Addr(); i.Loopback && pre.Contains(a) && pre.Bits() <= spec.prefix.Bits() {
					return a, nil
				}
			}
		}
		return netip.Addr{}, noAddress(spec, "no interface has an address in it (up: %s)", describe(ifs))
	}
	for _, loopback := range []bool{false, true} {
		for _, i := range ifs {
			if i.Loopback != loopback {
				continue
			}
			if a, ok := firstAddr(i, inNet); ok && a.IsLoopback() == loopback {
				return a, nil
			}
		}
	}
	return netip.Addr{}, noAddress(spec, "no interface is up")
}

// Remote returns the address to dial to reach node host on the network of
// spec: the first address host resolves to (IPv4 first) that lies in the
// network; for an interface name, in a prefix of this node's interface of
// that name.
func (p Picker) Remote(ctx context.Context, spec Spec, host string) (netip.Addr, error) {
	addrs, err := p.lookup(ctx, host)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("resolve node %s: %w", host, err)
	}
	if len(addrs) == 0 {
		return netip.Addr{}, noAddress(spec, "node %s resolves to no address", host)
	}
	var prefixes []netip.Prefix
	switch spec.kind {
	case kindAuto, kindAddr:
		// An address names one node; the others are reached by name.
		return addrs[0], nil
	case kindPrefix:
		prefixes = []netip.Prefix{spec.prefix}
	case kindInterface:
		ifs, err := p.interfaces()
		if err != nil {
			return netip.Addr{}, err
		}
		i := slices.IndexFunc(ifs, func(i Interface) bool { return i.Name == spec.name })
		if i < 0 {
			return netip.Addr{}, noAddress(spec, "no interface %s here to tell its network", spec.name)
		}
		for _, pre := range ifs[i].Addrs {
			if !pre.Addr().IsLinkLocalUnicast() {
				prefixes = append(prefixes, pre.Masked())
			}
		}
	}
	for _, a := range addrs {
		for _, pre := range prefixes {
			if pre.Contains(a) {
				return a, nil
			}
		}
	}
	return netip.Addr{}, noAddress(spec, "node %s resolves to %s, none in %s", host, joinAddrs(addrs), joinPrefixes(prefixes))
}

// isLocal reports whether a is assigned to one of ifs or lies in the
// prefix of a loopback one.
func isLocal(a netip.Addr, ifs []Interface) bool {
	for _, i := range ifs {
		for _, pre := range i.Addrs {
			if pre.Addr() == a || i.Loopback && pre.Contains(a) {
				return true
			}
		}
	}
	return false
}

// firstAddr returns the interface's first IPv4 address accepted by ok,
// else its first such IPv6 address that is not link-local (a link-local
// one needs a zone, which a plan cannot carry).
func firstAddr(i Interface, ok func(netip.Addr) bool) (netip.Addr, bool) {
	for _, v4 := range []bool{true, false} {
		for _, pre := range i.Addrs {
			a := pre.Addr()
			if a.Is4() == v4 && !a.IsLinkLocalUnicast() && ok(a) {
				return a, true
			}
		}
	}
	return netip.Addr{}, false
}

func names(ifs []Interface) string {
	var s []string
	for _, i := range ifs {
		s = append(s, i.Name)
	}
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}

func describe(ifs []Interface) string {
	var s []string
	for _, i := range ifs {
		s = append(s, i.Name+" "+joinPrefixes(i.Addrs))
	}
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}

func joinAddrs(as []netip.Addr) string {
	s := make([]string, len(as))
	for i, a := range as {
		s[i] = a.String()
	}
	return strings.Join(s, " ")
}

func joinPrefixes(ps []netip.Prefix) string {
	if len(ps) == 0 {
		return "-"
	}
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return strings.Join(s, " ")
}
