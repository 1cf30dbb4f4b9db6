package topology

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"
)

// Validate checks t and returns every problem found, each a *ConfigError,
// joined with errors.Join; nil when t is sound. It never modifies t. Parse
// and Load call it; call it again after changing a Topology by hand.
func (t *Topology) Validate() error {
	var errs []error
	bad := func(key, format string, a ...any) {
		errs = append(errs, t.src.errAt(key, fmt.Sprintf(format, a...)))
	}
	r := t.Runtime
	if r.Port < 1 || r.Port > 65534 {
		bad("runtime.port", "%d is not a port in 1..65534 (managers listen on port+1)", r.Port)
	}
	if r.CompressThreshold < 0 {
		bad("runtime.compress_threshold", "%d is negative", r.CompressThreshold)
	}
	if r.AddressFile == "" {
		bad("runtime.address_file", "must not be empty")
	}
	if _, err := MetricsAddr(t.Server.Metrics); err != nil {
		bad("server.metrics", "%v", err)
	}
	if r.Heartbeat <= 0 {
		bad("runtime.heartbeat", "%v is not a positive duration", r.Heartbeat)
	}
	if r.HeartbeatTimeout < 0 || r.HeartbeatTimeout > 0 && r.Heartbeat > 0 && r.HeartbeatTimeout < 2*r.Heartbeat {
		bad("runtime.heartbeat_timeout", "%v must be at least two heartbeats (2 × %v), or 0 for ten", r.HeartbeatTimeout, r.Heartbeat)
	}
	if r.HandshakeTimeout <= 0 {
		bad("runtime.handshake_timeout", "%v is not a positive duration", r.HandshakeTimeout)
	}
	if r.MaxPendingHandshakes < 1 {
		bad("runtime.max_pending_handshakes", "%d is below the minimum 1", r.MaxPendingHandshakes)
	}
	if r.AcceptRate < 1 {
		bad("runtime.accept_rate", "%d is below the minimum 1", r.AcceptRate)
	}
	if r.OutboxBytes < 1<<20 {
		bad("runtime.outbox_bytes", "%d is below the minimum 1048576 (1 MiB)", r.OutboxBytes)
	}
	for _, b := range []struct {
		key string
		n   int64
		min int64
	}{
		{"runtime.max_client_tasks", int64(r.MaxClientTasks), 1},
		{"runtime.max_queued_tasks", int64(r.MaxQueuedTasks), 1},
		{"runtime.max_client_bytes", r.MaxClientBytes, 1 << 20},
		{"runtime.max_queued_bytes", r.MaxQueuedBytes, 1 << 20},
	} {
		if b.n < b.min {
			bad(b.key, "%d is below the minimum %d", b.n, b.min)
		}
	}
	if r.MaxResultBytes < 0 {
		bad("runtime.max_result_bytes", "%d is negative", r.MaxResultBytes)
	}
	if r.OutboxStall < 0 {
		bad("runtime.outbox_stall", "%v is negative", r.OutboxStall)
	}
	if tl := t.TLS; tl.Enabled() {
		for _, f := range []struct{ key, v string }{{"tls.cert_file", tl.CertFile}, {"tls.key_file", tl.KeyFile}, {"tls.ca_file", tl.CAFile}} {
			if f.v == "" {
				bad(f.key, "must be set with TLS on: every rank accepts and dials, so needs a certificate, its key and the CA")
			}
		}
	} else if tl.VerifyClients || tl.ServerName != "" {
		bad("tls", "verify_clients and server_name need cert_file, key_file and ca_file")
	}
	w := t.Workers
	for _, c := range []struct {
		key string
		v   int
		min int
	}{
		{"managers.fanout", t.Managers.Fanout, 1},
		{"workers.ranks_per_node", w.RanksPerNode, 0},
		{"workers.slots_per_rank", w.SlotsPerRank, 0},
		{"workers.cpus_per_node", w.CPUsPerNode, 0},
		{"workers.blas_threads", w.BLASThreads, 0},
		{"workers.gpus_per_node", w.GPUsPerNode, 0},
		{"workers.ranks_per_gpu", w.RanksPerGPU, 1},
		{"workers.restarts", w.Restarts, 0},
	} {
		if c.v < c.min {
			bad(c.key, "%d is below the minimum %d", c.v, c.min)
		}
	}
	if w.CPUsPerNode > MaxCPUs {
		bad("workers.cpus_per_node", "%d is above the maximum %d", w.CPUsPerNode, MaxCPUs)
	}
	if w.GPUsPerNode > 0 && w.RanksPerNode > 0 && w.RanksPerGPU >= 1 && w.RanksPerNode != w.GPUsPerNode*w.RanksPerGPU {
		bad("workers.ranks_per_node", "%d worker ranks do not fit %d GPUs with %d ranks per GPU (need %d)",
			w.RanksPerNode, w.GPUsPerNode, w.RanksPerGPU, w.GPUsPerNode*w.RanksPerGPU)
	}
	if w.Pin != PinExplicit && len(w.CPUs) > 0 {
		bad("workers.cpus", "is used only with pin = \"explicit\" (pin is %q)", w.Pin)
	}
	nw := t.WorkerRanksPerNode()
	if t.Managers.Fanout >= 1 && nw >= 0 && t.Managers.Fanout <= nw {
		bad("managers.fanout", "%d leaves no room for child managers beside %d worker ranks per node (need at least %d)",
			t.Managers.Fanout, nw, nw+1)
	}
	if w.RanksPerNode >= 0 && w.SlotsPerRank >= 0 && w.CPUsPerNode >= 0 {
		errs = append(errs, t.shapeErrors(nw, w.CPUsPerNode)...)
	}
	errs = append(errs, t.envErrors()...)
	errs = append(errs, t.pythonErrors()...)
	errs = append(errs, t.allocErrors()...)
	if len(errs) == 0 {
		return nil
	}
	return joinSorted(errs)
}

// shapeErrors checks that nw worker ranks fit a node of cpus CPUs (0:
// unknown, checked later at plan time) under the pinning policy.
func (t *Topology) shapeErrors(nw, cpus int) []error {
	var errs []error
	bad := func(key, format string, a ...any) {
		errs = append(errs, t.src.errAt(key, fmt.Sprintf(format, a...)))
	}
	w := t.Workers
	switch w.Pin {
	case PinExplicit:
		if len(w.CPUs) == 0 {
			bad("workers.cpus", "pin = \"explicit\" needs one cpulist per worker rank")
			break
		}
		if len(w.CPUs) != nw {
			bad("workers.cpus", "%d cpulists for %d worker ranks per node", len(w.CPUs), nw)
		}
		var all CPUSet
		for i, s := range w.CPUs {
			set, err := ParseCPUList(s, cpus)
			if err != nil {
				bad("workers.cpus", "element %d: %v", i, err)
				continue
			}
			switch {
			case set.IsEmpty():
				bad("workers.cpus", "element %d (%q) is empty", i, s)
			case set.Intersects(all):
				bad("workers.cpus", "element %d (%q) overlaps an earlier list", i, s)
			case w.SlotsPerRank > set.Len():
				bad("workers.slots_per_rank", "%d slots do not fit the %d CPUs of cpus element %d (%q)", w.SlotsPerRank, set.Len(), i, s)
			}
			all = all.Union(set)
		}
	case PinCompact, PinSpread:
		if cpus == 0 {
			break
		}
		if nw > cpus {
			bad("workers.ranks_per_node", "%d pinned worker ranks do not fit %d CPUs per node", nw, cpus)
			break
		}
		if w.SlotsPerRank > 0 && nw*w.SlotsPerRank > cpus {
			bad("workers.slots_per_rank", "%d worker ranks × %d slots pinned need %d CPUs; a node has %d",
				nw, w.SlotsPerRank, nw*w.SlotsPerRank, cpus)
		}
	}
	return errs
}

func (t *Topology) envErrors() []error {
	var errs []error
	check := func(table string, env map[string]string, gpuOK bool) {
		for _, k := range sortedKeys(env) {
			key := join(table, k)
			if !validEnvName(k) {
				errs = append(errs, t.src.errAt(key, fmt.Sprintf("%q is not a valid environment variable name", k)))
			}
			names, err := parseTemplate(env[k])
			if err != nil {
				errs = append(errs, t.src.errAt(key, err.Error()))
				continue
			}
			for _, n := range names {
				if n == "gpu" && !gpuOK {
					msg := "{gpu} is defined only for worker ranks with GPUs (workers.gpus_per_node > 0)"
					errs = append(errs, t.src.errAt(key, msg))
				}
			}
		}
	}
	check("env", t.Env, false)
	check("workers.env", t.Workers.Env, t.Workers.GPUsPerNode > 0)
	return errs
}

// pythonErrors checks [python].
func (t *Topology) pythonErrors() []error {
	var errs []error
	bad := func(key, format string, a ...any) {
		errs = append(errs, t.src.errAt(key, fmt.Sprintf(format, a...)))
	}
	p := t.Python
	if s := p.Interpreter; strings.ContainsFunc(s, func(c rune) bool { return c <= ' ' }) {
		bad("python.interpreter", "%q is not a program path: give the interpreter alone (\"/usr/bin/python3\"), no arguments, no spaces", s)
	}
	for i, e := range p.Path {
		switch {
		case e == "":
			bad("python.path", "element %d is empty", i)
		case strings.ContainsAny(e, ":\x00\n"):
			bad("python.path", "element %d (%q) holds ':' or a control character: give one directory per element", i, e)
		}
	}
	if p.Threads < 0 {
		bad("python.threads", "%d is below the minimum 0 (0: the worker rank's, workers.blas_threads)", p.Threads)
	} else if p.Threads > MaxCPUs {
		bad("python.threads", "%d is above the maximum %d", p.Threads, MaxCPUs)
	}
	return errs
}

// allocErrors checks [alloc].
func (t *Topology) allocErrors() []error {
	var errs []error
	bad := func(key, format string, a ...any) {
		errs = append(errs, t.src.errAt(key, fmt.Sprintf(format, a...)))
	}
	a := t.Alloc
	if !a.Enabled() {
		if t.allocTable {
			bad("alloc.scheduler", "is required in [alloc]: \"slurm\" or \"pbs\" (or remove the table to turn automatic allocation off)")
		}
		return errs
	}
	switch q := t.allocQueueKey; {
	case q == "alloc.partition" && a.Scheduler == SchedPBS:
		bad(q, "PBS has queues: write queue = %q", a.Partition)
	case q == "alloc.queue" && a.Scheduler == SchedSLURM:
		bad(q, "SLURM has partitions: write partition = %q", a.Partition)
	}
	word := func(key, v string) {
		if strings.ContainsFunc(v, func(c rune) bool { return c <= ' ' || c > '~' || strings.ContainsRune("\"'`$\\;&|<>()*?[]{}!#~", c) }) {
			bad(key, "%q: give one word, with no spaces, quotes or shell characters", v)
		}
	}
	if t.allocQueueKey != "" {
		word(t.allocQueueKey, a.Partition)
	}
	word("alloc.account", a.Account)
	if a.Qlaunch != "" && strings.ContainsFunc(a.Qlaunch, func(c rune) bool { return c < ' ' || c == 0x7f }) {
		bad("alloc.qlaunch", "%q holds a control character: give the path of the qlaunch binary", a.Qlaunch)
	}
	for i, o := range a.Options {
		switch {
		case o == "":
			bad("alloc.options", "element %d is empty", i)
		case strings.ContainsAny(o, "\x00\n\r"):
			bad("alloc.options", "element %d (%q) holds a line break or NUL: give one argument per element", i, o)
		case i == 0 && !strings.HasPrefix(o, "-"):
			bad("alloc.options", "element 0 (%q) is not an option: give %s options such as [\"--qos=low\"], one argument per element (the script is qlaunch's)", o, submitCommand(a.Scheduler))
		}
	}
	for _, c := range []struct {
		key string
		v   int
	}{{"alloc.nodes", a.Nodes}, {"alloc.max_allocations", a.MaxAllocations}, {"alloc.backlog", a.Backlog}} {
		if c.v < 1 {
			bad(c.key, "%d is below the minimum 1", c.v)
		}
	}
	if a.Walltime < 0 || a.Walltime%time.Second != 0 {
		bad("alloc.walltime", "%v is not a whole, non-negative number of seconds (such as \"30m\" or \"2h\"; 0: the scheduler's limit)", a.Walltime)
	}
	if a.BacklogFor < 0 {
		bad("alloc.backlog_for", "%v is negative", a.BacklogFor)
	}
	if a.IdleTimeout <= 0 {
		bad("alloc.idle_timeout", "%v is not a positive duration", a.IdleTimeout)
	}
	if a.DrainLead < time.Second || a.DrainLead%time.Second != 0 {
		bad("alloc.drain_lead", "%v is not a whole number of seconds, at least 1s", a.DrainLead)
	} else if a.Walltime > 0 && a.DrainLead >= a.Walltime {
		bad("alloc.drain_lead", "%v leaves nothing of the walltime %v: the ranks would drain as they start", a.DrainLead, a.Walltime)
	}
	return errs
}

func submitCommand(s Scheduler) string {
	if s == SchedPBS {
		return "qsub"
	}
	return "sbatch"
}

func validEnvName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '_' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || i > 0 && c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// MetricsAddr returns the address a metrics endpoint given as spec listens
// on: "" for none; a port alone, or ":PORT", on loopback (127.0.0.1);
// HOST:PORT as given.
func MetricsAddr(spec string) (string, error) {
	if spec == "" {
		return "", nil
	}
	if !strings.Contains(spec, ":") {
		spec = ":" + spec
	}
	host, port, err := net.SplitHostPort(spec)
	if err != nil {
		return "", fmt.Errorf("%q is not a port or HOST:PORT", spec)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
		return "", fmt.Errorf("%q: port %q is not a number in 0..65535", spec, port)
	}
	if host == "" {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port), nil
}
