package topology

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"slices"
	"strings"
	"testing"
)

func mustParse(t testing.TB, text string) *Topology {
	t.Helper()
	top, err := Parse("test.toml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	return top
}

// hosts returns n odd but valid node names.
func hosts(n int) []string {
	out := make([]string, n)
	for i := range out {
		switch i % 3 {
		case 0:
			out[i] = fmt.Sprintf("n%05d", i)
		case 1:
			out[i] = fmt.Sprintf("gpu-%d-ib.site", i)
		default:
			out[i] = fmt.Sprintf("x%d]y", i)
		}
	}
	return out
}

func TestPlanSmall(t *testing.T) {
	top := mustParse(t, "[workers]\ncpus_per_node = 4\npin = \"compact\"\nslots_per_rank = 2\nranks_per_node = 2\n[managers]\nfanout = 3\n[workers.env]\nID = \"{host}/{node}/{rank}/{local_rank}\"\n[env]\nALL = \"r{rank}\"\n")
	p, err := top.Plan([]string{"a", "b", "c"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	blas := func(m map[string]string) map[string]string {
		for _, v := range BLASVars() {
			m[v] = "1"
		}
		return m
	}
	want := []Rank{
		{Rank: 0, Host: "a", Node: 0, LocalRank: 0, Roles: RoleServer | RoleManager, Parent: -1, Children: []int{1, 2, 3}, Port: 7472, GPUs: []int{}, Env: map[string]string{"ALL": "r0"}},
		{Rank: 1, Host: "a", Node: 0, LocalRank: 1, Roles: RoleWorker, Parent: 0, ParentHost: "a", ParentPort: 7472, Depth: 1, Children: []int{}, CPUs: "0-1", Workers: 2, GPUs: []int{}, Env: blas(map[string]string{"ALL": "r1", "ID": "a/0/1/1"})},
		{Rank: 2, Host: "a", Node: 0, LocalRank: 2, Roles: RoleWorker, Parent: 0, ParentHost: "a", ParentPort: 7472, Depth: 1, Children: []int{}, CPUs: "2-3", Workers: 2, GPUs: []int{}, Env: blas(map[string]string{"ALL": "r2", "ID": "a/0/2/2"})},
		{Rank: 3, Host: "b", Node: 1, LocalRank: 0, Roles: RoleManager, Parent: 0, ParentHost: "a", ParentPort: 7472, Depth: 1, Children: []int{4, 5, 6}, Port: 7473, GPUs: []int{}, Env: map[string]string{"ALL": "r3"}},
		{Rank: 4, Host: "b", Node: 1, LocalRank: 1, Roles: RoleWorker, Parent: 3, ParentHost: "b", ParentPort: 7473, Depth: 2, Children: []int{}, CPUs: "0-1", Workers: 2, GPUs: []int{}, Env: blas(map[string]string{"ALL": "r4", "ID": "b/1/4/1"})},
		{Rank: 5, Host: "b", Node: 1, LocalRank: 2, Roles: RoleWorker, Parent: 3, ParentHost: "b", ParentPort: 7473, Depth: 2, Children: []int{}, CPUs: "2-3", Workers: 2, GPUs: []int{}, Env: blas(map[string]string{"ALL": "r5", "ID": "b/1/5/2"})},
		{Rank: 6, Host: "c", Node: 2, LocalRank: 0, Roles: RoleManager, Parent: 3, ParentHost: "b", ParentPort: 7473, Depth: 2, Children: []int{7, 8}, Port: 7473, GPUs: []int{}, Env: map[string]string{"ALL": "r6"}},
		{Rank: 7, Host: "c", Node: 2, LocalRank: 1, Roles: RoleWorker, Parent: 6, ParentHost: "c", ParentPort: 7473, Depth: 3, Children: []int{}, CPUs: "0-1", Workers: 2, GPUs: []int{}, Env: blas(map[string]string{"ALL": "r7", "ID": "c/2/7/1"})},
		{Rank: 8, Host: "c", Node: 2, LocalRank: 2, Roles: RoleWorker, Parent: 6, ParentHost: "c", ParentPort: 7473, Depth: 3, Children: []int{}, CPUs: "2-3", Workers: 2, GPUs: []int{}, Env: blas(map[string]string{"ALL": "r8", "ID": "c/2/8/2"})},
	}
	if !reflect.DeepEqual(p.Ranks, want) {
		for i := range p.Ranks {
			if i < len(want) && !reflect.DeepEqual(p.Ranks[i], want[i]) {
				t.Errorf("rank %d:\n got  %+v\n want %+v", i, p.Ranks[i], want[i])
			}
		}
		t.Fatalf("plan has %d ranks, want %d", len(p.Ranks), len(want))
	}
	host, port, err := p.ParentAddr(7)
	if host != "c" || port != 7473 || err != nil {
		t.Errorf("ParentAddr(7) = %q, %d, %v", host, port, err)
	}
	if _, _, err := p.ParentAddr(0); !errors.Is(err, ErrNoRank) {
		t.Errorf("ParentAddr(0) error = %v, want ErrNoRank", err)
	}
	if _, _, err := p.ParentAddr(9); !errors.Is(err, ErrNoRank) {
		t.Errorf("ParentAddr(9) error = %v, want ErrNoRank", err)
	}
	if p.Server().Rank != 0 {
		t.Error("Server is not rank 0")
	}
}

func TestPlanDedicatedGPUSpread(t *testing.T) {
	top := mustParse(t, `[server]
placement = "dedicated"
[workers]
cpus_per_node = 16
pin = "spread"
slots_per_rank = 3
gpus_per_node = 2
ranks_per_gpu = 2
gpu_env = "ROCR_VISIBLE_DEVICES"
blas_threads = 0
env = { G = "{gpu}" }
`)
	p, err := top.Plan([]string{"h", "h"}, nil)
	if err == nil {
		t.Fatalf("pinned plan on a repeated host succeeded: %v", p.Ranks)
	}
	p, err = top.Plan([]string{"h0", "h1"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	type brief struct {
		Rank   int
		Roles  string
		Parent int
		Port   int
		CPUs   string
		GPUs   string
		Env    string
		Kids   string
	}
	var got []brief
	for _, r := range p.Ranks {
		got = append(got, brief{r.Rank, r.Roles.String(), r.Parent, r.Port, r.CPUs, gpuList(r.GPUs), envString(r.Env), fmt.Sprint(r.Children)})
	}
	want := []brief{
		{0, "server", -1, 7472, "", "", "", "[1 7]"},
		{1, "manager", 0, 7473, "", "", "", "[2 3 4 5]"},
		{2, "worker", 1, 0, "0-2", "0", "G=0 ROCR_VISIBLE_DEVICES=0", "[]"},
		{3, "worker", 1, 0, "4-6", "0", "G=0 ROCR_VISIBLE_DEVICES=0", "[]"},
		{4, "worker", 1, 0, "8-10", "1", "G=1 ROCR_VISIBLE_DEVICES=1", "[]"},
		{5, "worker", 1, 0, "12-14", "1", "G=1 ROCR_VISIBLE_DEVICES=1", "[]"},
		{6 + 0, "manager", 0, 7473, "", "", "", "[7 8 9 10]"},
	}
	want[6] = brief{6, "manager", 0, 7473, "", "", "", "[7 8 9 10]"}
	_ = want
	if got[0] != (brief{0, "server", -1, 7472, "", "", "", "[1 6]"}) {
		t.Errorf("server = %+v", got[0])
	}
	for i, w := range []brief{
		{1, "manager", 0, 7473, "", "", "", "[2 3 4 5]"},
		{2, "worker", 1, 0, "0-2", "0", "G=0 ROCR_VISIBLE_DEVICES=0", "[]"},
		{3, "worker", 1, 0, "4-6", "0", "G=0 ROCR_VISIBLE_DEVICES=0", "[]"},
		{4, "worker", 1, 0, "8-10", "1", "G=1 ROCR_VISIBLE_DEVICES=1", "[]"},
		{5, "worker", 1, 0, "12-14", "1", "G=1 ROCR_VISIBLE_DEVICES=1", "[]"},
		{6, "manager", 0, 7473, "", "", "", "[7 8 9 10]"},
	} {
		if got[i+1] != w {
			t.Errorf("rank %d = %+v, want %+v", i+1, got[i+1], w)
		}
	}
	if len(got) != 11 {
		t.Errorf("%d ranks, want 11", len(got))
	}
	if rpn := top.RanksPerNode(3); !slices.Equal(rpn, []int{6, 5, 5}) {
		t.Errorf("RanksPerNode(3) = %v", rpn)
	}
}

func TestPlanRepeatedHostPorts(t *testing.T) {
	top := mustParse(t, "[workers]\nslots_per_rank = 1\n[managers]\nfanout = 2\n")
	p, err := top.Plan([]string{"localhost", "localhost", "localhost"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var ports []int
	for _, r := range p.Ranks {
		ports = append(ports, r.Port)
	}
	if want := []int{7472, 0, 7474, 0, 7475, 0}; !slices.Equal(ports, want) {
		t.Errorf("ports = %v, want %v", ports, want)
	}
	if p.Ranks[4].ParentPort != 7474 || p.Ranks[5].ParentPort != 7475 {
		t.Errorf("parent ports %d %d", p.Ranks[4].ParentPort, p.Ranks[5].ParentPort)
	}
}

func TestPlanInputErrors(t *testing.T) {
	top := mustParse(t, "[workers]\ncpus_per_node = 4\n")
	unknownCPUs := mustParse(t, "")
	tests := []struct {
		name  string
		top   *Topology
		nodes []string
		tpn   []int
		want  error
		msg   string
	}{
		{"no nodes", top, nil, nil, ErrNoNodes, "plan: the node list is empty"},
		{"empty name", top, []string{"a", ""}, nil, ErrBadNode, `plan: node 1: bad host name ""`},
		{"comma", top, []string{"a,b"}, nil, ErrBadNode, `plan: node 0: bad host name "a,b"`},
		{"counts", top, []string{"a"}, []int{1, 2}, ErrTasksPerNode, "plan: 2 tasks-per-node counts for 1 nodes"},
		{"too few", top, []string{"a", "b"}, []int{2, 0}, ErrTasksPerNode, "plan: node 1 (b) has 0 ranks; it needs at least 1"},
		{"no workers", top, []string{"a"}, []int{1}, ErrTasksPerNode, "plan: no worker ranks: every node holds only its server or manager rank"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.top.Plan(tt.nodes, tt.tpn)
			if !errors.Is(err, tt.want) || err.Error() != tt.msg {
				t.Fatalf("Plan error = %v, want %v %q", err, tt.want, tt.msg)
			}
			_, err2 := tt.top.RankOf(tt.nodes, tt.tpn, 0)
			if err2 == nil || err2.Error() != err.Error() {
				t.Fatalf("RankOf error = %v, want %v", err2, err)
			}
		})
	}
	_, err := unknownCPUs.Plan([]string{"a"}, nil)
	var ce *ConfigError
	if !errors.As(err, &ce) || ce.Key != "workers.cpus_per_node" {
		t.Fatalf("Plan without CPUs = %v, want a ConfigError on workers.cpus_per_node", err)
	}
	if p, err := unknownCPUs.WithCPUsPerNode(6).Plan([]string{"a"}, nil); err != nil || p.Ranks[1].Workers != 6 {
		t.Fatalf("WithCPUsPerNode(6): %v", err)
	}
	if _, err := top.RankOf([]string{"a"}, nil, 2); !errors.Is(err, ErrNoRank) {
		t.Fatalf("RankOf(2) = %v, want ErrNoRank", err)
	}
	// More tasks than the pinned shape allows.
	pinned := mustParse(t, "[workers]\ncpus_per_node = 4\npin = \"compact\"\n[managers]\nfanout = 8\n")
	_, err = pinned.Plan([]string{"a", "b"}, []int{3, 7})
	if err == nil || err.Error() != "test.toml:1:1: workers.ranks_per_node: 6 pinned worker ranks do not fit 4 CPUs per node" {
		t.Fatalf("Plan with 6 pinned worker ranks on 4 CPUs: %v", err)
	}
	narrow := mustParse(t, "[workers]\ncpus_per_node = 4\n[managers]\nfanout = 2\n")
	_, err = narrow.Plan([]string{"a"}, []int{4})
	if err == nil || err.Error() != "test.toml:4:1: managers.fanout: 2 is below the 3 worker ranks on a node (each is a child of its manager)" {
		t.Fatalf("Plan with 3 worker ranks under fanout 2: %v", err)
	}
	_, err = pinned.Plan([]string{"a", "b"}, []int{3, 9})
	if err == nil || !strings.Contains(err.Error(), "test.toml:5:1: managers.fanout: 8 leaves no room for child managers beside 8 worker ranks") {
		t.Fatalf("Plan with 8 worker ranks under fanout 8: %v", err)
	}
}

// checkPlan verifies the invariants of a plan and that RankOf agrees with it
// for a few ranks (every rank when the plan is small).
func checkPlan(t testing.TB, top *Topology, nodes []string, tpn []int, p *Plan) {
	t.Helper()
	fanout := top.Managers.Fanout
	servers := 0
	byHost := map[string][]CPUSet{}
	for i := range p.Ranks {
		r := &p.Ranks[i]
		if r.Rank != i {
			t.Fatalf("rank %d at index %d", r.Rank, i)
		}
		if r.Host != nodes[r.Node] {
			t.Fatalf("rank %d: host %q, node %d is %q", i, r.Host, r.Node, nodes[r.Node])
		}
		if r.Roles.Has(RoleServer) {
			servers++
			if r.Parent != -1 || i != 0 {
				t.Fatalf("server rank %d has parent %d", i, r.Parent)
			}
		}
		if len(r.Children) > fanout {
			t.Fatalf("rank %d has %d children, fanout %d", i, len(r.Children), fanout)
		}
		for _, c := range r.Children {
			if p.Ranks[c].Parent != i {
				t.Fatalf("rank %d lists child %d whose parent is %d", i, c, p.Ranks[c].Parent)
			}
		}
		if r.Parent >= 0 {
			par := &p.Ranks[r.Parent]
			if !slices.Contains(par.Children, i) {
				t.Fatalf("rank %d's parent %d does not list it", i, r.Parent)
			}
			if par.Host != r.ParentHost || par.Port != r.ParentPort || par.Port == 0 {
				t.Fatalf("rank %d dials %s:%d, parent %d listens on %s:%d", i, r.ParentHost, r.ParentPort, r.Parent, par.Host, par.Port)
			}
			if r.Depth != par.Depth+1 {
				t.Fatalf("rank %d depth %d, parent depth %d", i, r.Depth, par.Depth)
			}
		}
		// Every parent chain reaches the server: depth strictly decreases.
		if r.Parent < 0 && !r.Roles.Has(RoleServer) {
			t.Fatalf("rank %d has no parent but is not the server", i)
		}
		if r.Roles.Has(RoleWorker) {
			par := &p.Ranks[r.Parent]
			if !par.Roles.Has(RoleManager) || par.Host != r.Host || par.Node != r.Node {
				t.Fatalf("worker %d's parent %d (%s on %s) is not its node's manager", i, r.Parent, par.Roles, par.Host)
			}
			if r.Workers < 1 {
				t.Fatalf("worker %d has %d slots", i, r.Workers)
			}
			if top.Workers.Pin != PinNone {
				set, err := ParseCPUList(r.CPUs, 0)
				if err != nil || set.Len() < r.Workers {
					t.Fatalf("worker %d: cpus %q for %d slots: %v", i, r.CPUs, r.Workers, err)
				}
				for _, other := range byHost[r.Host] {
					if other.Intersects(set) {
						t.Fatalf("worker %d's CPUs %s overlap another worker on %s", i, r.CPUs, r.Host)
					}
				}
				byHost[r.Host] = append(byHost[r.Host], set)
			} else if r.CPUs != "" {
				t.Fatalf("worker %d pinned to %q with pin = none", i, r.CPUs)
			}
			if g := top.Workers.GPUsPerNode; g > 0 {
				if len(r.GPUs) != 1 || r.GPUs[0] >= g || r.Env[string(top.Workers.GPUEnv)] != fmt.Sprint(r.GPUs[0]) {
					t.Fatalf("worker %d: gpus %v env %v", i, r.GPUs, r.Env)
				}
			}
			for _, v := range BLASVars() {
				if top.Workers.BLASThreads > 0 && r.Env[v] != fmt.Sprint(top.Workers.BLASThreads) {
					t.Fatalf("worker %d: %s=%q", i, v, r.Env[v])
				}
			}
		} else if r.Port == 0 || r.CPUs != "" || r.Workers != 0 {
			t.Fatalf("rank %d (%s) port %d cpus %q workers %d", i, r.Roles, r.Port, r.CPUs, r.Workers)
		}
	}
	if servers != 1 {
		t.Fatalf("%d servers", servers)
	}
	// RankOf agrees with the plan.
	step := max(1, len(p.Ranks)/50)
	for r := 0; r < len(p.Ranks); r += step {
		got, err := top.RankOf(nodes, tpn, r)
		if err != nil {
			t.Fatalf("RankOf(%d): %v", r, err)
		}
		if !reflect.DeepEqual(got, p.Ranks[r]) {
			t.Fatalf("RankOf(%d) = %+v\nplan has %+v", r, got, p.Ranks[r])
		}
	}
}

var invariantTopologies = map[string]string{
	"default":   "[workers]\ncpus_per_node = 8\n",
	"compact":   "[workers]\ncpus_per_node = 64\npin = \"compact\"\nranks_per_node = 4\n[managers]\nfanout = 8\n",
	"gpu":       "[workers]\ncpus_per_node = 32\npin = \"spread\"\ngpus_per_node = 4\nranks_per_gpu = 2\nslots_per_rank = 2\n[managers]\nfanout = 10\n",
	"dedicated": "[server]\nplacement = \"dedicated\"\n[workers]\nslots_per_rank = 3\npin = \"explicit\"\ncpus = [\"0-3\", \"8-11\"]\n[managers]\nfanout = 3\n",
}

func TestPlanInvariants(t *testing.T) {
	sizes := []int{1, 2, 3, 4, 7, 8, 9, 31, 32, 33, 63, 64, 65, 100, 1000, 10000}
	switch {
	case testing.Short():
		sizes = sizes[:12]
	case raceEnabled:
		// Planning is one goroutine's work: the race detector has nothing
		// to watch at 10,000 nodes. That size (one more manager level
		// than 1,000 at fanout 8) runs in the lane without it.
		sizes = sizes[:len(sizes)-1]
	}
	for name, text := range invariantTopologies {
		top := mustParse(t, text)
		for _, n := range sizes {
			t.Run(fmt.Sprintf("%s/nodes=%d", name, n), func(t *testing.T) {
				nodes := hosts(n)
				p, err := top.Plan(nodes, nil)
				if err != nil {
					t.Fatal(err)
				}
				checkPlan(t, top, nodes, nil, p)
				if !slices.Equal(countPerNode(p, n), top.RanksPerNode(n)) {
					t.Fatalf("ranks per node %v, RanksPerNode %v", countPerNode(p, n), top.RanksPerNode(n))
				}
			})
		}
	}
}

func countPerNode(p *Plan, n int) []int {
	c := make([]int, n)
	for _, r := range p.Ranks {
		c[r.Node]++
	}
	return c
}

func TestPlanDepth(t *testing.T) {
	// 1,000 nodes, fanout 32, one worker rank per node: 31 child managers
	// per manager, so the farthest manager is 3 hops from the server (the
	// server's own node counts as the root), and with a dedicated server
	// two levels of managers suffice.
	for _, tt := range []struct {
		text  string
		depth int
	}{
		{"[workers]\nslots_per_rank = 1\n", 3},
		{"[server]\nplacement = \"dedicated\"\n[workers]\nslots_per_rank = 1\n", 2},
		{"[workers]\nslots_per_rank = 1\n[managers]\nfanout = 8\n", 4},
	} {
		top := mustParse(t, tt.text)
		p, err := top.Plan(hosts(1000), nil)
		if err != nil {
			t.Fatal(err)
		}
		d := 0
		for _, r := range p.Ranks {
			if r.Roles.Has(RoleManager) {
				d = max(d, r.Depth)
			}
		}
		if d != tt.depth {
			t.Errorf("%q: deepest manager at depth %d, want %d", tt.text, d, tt.depth)
		}
	}
}

func FuzzPlanProperties(f *testing.F) {
	f.Add(uint16(1), uint8(32), uint8(1), uint8(0), false, "n")
	f.Add(uint16(100), uint8(3), uint8(2), uint8(1), true, "gpu-[")
	f.Add(uint16(1000), uint8(8), uint8(7), uint8(2), false, "x.y")
	f.Fuzz(func(t *testing.T, n uint16, fanout, wpn, extra uint8, dedicated bool, prefix string) {
		nodes := int(n)%2000 + 1
		w := int(wpn)%8 + 1
		text := fmt.Sprintf("[managers]\nfanout = %d\n[workers]\nranks_per_node = %d\ncpus_per_node = 64\npin = \"compact\"\n", int(fanout)%40+w+1, w)
		if dedicated {
			text += "[server]\nplacement = \"dedicated\"\n"
		}
		top := mustParse(t, text)
		names := make([]string, nodes)
		prefix = strings.Map(func(r rune) rune {
			if r == ',' || r == ' ' || r == '\t' || r == '\n' || r == '\r' {
				return '_'
			}
			return r
		}, prefix)
		for i := range names {
			names[i] = fmt.Sprintf("%s%d", prefix, i)
		}
		// Uneven tasks per node: some nodes get extra worker ranks.
		tpn := top.RanksPerNode(nodes)
		for i := range tpn {
			if extra > 0 && i%(int(extra)+1) == 0 {
				tpn[i] += int(extra) % 3
			}
		}
		p, err := top.Plan(names, tpn)
		if err != nil {
			var ce *ConfigError
			if errors.As(err, &ce) { // an uneven node may not fit the fanout
				return
			}
			t.Fatal(err)
		}
		checkPlan(t, top, names, tpn, p)
	})
}

func TestPlanJSON(t *testing.T) {
	top := mustParse(t, "[workers]\ncpus_per_node = 2\n")
	p, err := top.Plan([]string{"a"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := p.WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	want := `{"ranks":[
{"rank":0,"host":"a","node":0,"local_rank":0,"role":"server+manager","parent":-1,"parent_host":"","parent_port":0,"children":[1],"depth":0,"port":7472,"cpus":"","workers":0,"gpus":[],"env":{}},
{"rank":1,"host":"a","node":0,"local_rank":1,"role":"worker","parent":0,"parent_host":"a","parent_port":7472,"children":[],"depth":1,"port":0,"cpus":"","workers":2,"gpus":[],"env":{"MKL_NUM_THREADS":"1","NUMEXPR_NUM_THREADS":"1","OMP_NUM_THREADS":"1","OPENBLAS_NUM_THREADS":"1","VECLIB_MAXIMUM_THREADS":"1"}}
]}
`
	if b.String() != want {
		t.Fatalf("JSON:\n%s\nwant:\n%s", b.String(), want)
	}
	var back Plan
	if err := json.Unmarshal(b.Bytes(), &back); err != nil || !reflect.DeepEqual(back.Ranks, p.Ranks) {
		t.Fatalf("JSON round trip: %v\n%+v", err, back.Ranks)
	}
	b.Reset()
	p.WriteHostfile(&b)
	if b.String() != "a\na\n" {
		t.Errorf("hostfile %q", b.String())
	}
}

func BenchmarkRankOf(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("nodes=%d", n), func(b *testing.B) {
			top := mustParse(b, invariantTopologies["gpu"])
			nodes := hosts(n)
			last := top.RanksPerNode(n)
			total := 0
			for _, c := range last {
				total += c
			}
			i := 0
			for b.Loop() {
				// Alternate between the server, a manager deep in the tree and a worker.
				rank := []int{0, total - 9, total - 1}[i%3]
				if _, err := top.RankOf(nodes, nil, rank); err != nil {
					b.Fatal(err)
				}
				i++
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/1000, "ms/rank")
		})
	}
}

func BenchmarkPlanJSON(b *testing.B) {
	top := mustParse(b, invariantTopologies["gpu"])
	nodes := hosts(1000)
	for b.Loop() {
		p, err := top.Plan(nodes, nil)
		if err != nil {
			b.Fatal(err)
		}
		if err := p.WriteJSON(io.Discard); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(9000, "ranks")
}

// TestPlanPython: [python] reaches worker ranks only, as the variables the
// python kernel reads, and [workers.env] may override them.
func TestPlanPython(t *testing.T) {
	top := mustParse(t, "[workers]\ncpus_per_node = 2\n[python]\ninterpreter = \"/opt/py/bin/python3\"\npath = [\"/a\", \"b\"]\nthreads = 2\n[workers.env]\nQLAUNCH_PYTHON_THREADS = \"3\"\n")
	p, err := top.Plan([]string{"a"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if env := p.Ranks[0].Env; env[EnvPythonInterpreter] != "" || env[EnvPythonPath] != "" || env[EnvPythonThreads] != "" {
		t.Errorf("the server rank has Python variables: %v", env)
	}
	env := p.Ranks[1].Env
	if env[EnvPythonInterpreter] != "/opt/py/bin/python3" || env[EnvPythonPath] != "/a:b" || env[EnvPythonThreads] != "3" {
		t.Errorf("worker rank env = %v", env)
	}
	if env := mustParse(t, "").Python.PythonEnv(); len(env) != 0 {
		t.Errorf("an empty [python] sets %v", env)
	}
}
