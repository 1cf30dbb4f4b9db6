package configs

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/qlaunch/qlaunch/pbs"
	"github.com/qlaunch/qlaunch/slurm"
	"github.com/qlaunch/qlaunch/topology"
)

var update = flag.Bool("update", false, "rewrite the golden plans under testdata/")

// cpusAtPlanTime is the CPU count the tests supply for topologies that
// leave cpus_per_node to plan time.
const cpusAtPlanTime = 8

// nodeCase is one node list: a SLURM hostlist or a PBS node file.
type nodeCase struct {
	name     string
	nodelist string // hostlist expression
	nodefile string // $PBS_NODEFILE text, instead of nodelist
}

var commonCases = []nodeCase{
	{name: "one", nodelist: "node1"},
	{name: "padded", nodelist: "nid[0009-0012]"},
	{name: "groups", nodelist: "rack[1-2]-n[01-02],login_7"},
	{name: "odd", nodelist: "x]y,n1-3],gpu.a-1,Z[8-9]"},
}

var configCases = map[string][]nodeCase{
	"local.toml":     {{name: "one", nodelist: "localhost"}},
	"slurm-cpu.toml": append(commonCases[:len(commonCases):len(commonCases)], nodeCase{name: "forty", nodelist: "c[001-040]"}),
	"slurm-gpu.toml": commonCases,
	"hierarchy.toml": append(commonCases[:len(commonCases):len(commonCases)], nodeCase{name: "sixtyfour", nodelist: "h[1-64]"}),
	"pbs-polaris.toml": append(commonCases[:len(commonCases):len(commonCases)],
		nodeCase{name: "nodefile", nodefile: strings.Repeat("x3006c0s13b0n0\n", 5) + strings.Repeat("x3006c0s13b1n0\n", 5)}),
}

func nodes(t *testing.T, c nodeCase) ([]string, []int) {
	t.Helper()
	if c.nodefile != "" {
		nf, err := pbs.ParseNodefile(strings.NewReader(c.nodefile))
		if err != nil {
			t.Fatal(err)
		}
		return nf.Hosts, nf.RanksPerHost
	}
	hosts, err := slurm.Expand(c.nodelist)
	if err != nil {
		t.Fatal(err)
	}
	return hosts, nil
}

func load(t testing.TB, name string) *topology.Topology {
	t.Helper()
	top, err := topology.Load(name)
	if err != nil {
		t.Fatal(err)
	}
	return top.WithCPUsPerNode(cpusAtPlanTime)
}

func TestEveryConfigIsTested(t *testing.T) {
	files, err := filepath.Glob("*.toml")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != len(configCases) {
		t.Fatalf("configs %v, tested %d", files, len(configCases))
	}
	for _, f := range files {
		if _, ok := configCases[f]; !ok {
			t.Errorf("%s has no test cases", f)
		}
	}
}

func TestGoldenPlans(t *testing.T) {
	for file, cases := range configCases {
		top := load(t, file)
		for _, c := range cases {
			t.Run(file+"/"+c.name, func(t *testing.T) {
				hosts, tpn := nodes(t, c)
				p, err := top.Plan(hosts, tpn)
				if err != nil {
					t.Fatal(err)
				}
				checkInvariants(t, top, p)
				var b bytes.Buffer
				if err := p.WriteJSON(&b); err != nil {
					t.Fatal(err)
				}
				golden := filepath.Join("testdata", strings.TrimSuffix(file, ".toml"), c.name+".json")
				if *update {
					if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
						t.Fatal(err)
					}
					if err := os.WriteFile(golden, b.Bytes(), 0o644); err != nil {
						t.Fatal(err)
					}
				}
				want, err := os.ReadFile(golden)
				if err != nil {
					t.Fatalf("%v (run go test ./configs -update)", err)
				}
				if !bytes.Equal(b.Bytes(), want) {
					t.Fatalf("plan differs from %s (review, then go test ./configs -update):\n%s", golden, firstDiff(b.String(), string(want)))
				}
			})
		}
	}
}

func firstDiff(got, want string) string {
	g, w := strings.Split(got, "\n"), strings.Split(want, "\n")
	for i := range max(len(g), len(w)) {
		var a, b string
		if i < len(g) {
			a = g[i]
		}
		if i < len(w) {
			b = w[i]
		}
		if a != b {
			return fmt.Sprintf("line %d:\n got  %s\n want %s", i+1, a, b)
		}
	}
	return ""
}

func TestLargePlans(t *testing.T) {
	sizes := []int{1, 2, 9, 33, 100, 1000, 10000}
	switch {
	case testing.Short():
		sizes = sizes[:5]
	case raceEnabled:
		// Planning is one goroutine's work: the race detector has nothing
		// to watch at 10,000 nodes; that size runs in the lane without it.
		sizes = sizes[:len(sizes)-1]
	}
	for file := range configCases {
		top := load(t, file)
		for _, n := range sizes {
			t.Run(fmt.Sprintf("%s/nodes=%d", file, n), func(t *testing.T) {
				hosts, err := slurm.Expand(fmt.Sprintf("a[1-%d]b[01-01]", n))
				if err != nil {
					t.Fatal(err)
				}
				p, err := top.Plan(hosts, nil)
				if err != nil {
					t.Fatal(err)
				}
				checkInvariants(t, top, p)
			})
		}
	}
}

// checkInvariants checks what must hold of every plan: exactly one server;
// every parent chain reaches it; no rank has more than fanout children;
// each worker's parent is a manager on its own host; worker CPU sets are
// disjoint per host; GPU env as configured; RankOf agrees with the plan.
func checkInvariants(t *testing.T, top *topology.Topology, p *topology.Plan) {
	t.Helper()
	servers := 0
	cpus := map[string]topology.CPUSet{}
	var hosts []string
	var tpn []int
	for i, r := range p.Ranks {
		if r.Node == len(hosts) {
			hosts = append(hosts, r.Host)
			tpn = append(tpn, 0)
		}
		tpn[r.Node]++
		if r.Roles.Has(topology.RoleServer) {
			servers++
		}
		if len(r.Children) > top.Managers.Fanout {
			t.Fatalf("rank %d has %d children; fanout %d", i, len(r.Children), top.Managers.Fanout)
		}
		hops := 0
		for q := i; p.Ranks[q].Parent >= 0; q = p.Ranks[q].Parent {
			if hops++; hops > len(p.Ranks) {
				t.Fatalf("rank %d: parent chain loops", i)
			}
		}
		if !r.Roles.Has(topology.RoleWorker) {
			continue
		}
		parent := p.Ranks[r.Parent]
		if !parent.Roles.Has(topology.RoleManager) || parent.Host != r.Host {
			t.Fatalf("worker %d's parent %d is a %s on %s", i, r.Parent, parent.Roles, parent.Host)
		}
		if r.CPUs != "" {
			set, err := topology.ParseCPUList(r.CPUs, 0)
			if err != nil {
				t.Fatal(err)
			}
			if cpus[r.Host].Intersects(set) {
				t.Fatalf("worker %d's CPUs %s overlap another worker's on %s", i, r.CPUs, r.Host)
			}
			cpus[r.Host] = cpus[r.Host].Union(set)
		}
		if g := top.Workers.GPUsPerNode; g > 0 {
			if len(r.GPUs) != 1 || r.Env[string(top.Workers.GPUEnv)] != fmt.Sprint(r.GPUs[0]) || r.GPUs[0] >= g {
				t.Fatalf("worker %d: GPUs %v, env %v", i, r.GPUs, r.Env)
			}
		}
	}
	if servers != 1 || !p.Ranks[0].Roles.Has(topology.RoleServer) {
		t.Fatalf("%d servers", servers)
	}
	for _, rank := range []int{0, len(p.Ranks) / 2, len(p.Ranks) - 1} {
		got, err := top.RankOf(hosts, tpn, rank)
		if err != nil || fmt.Sprint(got) != fmt.Sprint(p.Ranks[rank]) {
			t.Fatalf("RankOf(%d) = %v, %v; plan has %v", rank, got, err, p.Ranks[rank])
		}
	}
}
