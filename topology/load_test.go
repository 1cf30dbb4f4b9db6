package topology

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseEmptyIsDefault(t *testing.T) {
	got, err := Parse("empty.toml", nil)
	if err != nil {
		t.Fatal(err)
	}
	want := Default()
	got.src, want.src = source{}, source{}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Parse(empty) = %+v, want %+v", got, want)
	}
	if want.Runtime.Port != 7472 || want.Runtime.Compression != CompressZstd || want.Runtime.LogLevel.Level().String() != "INFO" ||
		want.Managers.Fanout != 32 || want.Workers.BLASThreads != 1 || want.Workers.GPUEnv != GPUCUDA || want.Server.Placement != PlaceShared {
		t.Fatalf("unexpected defaults %+v", want)
	}
}

func TestParseFull(t *testing.T) {
	text := `
[runtime]
port = 9000
compression = "s2"
compress_threshold = 0
log_level = "debug"
address_file = "/shared/${SLURM_JOB_ID}.addr"
secret_file = "~/.qlaunch/secret"
network = "10.1.0.0/16"
heartbeat = "250ms"
heartbeat_timeout = "2s"
handshake_timeout = "3s"
max_pending_handshakes = 16
accept_rate = 50
outbox_bytes = 4194304
max_client_tasks = 1000
max_client_bytes = 2097152
max_queued_tasks = 5000
max_queued_bytes = 8388608
outbox_stall = "3s"

[tls]
cert_file = "rank.pem"
key_file = "rank.key"
ca_file = "/etc/site/ca.pem"
verify_clients = true
server_name = "qlaunch.site"

[server]
placement = "dedicated"
network = "eth0"

[managers]
fanout = 4
network = "auto"

[workers]
ranks_per_node = 2
slots_per_rank = 3
cpus_per_node = 8
pin = "explicit"
cpus = ["0-2", "4-6"]
blas_threads = 2
gpu_env = "ZE_AFFINITY_MASK"
restarts = 5
env = { A = "{rank}", B = 7 }

[env]
"QUOTED_KEY" = "x"

[python]
interpreter = "/usr/bin/python3"
path = ["/shared/lib", "src"]
threads = 4
`
	top, err := Parse("full.toml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	want := Topology{
		Runtime: Runtime{Port: 9000, Compression: CompressS2, LogLevel: LogDebug, AddressFile: "/shared/${SLURM_JOB_ID}.addr", SecretFile: "~/.qlaunch/secret", Network: "10.1.0.0/16",
			Heartbeat: 250 * time.Millisecond, HeartbeatTimeout: 2 * time.Second, HandshakeTimeout: 3 * time.Second,
			MaxPendingHandshakes: 16, AcceptRate: 50, OutboxBytes: 4 << 20, OutboxStall: 3 * time.Second,
			MaxClientTasks: 1000, MaxClientBytes: 2 << 20, MaxQueuedTasks: 5000, MaxQueuedBytes: 8 << 20},
		TLS:      TLS{CertFile: "rank.pem", KeyFile: "rank.key", CAFile: "/etc/site/ca.pem", VerifyClients: true, ServerName: "qlaunch.site"},
		Server:   Server{Placement: PlaceDedicated, Network: "eth0"},
		Managers: Managers{Fanout: 4, Network: NetworkAuto},
		Workers: Workers{RanksPerNode: 2, SlotsPerRank: 3, CPUsPerNode: 8, Pin: PinExplicit, CPUs: []string{"0-2", "4-6"},
			BLASThreads: 2, RanksPerGPU: 1, GPUEnv: GPULevel, Restarts: 5, Env: map[string]string{"A": "{rank}", "B": "7"}},
		Env:    map[string]string{"QUOTED_KEY": "x"},
		Python: Python{Interpreter: "/usr/bin/python3", Path: []string{"/shared/lib", "src"}, Threads: 4},
		Alloc:  Default().Alloc,
	}
	top.src = source{}
	if !reflect.DeepEqual(*top, want) {
		t.Fatalf("got  %+v\nwant %+v", *top, want)
	}
	env := map[string]string{"SLURM_JOB_ID": "42"}
	if got := top.Runtime.AddressPath(func(k string) string { return env[k] }); got != "/shared/42.addr" {
		t.Errorf("AddressPath = %q", got)
	}
	env["QLAUNCH_ADDRESS_FILE"] = "/x/addr"
	if got := top.Runtime.AddressPath(func(k string) string { return env[k] }); got != "/x/addr" {
		t.Errorf("AddressPath with QLAUNCH_ADDRESS_FILE = %q", got)
	}
	if got := top.Runtime.SecretPath(func(k string) string { return env[k] }); got != "~/.qlaunch/secret" {
		t.Errorf("SecretPath = %q", got)
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name, text string
		want       []string
	}{
		{"runtime durations and tls", `[runtime]
heartbeat = "soon"
heartbeat_timeout = "100ms"
handshake_timeout = 5
max_pending_handshakes = 0

[tls]
cert_file = "c.pem"
verify_clients = "yes"
`, []string{
			"t.toml:2:1: runtime.heartbeat: \"soon\" is not a duration (such as \"500ms\" or \"2s\")",
			"t.toml:3:1: runtime.heartbeat_timeout: 100ms must be at least two heartbeats (2 × 1s), or 0 for ten",
			"t.toml:4:1: runtime.handshake_timeout: must be a duration string such as \"500ms\" or \"2s\", not an integer",
			"t.toml:5:1: runtime.max_pending_handshakes: 0 is below the minimum 1",
			"t.toml:7:1: tls.ca_file: must be set with TLS on: every rank accepts and dials, so needs a certificate, its key and the CA",
			"t.toml:7:1: tls.key_file: must be set with TLS on: every rank accepts and dials, so needs a certificate, its key and the CA",
			"t.toml:9:1: tls.verify_clients: must be a boolean, not a string",
		}},
		{"syntax", "[runtime\nport = 1\n", []string{
			"t.toml:2:9: expected '.' or ']' to end table name, but got '\\n' instead",
		}},
		{"all at once", `# a comment
[runtime]
port = "x"
compression = "lz4"
foo = 1

[workers]
  pin = "compact"
  ranks_per_node = 9
  cpus_per_node = 4
  env.GOOD = "{rank}"
  env.BAD = "{bogus}"
  env.GPU = "{gpu}"

[bogus]
a = 1

[managers]
fanout = 0
`, []string{
			"t.toml:3:1: runtime.port: must be an integer, not a string",
			"t.toml:4:1: runtime.compression: \"lz4\" is not one of zstd, s2, none",
			"t.toml:5:1: runtime.foo: unknown key (known keys: accept_rate, address_file, compress_threshold, compression, handshake_timeout, heartbeat, heartbeat_timeout, log_level, max_client_bytes, max_client_tasks, max_pending_handshakes, max_queued_bytes, max_queued_tasks, max_result_bytes, network, outbox_bytes, outbox_stall, port, secret_file)",
			"t.toml:9:3: workers.ranks_per_node: 9 pinned worker ranks do not fit 4 CPUs per node",
			"t.toml:12:3: workers.env.BAD: unknown placeholder {bogus} (known: {rank}, {local_rank}, {node}, {host}, {gpu})",
			"t.toml:13:3: workers.env.GPU: {gpu} is defined only for worker ranks with GPUs (workers.gpus_per_node > 0)",
			"t.toml:15:1: bogus: unknown key (known keys: alloc, env, managers, python, runtime, server, tls, workers)",
			"t.toml:19:1: managers.fanout: 0 is below the minimum 1",
		}},
		{"shapes", `[workers]
gpus_per_node = 4
ranks_per_gpu = 2
ranks_per_node = 6
[managers]
fanout = 6
`, []string{
			"t.toml:4:1: workers.ranks_per_node: 6 worker ranks do not fit 4 GPUs with 2 ranks per GPU (need 8)",
			"t.toml:6:1: managers.fanout: 6 leaves no room for child managers beside 6 worker ranks per node (need at least 7)",
		}},
		{"explicit", `[workers]
pin = "explicit"
cpus = ["0-3", "3-5", "x", ""]
slots_per_rank = 3
cpus_per_node = 8
ranks_per_node = 2
`, []string{
			"t.toml:3:1: workers.cpus: 4 cpulists for 2 worker ranks per node",
			"t.toml:3:1: workers.cpus: element 1 (\"3-5\") overlaps an earlier list",
			"t.toml:3:1: workers.cpus: element 2: cpulist \"x\" at \"x\": invalid cpulist",
			"t.toml:3:1: workers.cpus: element 3 (\"\") is empty",
		}},
		{"pinned slots", "[workers]\npin = \"spread\"\nranks_per_node = 2\nslots_per_rank = 5\ncpus_per_node = 8\n", []string{
			"t.toml:4:1: workers.slots_per_rank: 2 worker ranks × 5 slots pinned need 10 CPUs; a node has 8",
		}},
		{"types", "runtime = 3\nenv = [1]\n[workers]\ncpus = \"0-3\"\ngpu_env = \"NVIDIA\"\n[server]\nplacement = 1\n", []string{
			"t.toml:1:1: runtime: must be a table, not an integer",
			"t.toml:2:1: env: must be a table of strings, not an array",
			"t.toml:4:1: workers.cpus: must be an array of strings, not a string",
			"t.toml:5:1: workers.gpu_env: \"NVIDIA\" is not one of CUDA_VISIBLE_DEVICES, ROCR_VISIBLE_DEVICES, ZE_AFFINITY_MASK",
			"t.toml:7:1: server.placement: must be a string, not an integer",
		}},
		{"inline and dotted", "workers = { pin = \"none\", bogus = 1 }\nmanagers.fanout = 8\nmanagers.fan_out = 3\n\"env\".\"1BAD\" = \"x\"\n", []string{
			"t.toml:1:27: workers.bogus: unknown key (known keys: blas_threads, cpus, cpus_per_node, env, gpu_env, gpus_per_node, pin, ranks_per_gpu, ranks_per_node, restarts, slots_per_rank)",
			"t.toml:3:1: managers.fan_out: unknown key (did you mean fanout?)",
			"t.toml:4:1: env.1BAD: \"1BAD\" is not a valid environment variable name",
		}},
		{"arrays of tables", "x = 1\n[[group]]\nname = \"a\"\n[[group]]\nname = \"b\"\n", []string{
			"t.toml:1:1: x: unknown key (known keys: alloc, env, managers, python, runtime, server, tls, workers)",
			"t.toml:2:1: group: unknown key (known keys: alloc, env, managers, python, runtime, server, tls, workers)",
		}},
		{"multi-line strings", "[env]\nA = \"\"\"\nport = 1\n\"\"\"\nB = '''\n[x]'''\n[runtime]\nbad = 1\n", []string{
			"t.toml:8:1: runtime.bad: unknown key (known keys: accept_rate, address_file, compress_threshold, compression, handshake_timeout, heartbeat, heartbeat_timeout, log_level, max_client_bytes, max_client_tasks, max_pending_handshakes, max_queued_bytes, max_queued_tasks, max_result_bytes, network, outbox_bytes, outbox_stall, port, secret_file)",
		}},
		{"networks", "[runtime]\nnetwork = \"10.1.0.0/33\"\n[server]\nnetwork = \"a b\"\n[managers]\nnetwork = 3\n", []string{
			"t.toml:2:1: runtime.network: \"10.1.0.0/33\" is not a CIDR: netip.ParsePrefix(\"10.1.0.0/33\"): prefix length out of range",
			"t.toml:4:1: server.network: \"a b\" is not auto, a CIDR, an address or an interface name",
			"t.toml:6:1: managers.network: must be a string, not an integer",
		}},
		{"python", "[python]\ninterpreter = \"/usr/bin/python3 -u\"\npath = [\"a:b\", \"\", 3]\nthreads = -1\nthread = 2\n", []string{
			"t.toml:2:1: python.interpreter: \"/usr/bin/python3 -u\" is not a program path: give the interpreter alone (\"/usr/bin/python3\"), no arguments, no spaces",
			"t.toml:3:1: python.path: element 2 must be a string, not an integer",
			"t.toml:4:1: python.threads: -1 is below the minimum 0 (0: the worker rank's, workers.blas_threads)",
			"t.toml:5:1: python.thread: unknown key (known keys: interpreter, path, threads)",
		}},
		{"python path", "[python]\npath = [\"a:b\", \"\"]\n", []string{
			"t.toml:2:1: python.path: element 0 (\"a:b\") holds ':' or a control character: give one directory per element",
			"t.toml:2:1: python.path: element 1 is empty",
		}},
		{"metrics", "[server]\nmetrics = \"localhost\"\n", []string{
			"t.toml:2:1: server.metrics: \":localhost\": port \"localhost\" is not a number in 0..65535",
		}},
		{"range", "[runtime]\nport = 70000\ncompress_threshold = -1\naddress_file = \"\"\n[workers]\nslots_per_rank = 99999999999\n", []string{
			"t.toml:2:1: runtime.port: 70000 is not a port in 1..65534 (managers listen on port+1)",
			"t.toml:3:1: runtime.compress_threshold: -1 is negative",
			"t.toml:4:1: runtime.address_file: must not be empty",
			"t.toml:6:1: workers.slots_per_rank: 99999999999 is out of range",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			top, err := Parse("t.toml", []byte(tt.text))
			if err == nil {
				t.Fatalf("Parse succeeded: %+v", top)
			}
			if top != nil {
				t.Errorf("Parse returned a topology with an error")
			}
			got := strings.Split(err.Error(), "\n")
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Fatalf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
			for _, e := range unjoin(err) {
				var ce *ConfigError
				if !errors.As(e, &ce) || !ce.BadInput() {
					t.Errorf("%v is not a *ConfigError", e)
				}
			}
		})
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load("/nonexistent/x.toml")
	var ce *ConfigError
	if !errors.As(err, &ce) || ce.File != "/nonexistent/x.toml" {
		t.Fatalf("Load(missing) = %v, want a *ConfigError naming the file", err)
	}
}

func TestIndexKeys(t *testing.T) {
	text := "a = 1 # c\n[t . \"q.k\"]\nx.y = { z = [1, {w = 2}], 'lit' = \"s#\" }\n[[arr]]\nk = \"\"\"\nm = 1\n\"\"\"\n"
	got := indexKeys(text)
	want := map[string]pos{
		"a": {1, 1}, "t": {2, 1}, `t."q.k"`: {2, 1}, `t."q.k".x`: {3, 1}, `t."q.k".x.y`: {3, 1},
		`t."q.k".x.y.z`: {3, 9}, `t."q.k".x.y.z.w`: {3, 18}, `t."q.k".x.y.lit`: {3, 27},
		"arr": {4, 1}, "arr.k": {5, 1},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("indexKeys = %v\nwant %v", got, want)
	}
}

func FuzzLoad(f *testing.F) {
	for _, s := range []string{
		"", "[runtime]\nport = 1\n", "[workers]\npin = \"explicit\"\ncpus = [\"0-3\"]\n",
		"[workers.env]\nA = \"{rank}{gpu}\"\n", "a.b.c = 1\n[[x]]\ny = { z = 2 }\n", "[env]\nA = '''\n[x]\n'''\n",
		"[managers]\nfanout = 1\n[workers]\nranks_per_node = 3\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		top, err := Parse("f.toml", []byte(s))
		if err == nil {
			if top == nil {
				t.Fatal("nil topology without error")
			}
			if verr := top.Validate(); verr != nil {
				t.Fatalf("Parse accepted a topology Validate rejects: %v", verr)
			}
			return
		}
		for _, e := range unjoin(err) {
			var ce *ConfigError
			if !errors.As(e, &ce) {
				t.Fatalf("error %T %v is not a *ConfigError", e, e)
			}
			if ce.File != "f.toml" || ce.Line < 0 || ce.Line > strings.Count(s, "\n")+1 {
				t.Fatalf("bad position in %v", ce)
			}
		}
	})
}

func TestNetworkOf(t *testing.T) {
	for _, c := range []struct {
		name, text                           string
		server, manager, worker, underServer string
	}{
		{"default", "", "auto", "auto", "auto", "auto"},
		{"runtime", "[runtime]\nnetwork = \"ib0\"\n", "ib0", "ib0", "ib0", "ib0"},
		{"per role", "[runtime]\nnetwork = \"ib0\"\n[server]\nnetwork = \"eth0\"\n[managers]\nnetwork = \"10.1.0.0/16\"\n",
			"eth0", "10.1.0.0/16", "ib0", "eth0"},
	} {
		t.Run(c.name, func(t *testing.T) {
			top, err := Parse("t.toml", []byte(c.text))
			if err != nil {
				t.Fatal(err)
			}
			got := []Network{top.NetworkOf(RoleServer | RoleManager), top.NetworkOf(RoleManager), top.NetworkOf(RoleWorker),
				top.ParentNetwork(Rank{Parent: 0}), top.ParentNetwork(Rank{Parent: 3}), top.ParentNetwork(Rank{Parent: -1})}
			want := []Network{Network(c.server), Network(c.manager), Network(c.worker), Network(c.underServer), Network(c.manager), ""}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("server, manager, worker, parent 0, parent 3, no parent = %q, want %q", got, want)
			}
		})
	}
}

func TestMetricsAddr(t *testing.T) {
	tests := []struct{ spec, want, err string }{
		{"", "", ""},
		{"9464", "127.0.0.1:9464", ""},
		{":9464", "127.0.0.1:9464", ""},
		{"0.0.0.0:9464", "0.0.0.0:9464", ""},
		{"[::1]:0", "[::1]:0", ""},
		{"node1:80", "node1:80", ""},
		{"a:b:c", "", `"a:b:c" is not a port or HOST:PORT`},
		{"70000", "", `":70000": port "70000" is not a number in 0..65535`},
	}
	for _, tt := range tests {
		got, err := MetricsAddr(tt.spec)
		msg := ""
		if err != nil {
			msg = err.Error()
		}
		if got != tt.want || msg != tt.err {
			t.Errorf("MetricsAddr(%q) = %q, %q; want %q, %q", tt.spec, got, msg, tt.want, tt.err)
		}
	}
}

func TestParseAlloc(t *testing.T) {
	text := `
[alloc]
scheduler = "slurm"
partition = "debug"
nodes = 2
walltime = "30m"
account = "proj1"
options = ["--qos=low", "--constraint=cpu"]
max_allocations = 3
backlog = 100
backlog_for = "2s"
idle_timeout = "45s"
drain_lead = "30s"
qlaunch = "/opt/qlaunch/bin/qlaunch"
`
	got, err := Parse("a.toml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	want := Alloc{
		Scheduler: SchedSLURM, Partition: "debug", Nodes: 2, Walltime: 30 * time.Minute, Account: "proj1",
		Options: []string{"--qos=low", "--constraint=cpu"}, MaxAllocations: 3, Backlog: 100,
		BacklogFor: 2 * time.Second, IdleTimeout: 45 * time.Second, DrainLead: 30 * time.Second, Qlaunch: "/opt/qlaunch/bin/qlaunch",
	}
	if !reflect.DeepEqual(got.Alloc, want) || !got.Alloc.Enabled() {
		t.Fatalf("alloc = %+v, want %+v", got.Alloc, want)
	}
	def, err := Parse("d.toml", []byte("[alloc]\nscheduler = \"pbs\"\nqueue = \"workq\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	if a := def.Alloc; a.Scheduler != SchedPBS || a.Partition != "workq" || a.Nodes != 1 || a.MaxAllocations != 1 || a.Backlog != 1 ||
		a.BacklogFor != time.Second || a.IdleTimeout != time.Minute || a.DrainLead != time.Minute {
		t.Fatalf("defaults: %+v", a)
	}
	if none, _ := Parse("n.toml", nil); none.Alloc.Enabled() {
		t.Fatal("no [alloc] table, yet enabled")
	}
}

func TestParseAllocErrors(t *testing.T) {
	for _, c := range []struct{ text, want string }{
		{"[alloc]\nnodes = 2\n", "b.toml:1:1: alloc.scheduler: is required in [alloc]"},
		{"[alloc]\nscheduler = \"lsf\"\n", `b.toml:2:1: alloc.scheduler: "lsf" is not one of slurm, pbs`},
		{"[alloc]\nscheduler = \"pbs\"\npartition = \"x\"\n", `b.toml:3:1: alloc.partition: PBS has queues: write queue = "x"`},
		{"[alloc]\nscheduler = \"slurm\"\nqueue = \"x\"\n", `b.toml:3:1: alloc.queue: SLURM has partitions: write partition = "x"`},
		{"[alloc]\nscheduler = \"slurm\"\nnodes = 0\n", "b.toml:3:1: alloc.nodes: 0 is below the minimum 1"},
		{"[alloc]\nscheduler = \"slurm\"\nmax_allocations = 0\n", "b.toml:3:1: alloc.max_allocations: 0 is below the minimum 1"},
		{"[alloc]\nscheduler = \"slurm\"\nbacklog = -1\n", "b.toml:3:1: alloc.backlog: -1 is below the minimum 1"},
		{"[alloc]\nscheduler = \"slurm\"\nwalltime = \"1.5s\"\n", "b.toml:3:1: alloc.walltime: 1.5s is not a whole"},
		{"[alloc]\nscheduler = \"slurm\"\nidle_timeout = \"0s\"\n", "b.toml:3:1: alloc.idle_timeout: 0s is not a positive duration"},
		{"[alloc]\nscheduler = \"slurm\"\nbacklog_for = \"-1s\"\n", "b.toml:3:1: alloc.backlog_for: -1s is negative"},
		{"[alloc]\nscheduler = \"slurm\"\nwalltime = \"1m\"\ndrain_lead = \"2m\"\n", "b.toml:4:1: alloc.drain_lead: 2m0s leaves nothing of the walltime 1m0s"},
		{"[alloc]\nscheduler = \"slurm\"\naccount = \"a b\"\n", `b.toml:3:1: alloc.account: "a b": give one word`},
		{"[alloc]\nscheduler = \"slurm\"\npartition = \"p;rm\"\n", `b.toml:3:1: alloc.partition: "p;rm": give one word`},
		{"[alloc]\nscheduler = \"slurm\"\noptions = [\"qos=low\"]\n", `b.toml:3:1: alloc.options: element 0 ("qos=low") is not an option: give sbatch options`},
		{"[alloc]\nscheduler = \"pbs\"\noptions = [\"-l\", \"\"]\n", "b.toml:3:1: alloc.options: element 1 is empty"},
		{"[alloc]\nscheduler = \"slurm\"\noptions = [\"--a\\nb\"]\n", "alloc.options: element 0 (\"--a\\nb\") holds a line break"},
		{"[alloc]\nscheduler = \"slurm\"\nbogus = 1\n", "b.toml:3:1: alloc.bogus: unknown key (known keys: account, backlog, backlog_for,"},
		{"[alloc]\nscheduler = \"slurm\"\nnodes = \"2\"\n", "b.toml:3:1: alloc.nodes: must be an integer, not a string"},
	} {
		_, err := Parse("b.toml", []byte(c.text))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Parse(%q) = %v, want an error containing %q", c.text, err, c.want)
		}
	}
}
