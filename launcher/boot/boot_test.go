package boot

import (
	"context"
	"errors"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/qlaunch/qlaunch/kernels"
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
	err = Run(context.Background(), Config{
		Topology: top.WithCPUsPerNode(1),
		Info: rank.Info{Launcher: rank.SLURM, Rank: 1, Size: 2, LocalRank: 1, LocalSize: 2, Node: "n1",
			NodeList: []string{"n1"}, TasksPerNode: []int{2}},
		Resolve:     func(string) (string, error) { return "127.0.0.1", nil },
		Pin:         func([]int) error { return nil },
		Setenv:      func(k, v string) error { env = append(env, k+"="+v); return nil },
		Secret:      secret,
		Registry:    reg,
		DialTimeout: 200 * time.Millisecond,
	})
	var pe *ParentError
	if !errors.As(err, &pe) {
		t.Fatalf("Run = %v, want a *ParentError", err)
	}
	want := "rank 1 (worker on n1): parent rank 0 on n1 unreachable at 127.0.0.1:" + strconv.Itoa(port) + " for 200ms"
	if !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("error %q\nwant prefix %q", err, want)
	}
	if !strings.Contains(strings.Join(env, " "), "OMP_NUM_THREADS=1") {
		t.Errorf("environment set before the role started: %v, want OMP_NUM_THREADS=1 among it", env)
	}
}
