package boot

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/qlaunch/qlaunch/kernels"
	"github.com/qlaunch/qlaunch/launcher"
	"github.com/qlaunch/qlaunch/launcher/netpick"
	"github.com/qlaunch/qlaunch/launcher/wire"
	"github.com/qlaunch/qlaunch/rank"
	"github.com/qlaunch/qlaunch/topology"
)

func TestEntry(t *testing.T) {
	top, err := topology.Parse("t.toml", []byte("[workers]\nranks_per_node = 1\n"))
	if err != nil {
		t.Fatal(err)
	}
	// srun -N3 -n6 -m cyclic: launcher rank 3 is n1's second task, plan rank 1.
	info := rank.Info{Launcher: rank.SLURM, Rank: 3, Size: 6, LocalRank: 1, LocalSize: 2, Node: "n1",
		NodeList: []string{"n1", "n2", "n3"}, TasksPerNode: []int{2, 2, 2}}
	e, err := Entry(top.WithCPUsPerNode(2), info)
	if err != nil {
		t.Fatal(err)
	}
	if e.Rank != 1 || e.Host != "n1" || !e.Roles.Has(topology.RoleWorker) || e.Parent != 0 {
		t.Fatalf("entry %+v, want worker rank 1 on n1 under rank 0", e)
	}
	info.TasksPerNode = nil
	if _, err := Entry(top, info); !errors.Is(err, rank.ErrLayout) {
		t.Fatalf("Entry without layout = %v, want ErrLayout", err)
	}
}

// TestParentUnreachable: a worker rank whose manager never comes up fails
// after the dial timeout with an error naming the parent.
func TestParentUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close() // nothing listens there now
	top, err := topology.Parse("t.toml", []byte("[runtime]\nport = "+strconv.Itoa(port)+"\n"))
	if err != nil {
		t.Fatal(err)
	}
	secret, err := wire.NewSecret([]byte(strings.Repeat("s", 32)))
	if err != nil {
		t.Fatal(err)
	}
	reg, err := kernels.NewRegistry(kernels.Builtin()...)
	if err != nil {
		t.Fatal(err)
	}
	var env []string
	var logs strings.Builder
	err = Run(context.Background(), Config{
		Node: launcher.NodeConfig{
			Logger:   slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{ReplaceAttr: dropTime})),
			Registry: reg,
			Link:     launcher.LinkConfig{Secret: secret, DialTimeout: 200 * time.Millisecond},
		},
		Topology: top.WithCPUsPerNode(1),
		Info: rank.Info{Launcher: rank.SLURM, Rank: 1, Size: 2, LocalRank: 1, LocalSize: 2, Node: "n1",
			NodeList: []string{"n1"}, TasksPerNode: []int{2}},
		Resolve: func(string) (string, error) { return "127.0.0.1", nil },
		Pin:     func([]int) error { return nil },
		Setenv:  func(k, v string) error { env = append(env, k+"="+v); return nil },
	})
	var pe *ParentError
	if !errors.As(err, &pe) {
		t.Fatalf("Run = %v, want a *ParentError", err)
	}
	if se := (*StartError)(nil); errors.As(err, &se) {
		t.Fatalf("Run = %v: a rank that took its role and then lost its parent is not a start failure", err)
	}
	want := "rank 1 (worker on n1): parent rank 0 on n1 unreachable at 127.0.0.1:" + strconv.Itoa(port) + " for 200ms"
	if !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("error %q\nwant prefix %q", err, want)
	}
	wantLog := "level=INFO msg=starting rank=1 host=n1 role=worker parent=0 parent_addr=127.0.0.1:" + strconv.Itoa(port) +
		" cpus=\"\" listen=\"\" network=auto\n"
	var starting []string
	for l := range strings.Lines(logs.String()) {
		if strings.Contains(l, "msg=starting") {
			starting = append(starting, l)
		}
	}
	if got := strings.Join(starting, ""); got != wantLog {
		t.Errorf("log:\n%s\nwant:\n%s", got, wantLog)
	}
	if !strings.Contains(strings.Join(env, " "), "OMP_NUM_THREADS=1") {
		t.Errorf("environment set before the role started: %v, want OMP_NUM_THREADS=1 among it", env)
	}
}

// TestStartError: a rank that fails before taking its role (here, pinning
// its CPUs) returns a *StartError, on which the MPI bootstrap ends the job.
func TestStartError(t *testing.T) {
	top, err := topology.Parse("t.toml", []byte("[workers]\npin = \"compact\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	errPin := errors.New("sched_setaffinity: invalid argument")
	err = Run(context.Background(), Config{
		Topology: top.WithCPUsPerNode(2),
		Info: rank.Info{Launcher: rank.SLURM, Rank: 1, Size: 2, LocalRank: 1, LocalSize: 2, Node: "n1",
			NodeList: []string{"n1"}, TasksPerNode: []int{2}},
		Pin:    func([]int) error { return errPin },
		Setenv: func(string, string) error { return nil },
	})
	var se *StartError
	if !errors.As(err, &se) || !errors.Is(err, errPin) {
		t.Fatalf("Run = %v, want a *StartError wrapping the pinning error", err)
	}
	if want := "rank 1: sched_setaffinity: invalid argument"; err.Error() != want {
		t.Fatalf("error %q, want %q", err, want)
	}
}

func dropTime(_ []string, a slog.Attr) slog.Attr {
	if a.Key == slog.TimeKey {
		return slog.Attr{}
	}
	return a
}

// TestNetworks: the listen and parent addresses of the ranks of a
// two-node plan, per network setting, on a node with loopback, Ethernet
// and a fast network.
func TestNetworks(t *testing.T) {
	pfx := netip.MustParsePrefix
	ifs := []netpick.Interface{
		{Name: "lo", Up: true, Loopback: true, Addrs: []netip.Prefix{pfx("127.0.0.1/8")}},
		{Name: "eth0", Up: true, Addrs: []netip.Prefix{pfx("192.0.2.1/24")}},
		{Name: "ib0", Up: true, Addrs: []netip.Prefix{pfx("10.1.0.1/16")}},
	}
	hosts := map[string][]string{"n1": {"192.0.2.1", "10.1.0.1"}, "n2": {"192.0.2.2", "10.1.0.2"}}
	picker := netpick.Picker{
		Interfaces: func() ([]netpick.Interface, error) { return ifs, nil },
		LookupHost: func(_ context.Context, h string) ([]string, error) { return hosts[h], nil },
	}
	for _, c := range []struct {
		name, toml, override string
		want                 []string // per rank: listen address, parent address
	}{
		{"auto", "", "", []string{"192.0.2.1", "", "", "192.0.2.1:7472", "-", "192.0.2.1:7472", "", "192.0.2.2:7473"}},
		{"interface", "[runtime]\nnetwork = \"ib0\"\n", "", []string{"10.1.0.1", "", "", "10.1.0.1:7472", "-", "10.1.0.1:7472", "", "10.1.0.2:7473"}},
		{"server apart", "[runtime]\nnetwork = \"10.1.0.0/16\"\n[server]\nnetwork = \"eth0\"\n", "",
			[]string{"192.0.2.1", "", "", "192.0.2.1:7472", "-", "192.0.2.1:7472", "", "10.1.0.2:7473"}},
		{"override", "[runtime]\nnetwork = \"eth0\"\n", "ib0", []string{"10.1.0.1", "", "", "10.1.0.1:7472", "-", "10.1.0.1:7472", "", "10.1.0.2:7473"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			top, err := topology.Parse("t.toml", []byte(c.toml))
			if err != nil {
				t.Fatal(err)
			}
			p, err := top.WithCPUsPerNode(1).Plan([]string{"n1", "n2"}, []int{2, 2})
			if err != nil {
				t.Fatal(err)
			}
			nets := Networks{Topology: top, Override: c.override, Picker: picker}
			var got []string
			for _, e := range p.Ranks {
				// The fake interfaces are n1's: only n1's ranks pick here.
				listen, parent := "", ""
				switch {
				case listens(e) && e.Host == "n1":
					a, err := nets.Listen(t.Context(), e)
					if err != nil {
						t.Fatal(err)
					}
					listen = a.String()
				case listens(e):
					listen = "-"
				}
				if e.Parent >= 0 {
					a, err := nets.Parent(t.Context(), e)
					if err != nil {
						t.Fatal(err)
					}
					parent = a.String()
				}
				got = append(got, listen, parent)
			}
			if strings.Join(got, " ") != strings.Join(c.want, " ") {
				t.Fatalf("listen, parent per rank:\n%q\nwant\n%q", got, c.want)
			}
		})
	}
}
