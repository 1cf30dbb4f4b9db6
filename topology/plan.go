package topology

import (
	"fmt"
	"sort"
	"strings"
)

// Role is the set of roles a rank holds: server, manager, worker, or
// server and manager together (rank 0 under the shared placement).
type Role uint8

// The roles.
const (
	RoleServer Role = 1 << iota
	RoleManager
	RoleWorker
)

// Has reports whether r includes role x.
func (r Role) Has(x Role) bool { return r&x != 0 }

// String joins the roles with "+": "server", "manager", "worker",
// "server+manager".
func (r Role) String() string {
	var parts []string
	for _, x := range []struct {
		role Role
		name string
	}{{RoleServer, "server"}, {RoleManager, "manager"}, {RoleWorker, "worker"}} {
		if r.Has(x.role) {
			parts = append(parts, x.name)
		}
	}
	return strings.Join(parts, "+")
}

// MarshalText returns String.
func (r Role) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

// UnmarshalText parses what String prints.
func (r *Role) UnmarshalText(b []byte) error {
	var out Role
	for _, p := range strings.Split(string(b), "+") {
		switch p {
		case "server":
			out |= RoleServer
		case "manager":
			out |= RoleManager
		case "worker":
			out |= RoleWorker
		default:
			return fmt.Errorf("unknown role %q", p)
		}
	}
	*r = out
	return nil
}

// Rank is one rank's entry in a plan: everything the rank needs to take its
// role, and the JSON object "qlaunch plan --format json" prints for it.
type Rank struct {
	Rank      int    `json:"rank"`       // global rank, 0-based
	Host      string `json:"host"`       // node name, from the node list
	Node      int    `json:"node"`       // index of Host in the node list
	LocalRank int    `json:"local_rank"` // index among the ranks of its node
	Roles     Role   `json:"role"`       // "server", "manager", "worker" or "server+manager"
	Parent    int    `json:"parent"`     // the rank it reports to; -1 for the server
	// ParentHost and ParentPort are where the rank dials its parent ("" and
	// 0 for the server). Every link of the tree is dialled by the child.
	ParentHost string `json:"parent_host"`
	ParentPort int    `json:"parent_port"`
	Children   []int  `json:"children"` // ranks reporting to it: own node's worker ranks, then managers
	Depth      int    `json:"depth"`    // hops from the server
	// Port is the TCP port the rank listens on: Runtime.Port for the
	// server, Runtime.Port+1 for managers (plus one per earlier node of the
	// same host name); 0 for worker ranks, which listen on nothing.
	Port    int               `json:"port"`
	CPUs    string            `json:"cpus"`    // cpulist to pin to; "" when not pinned
	Workers int               `json:"workers"` // worker slots of a worker rank; 0 for others
	GPUs    []int             `json:"gpus"`    // node-local GPU indices of a worker rank
	Env     map[string]string `json:"env"`     // variables to set; keys sorted in JSON
}

// Plan is every rank's entry, in rank order. Every rank computes the same
// plan from the same topology, node list and tasks per node.
type Plan struct {
	Ranks []Rank `json:"ranks"`
}

// Server returns the server's entry (rank 0).
func (p *Plan) Server() *Rank { return &p.Ranks[0] }

// ParentAddr returns the host and port that rank dials to reach its parent.
func (p *Plan) ParentAddr(rank int) (host string, port int, err error) {
	if rank < 0 || rank >= len(p.Ranks) {
		return "", 0, inputErrorf(ErrNoRank, "rank %d is not in the plan (size %d)", rank, len(p.Ranks))
	}
	r := &p.Ranks[rank]
	if r.Parent < 0 {
		return "", 0, inputErrorf(ErrNoRank, "rank %d is the server; it has no parent", rank)
	}
	return r.ParentHost, r.ParentPort, nil
}

// RanksPerNode returns how many ranks the topology needs on each of n
// nodes: one manager and WorkerRanksPerNode worker ranks per node, plus the
// server's own rank on node 0 under the dedicated placement.
func (t *Topology) RanksPerNode(n int) []int {
	out := make([]int, n)
	w := t.WorkerRanksPerNode()
	for i := range out {
		out[i] = 1 + w
	}
	if n > 0 && t.Server.Placement == PlaceDedicated {
		out[0]++
	}
	return out
}

// Plan computes every rank's entry for the given nodes (host names in the
// scheduler's order) and ranks per node. tasksPerNode nil means
// RanksPerNode(len(nodes)). Errors are *ConfigError (the topology cannot
// take this shape) or *InputError (the node list or counts are wrong).
func (t *Topology) Plan(nodes []string, tasksPerNode []int) (*Plan, error) {
	l, err := t.layout(nodes, tasksPerNode)
	if err != nil {
		return nil, err
	}
	l.fillDup()
	p := &Plan{Ranks: make([]Rank, l.total)}
	for r := range p.Ranks {
		l.entry(r, &p.Ranks[r])
	}
	return p, nil
}

// RankOf computes rank's entry alone, without building the whole plan: the
// work is linear in the number of nodes with a small constant (a prefix sum)
// plus the rank's own children. It returns the same entry as Plan, and the
// same error for the same inputs.
func (t *Topology) RankOf(nodes []string, tasksPerNode []int, rank int) (Rank, error) {
	l, err := t.layout(nodes, tasksPerNode)
	if err != nil {
		return Rank{}, err
	}
	if rank < 0 || rank >= l.total {
		return Rank{}, inputErrorf(ErrNoRank, "rank %d is not in the plan (size %d)", rank, l.total)
	}
	var r Rank
	l.entry(rank, &r)
	return r, nil
}

// layout is what Plan and RankOf share: the node list checked, where each
// node's ranks start, and the tree's shape.
type layout struct {
	t         *Topology
	nodes     []string
	starts    []int // starts[i] = first rank of node i; starts[len(nodes)] = total
	total     int
	dedicated bool
	k         int // most child managers of a tree position
	rootK     int // most child managers of the server
	cpus      int
	explicit  []CPUSet
	dup       []int // dup[i] = earlier nodes named nodes[i]; nil: count on demand
}

// nonWorkers returns the server/manager ranks at the start of node i.
func (l *layout) nonWorkers(i int) int {
	if i == 0 && l.dedicated {
		return 2
	}
	return 1
}

func (t *Topology) layout(nodes []string, tasksPerNode []int) (*layout, error) {
	if len(nodes) == 0 {
		return nil, inputErrorf(ErrNoNodes, "plan: the node list is empty")
	}
	if tasksPerNode != nil && len(tasksPerNode) != len(nodes) {
		return nil, inputErrorf(ErrTasksPerNode, "plan: %d tasks-per-node counts for %d nodes", len(tasksPerNode), len(nodes))
	}
	l := &layout{
		t:         t,
		nodes:     nodes,
		starts:    make([]int, len(nodes)+1),
		dedicated: t.Server.Placement == PlaceDedicated,
		cpus:      t.Workers.CPUsPerNode,
	}
	nw := t.WorkerRanksPerNode()
	maxW, totalW := 0, 0
	var ws []int // distinct worker counts, to check each shape once
	for i, h := range nodes {
		if !validHost(h) {
			return nil, inputErrorf(ErrBadNode, "plan: node %d: bad host name %q", i, h)
		}
		n := l.nonWorkers(i) + nw
		if tasksPerNode != nil {
			n = tasksPerNode[i]
			if n < l.nonWorkers(i) {
				return nil, inputErrorf(ErrTasksPerNode, "plan: node %d (%s) has %d ranks; it needs at least %d", i, h, n, l.nonWorkers(i))
			}
		}
		if l.starts[i] > 1<<30 {
			return nil, inputErrorf(ErrTasksPerNode, "plan: more than 2^30 ranks")
		}
		l.starts[i+1] = l.starts[i] + n
		w := n - l.nonWorkers(i)
		totalW += w
		maxW = max(maxW, w)
		if !containsInt(ws, w) {
			ws = append(ws, w)
		}
	}
	l.total = l.starts[len(nodes)]
	if totalW == 0 {
		return nil, inputErrorf(ErrTasksPerNode, "plan: no worker ranks: every node holds only its server or manager rank")
	}
	var errs []error
	l.k = t.Managers.Fanout - maxW
	l.rootK = l.k
	if l.dedicated {
		l.rootK = t.Managers.Fanout
	}
	if maxW > t.Managers.Fanout {
		errs = append(errs, t.src.errAt("managers.fanout", fmt.Sprintf("%d is below the %d worker ranks on a node (each is a child of its manager)", t.Managers.Fanout, maxW)))
	} else if l.positions() > 1 && l.k < 1 {
		errs = append(errs, t.src.errAt("managers.fanout", fmt.Sprintf("%d leaves no room for child managers beside %d worker ranks on a node (need at least %d)", t.Managers.Fanout, maxW, maxW+1)))
	}
	needCPUs := t.Workers.Pin == PinCompact || t.Workers.Pin == PinSpread || t.Workers.SlotsPerRank == 0 && t.Workers.Pin != PinExplicit
	if needCPUs && l.cpus <= 0 {
		errs = append(errs, t.src.errAt("workers.cpus_per_node", "the CPUs per node are unknown: set cpus_per_node or pass the count at plan time"))
	}
	sort.Ints(ws)
	for _, w := range ws {
		if t.Workers.GPUsPerNode > 0 && w > t.Workers.GPUsPerNode*t.Workers.RanksPerGPU {
			errs = append(errs, t.src.errAt("workers.gpus_per_node", fmt.Sprintf("%d worker ranks on a node do not fit %d GPUs with %d ranks per GPU", w, t.Workers.GPUsPerNode, t.Workers.RanksPerGPU)))
		}
		if t.Workers.Pin == PinExplicit && w > len(t.Workers.CPUs) {
			errs = append(errs, t.src.errAt("workers.cpus", fmt.Sprintf("%d worker ranks on a node but only %d cpulists", w, len(t.Workers.CPUs))))
		}
		if w > 0 && l.cpus > 0 {
			if t.Workers.Pin == PinCompact || t.Workers.Pin == PinSpread {
				errs = append(errs, t.shapeErrors(w, l.cpus)...)
			}
		}
	}
	if t.Workers.Pin == PinExplicit {
		for i, s := range t.Workers.CPUs {
			set, err := ParseCPUList(s, l.cpus)
			if err != nil {
				errs = append(errs, t.src.errAt("workers.cpus", fmt.Sprintf("element %d: %v", i, err)))
				continue
			}
			l.explicit = append(l.explicit, set)
		}
	}
	if t.Workers.Pin != PinNone {
		seen := make(map[string]int, len(nodes))
		for i, h := range nodes {
			if j, ok := seen[h]; ok {
				errs = append(errs, inputErrorf(ErrBadNode, "plan: host %q is nodes %d and %d: pinned worker ranks would share CPUs", h, j, i))
				break
			}
			seen[h] = i
		}
	}
	if len(errs) > 0 {
		return nil, joinSorted(errs)
	}
	return l, nil
}

// validHost rejects empty names and names holding hostlist separators.
func validHost(h string) bool {
	for i := 0; i < len(h); i++ {
		switch h[i] {
		case ' ', '\t', '\r', '\n', ',':
			return false
		}
	}
	return h != ""
}

func containsInt(s []int, v int) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func (l *layout) fillDup() {
	l.dup = make([]int, len(l.nodes))
	count := make(map[string]int, len(l.nodes))
	for i, h := range l.nodes {
		l.dup[i] = count[h]
		count[h]++
	}
}

// dupIndex returns how many earlier nodes have node i's host name.
func (l *layout) dupIndex(i int) int {
	if l.dup != nil {
		return l.dup[i]
	}
	n := 0
	for _, h := range l.nodes[:i] {
		if h == l.nodes[i] {
			n++
		}
	}
	return n
}

// Tree positions: the server is position 0; under the shared placement
// node j's manager is position j (node 0's manager is the server), under
// the dedicated placement it is position j+1. The tree is complete and in
// breadth-first order: the server has up to rootK child managers
// (positions 1 … rootK), every other position h up to k (positions
// rootK+(h-1)k+1 … rootK+hk). k = fanout minus the most worker ranks of a
// node, so no rank has more than fanout children; a dedicated server has
// no worker ranks, so rootK = fanout.

// parentPos returns the parent position of position h > 0.
func (l *layout) parentPos(h int) int {
	if h <= l.rootK {
		return 0
	}
	return (h-l.rootK-1)/l.k + 1
}

// childPos returns the first and one-past-last child positions of h.
func (l *layout) childPos(h int) (lo, hi int) {
	if h == 0 {
		lo, hi = 1, 1+l.rootK
	} else {
		lo, hi = l.rootK+(h-1)*l.k+1, l.rootK+h*l.k+1
	}
	return min(lo, l.positions()), min(hi, l.positions())
}

func (l *layout) positions() int {
	if l.dedicated {
		return len(l.nodes) + 1
	}
	return len(l.nodes)
}

// posRank returns the rank at tree position h.
func (l *layout) posRank(h int) int {
	if l.dedicated {
		if h == 0 {
			return 0
		}
		return l.managerRank(h - 1)
	}
	return l.managerRank(h)
}

// posNode returns the node of tree position h.
func (l *layout) posNode(h int) int {
	if l.dedicated && h > 0 {
		return h - 1
	}
	return h
}

func (l *layout) managerRank(node int) int { return l.starts[node] + l.nonWorkers(node) - 1 }

func (l *layout) managerPort(node int) int {
	if node == 0 && !l.dedicated {
		return l.t.Runtime.Port
	}
	return l.t.Runtime.Port + 1 + l.dupIndex(node)
}

// posPort returns the listen port of the rank at tree position h.
func (l *layout) posPort(h int) int {
	if l.dedicated && h == 0 {
		return l.t.Runtime.Port
	}
	return l.managerPort(l.posNode(h))
}

func (l *layout) depth(h int) int {
	d := 0
	for h > 0 {
		h = l.parentPos(h)
		d++
	}
	return d
}

// entry fills in rank r's entry.
func (l *layout) entry(r int, out *Rank) {
	node := sort.Search(len(l.nodes), func(i int) bool { return l.starts[i+1] > r })
	local := r - l.starts[node]
	*out = Rank{
		Rank:      r,
		Host:      l.nodes[node],
		Node:      node,
		LocalRank: local,
		Children:  []int{},
		GPUs:      []int{},
		Env:       map[string]string{},
	}
	nonWorkers := l.nonWorkers(node)
	if local < nonWorkers {
		h := node
		switch {
		case l.dedicated && node == 0 && local == 0:
			h = 0
			out.Roles = RoleServer
		case l.dedicated:
			h = node + 1
			out.Roles = RoleManager
		case node == 0:
			out.Roles = RoleServer | RoleManager
		default:
			out.Roles = RoleManager
		}
		out.Parent = -1
		if h > 0 {
			ph := l.parentPos(h)
			out.Parent = l.posRank(ph)
			out.ParentHost = l.nodes[l.posNode(ph)]
			out.ParentPort = l.posPort(ph)
		}
		out.Port = l.posPort(h)
		out.Depth = l.depth(h)
		if out.Roles.Has(RoleManager) {
			for w := l.starts[node] + nonWorkers; w < l.starts[node+1]; w++ {
				out.Children = append(out.Children, w)
			}
		}
		if l.k > 0 || h == 0 {
			lo, hi := l.childPos(h)
			for c := lo; c < hi; c++ {
				out.Children = append(out.Children, l.posRank(c))
			}
		}
		l.fillEnv(out, l.t.Env, nil)
		return
	}
	w := local - nonWorkers
	nw := l.starts[node+1] - l.starts[node] - nonWorkers
	mh := node
	if l.dedicated {
		mh = node + 1
	}
	out.Roles = RoleWorker
	out.Parent = l.managerRank(node)
	out.ParentHost = l.nodes[node]
	out.ParentPort = l.managerPort(node)
	out.Depth = l.depth(mh) + 1
	tw := l.t.Workers
	slots := tw.SlotsPerRank
	var cpus CPUSet
	switch tw.Pin {
	case PinCompact:
		if slots == 0 {
			slots = max(1, l.cpus/nw)
		}
		cpus = cpuRange(w*slots, (w+1)*slots)
	case PinSpread:
		if slots == 0 {
			slots = max(1, l.cpus/nw)
		}
		block := l.cpus / nw
		cpus = cpuRange(w*block, w*block+slots)
	case PinExplicit:
		cpus = l.explicit[w]
		if slots == 0 {
			slots = cpus.Len()
		}
	default:
		if slots == 0 {
			slots = max(1, l.cpus/nw)
		}
	}
	out.Workers = slots
	out.CPUs = cpus.String()
	if tw.GPUsPerNode > 0 {
		out.GPUs = append(out.GPUs, w/tw.RanksPerGPU)
	}
	if tw.BLASThreads > 0 {
		v := fmt.Sprint(tw.BLASThreads)
		for _, name := range blasVars {
			out.Env[name] = v
		}
	}
	if tw.GPUsPerNode > 0 {
		out.Env[string(tw.GPUEnv)] = gpuList(out.GPUs)
	}
	for k, v := range l.t.Python.PythonEnv() {
		out.Env[k] = v
	}
	l.fillEnv(out, l.t.Env, tw.Env)
}

func (l *layout) fillEnv(out *Rank, envs ...map[string]string) {
	for _, env := range envs {
		for k, v := range env {
			out.Env[k] = expandTemplate(v, out)
		}
	}
}
