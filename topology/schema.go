package topology

import (
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"time"
)

// Topology is a decoded topology file: the shape of a qlaunch job, never its
// node names. Load and Parse return it with defaults filled in for every key
// the file leaves out; Validate checks it.
type Topology struct {
	Runtime  Runtime
	TLS      TLS
	Server   Server
	Managers Managers
	Workers  Workers
	Python   Python
	// Alloc, when its Scheduler is set, lets the server grow the job by
	// itself (table [alloc]): see Alloc.
	Alloc Alloc
	// Env is set in every rank's environment (templates allowed, {gpu} only
	// for worker ranks); Workers.Env overrides it for worker ranks.
	Env map[string]string

	// src locates keys in the file, for errors found after decoding.
	src source
	// allocTable is set when the file has an [alloc] table;
	// allocQueueKey is the key that named its partition or queue.
	allocTable    bool
	allocQueueKey string
}

// Runtime holds the settings the runtime reads (table [runtime]).
type Runtime struct {
	// Port is the base TCP port: the server listens on Port, every manager
	// on Port+1; worker ranks listen on nothing (they dial their manager).
	// Key port, default 7472.
	Port int
	// Compression is the frame compression, key compression: zstd (default),
	// s2 or none.
	Compression Compression
	// CompressThreshold is the frame payload size in bytes below which
	// frames are sent plain. Key compress_threshold, default 0: the link
	// layer's threshold (4096 bytes).
	CompressThreshold int
	// LogLevel is the runtime's log level, key log_level: debug, info
	// (default), warn or error.
	LogLevel LogLevel
	// AddressFile is where the server writes its address once the whole
	// tree has joined. Key address_file, default ".qlaunch/addr"; relative
	// paths are relative to the working directory of the server rank (the
	// submit directory under srun and mpiexec). May hold $VAR or ${VAR}; see
	// AddressPath.
	AddressFile string
	// SecretFile holds the job secret every connection must prove. Key
	// secret_file, default "": in a scheduler's job, one secret generated
	// per job in .qlaunch/job-<id>/ (outside one, the user's default
	// file); "@user" asks for the user's long-lived secret; see SecretPath
	// and wire.ResolveSecretPath.
	SecretFile string
	// Network is the network the server and managers listen on and their
	// children dial: key network, default auto. See Network.
	Network Network
	// Heartbeat is the interval of liveness messages on idle links, key
	// heartbeat (a Go duration, "500ms"), default 1s.
	Heartbeat time.Duration
	// HeartbeatTimeout is how long a silent peer is waited for before it
	// is taken as lost (a hung rank is found within HeartbeatTimeout plus
	// one Heartbeat); a supervised worker rank not connected this long
	// (at least 5 s) after its start is killed. Key heartbeat_timeout,
	// default 0: ten heartbeats.
	HeartbeatTimeout time.Duration
	// HandshakeTimeout bounds the authentication of one connection, key
	// handshake_timeout, default 10s.
	HandshakeTimeout time.Duration
	// MaxPendingHandshakes bounds the connections one listener
	// authenticates at once (more evict the oldest), key
	// max_pending_handshakes, default 128.
	MaxPendingHandshakes int
	// AcceptRate bounds the connections one listener takes per second
	// (more are refused as busy), key accept_rate, default 1000.
	AcceptRate int
	// OutboxBytes bounds the bytes the server or a manager holds for one
	// peer (a client, a child) that does not read: past it the peer is
	// dropped, a client's tasks cancelled. Key outbox_bytes, default
	// 268435456 (256 MiB).
	OutboxBytes int64
	// OutboxStall drops a peer one write to which stayed blocked this
	// long (it does not read). Key outbox_stall, default 0: the
	// heartbeat timeout.
	OutboxStall time.Duration
	// MaxResultBytes bounds one task's result: a larger one fails its
	// task with an error giving its size and the bound. Key
	// max_result_bytes, default 0: the frame limit (64 MiB) less 1 KiB.
	MaxResultBytes int
	// Admission control: the tasks one client has in flight through the
	// server or a manager (submitted, not yet answered) and their body
	// bytes are bounded by MaxClientTasks and MaxClientBytes, those of
	// all clients together by MaxQueuedTasks and MaxQueuedBytes. A client
	// at a bound is not read until its tasks are answered, so its map
	// waits instead of the server's memory growing. Keys
	// max_client_tasks (default 1048576), max_client_bytes (536870912,
	// 512 MiB), max_queued_tasks (4194304), max_queued_bytes
	// (1073741824, 1 GiB): for a node of 24 GiB, where a task in flight
	// costs the server about 300 bytes besides its body.
	MaxClientTasks int
	MaxClientBytes int64
	MaxQueuedTasks int
	MaxQueuedBytes int64
}

// TLS configures optional TLS on every link (table [tls]); the job-secret
// handshake still runs inside it. TLS is on when any file is named, and
// then every rank needs all three (each rank both accepts and dials).
// Relative paths are relative to each rank's working directory.
type TLS struct {
	// CertFile and KeyFile are the rank's PEM certificate and key, keys
	// cert_file and key_file.
	CertFile, KeyFile string
	// CAFile holds the authorities that sign the ranks' certificates, key
	// ca_file.
	CAFile string
	// VerifyClients makes TLS mutual: accepting ranks require the dialling
	// end's certificate. Key verify_clients, default false.
	VerifyClients bool
	// ServerName, when set, is the name dialling ranks require in the
	// certificates of the ranks they dial; default "": the chain is
	// verified, not the names. Key server_name.
	ServerName string
}

// Enabled reports whether TLS is on.
func (t TLS) Enabled() bool { return t.CertFile != "" || t.KeyFile != "" || t.CAFile != "" }

// Server says where the server rank goes (table [server]).
type Server struct {
	// Placement is shared (default: rank 0 is the server and node 0's
	// manager, one process with role "server+manager") or dedicated (rank 0
	// is the server alone on node 0; node 0's manager is rank 1).
	Placement Placement
	// Network overrides Runtime.Network for the server rank (key network,
	// default "": the runtime's), e.g. the network clients reach it on.
	Network Network
	// Metrics is where the server serves Prometheus metrics over HTTP
	// (key metrics, default "": none): a port ("9464", on loopback) or
	// HOST:PORT (":9464" is loopback too; "0.0.0.0:9464" every
	// interface). See MetricsAddr.
	Metrics string
}

// Managers shapes the manager tree (table [managers]).
type Managers struct {
	// Fanout is the most children any rank of the tree has, its own
	// node's worker ranks included. Key fanout, default 32.
	Fanout int
	// Network overrides Runtime.Network for the manager ranks (key
	// network, default "": the runtime's).
	Network Network
}

// Workers shapes the worker ranks of every node (table [workers]).
type Workers struct {
	// RanksPerNode is the number of worker ranks per node. Key
	// ranks_per_node, default 0: GPUsPerNode*RanksPerGPU with GPUs, else
	// len(CPUs) with explicit pinning, else 1. See WorkerRanksPerNode.
	RanksPerNode int
	// SlotsPerRank is the number of worker slots (concurrent tasks) of one
	// worker rank. Key slots_per_rank, default 0: CPUsPerNode divided by the
	// worker ranks of the node (at least 1), or the size of the rank's list
	// with explicit pinning.
	SlotsPerRank int
	// CPUsPerNode is the number of CPUs of a node. Key cpus_per_node,
	// default 0: not known from the file; the caller supplies it at plan
	// time with WithCPUsPerNode (from the scheduler, e.g.
	// SLURM_CPUS_ON_NODE, or from the machine).
	CPUsPerNode int
	// Pin is the CPU pinning policy: none (default), compact, spread or
	// explicit. See the package documentation.
	Pin PinPolicy
	// CPUs lists one cpulist per worker rank of a node (local worker index
	// order), for Pin = explicit. Key cpus.
	CPUs []string
	// BLASThreads is the value of OMP_NUM_THREADS, OPENBLAS_NUM_THREADS,
	// MKL_NUM_THREADS, NUMEXPR_NUM_THREADS and VECLIB_MAXIMUM_THREADS in
	// worker ranks. Key blas_threads, default 1; 0 leaves them unset.
	BLASThreads int
	// GPUsPerNode is the number of GPUs of a node. Key gpus_per_node,
	// default 0.
	GPUsPerNode int
	// RanksPerGPU is the number of worker ranks sharing one GPU. Key
	// ranks_per_gpu, default 1.
	RanksPerGPU int
	// GPUEnv is the variable that gives a worker rank its GPU: key gpu_env,
	// CUDA_VISIBLE_DEVICES (default), ROCR_VISIBLE_DEVICES or
	// ZE_AFFINITY_MASK.
	GPUEnv GPUEnv
	// Restarts is how many times a worker-rank process that the runtime
	// started (attached mode) is started again after it died, per rank,
	// with backoff; a rank that is not restarted takes its slots with it.
	// Key restarts, default 3; 0 never.
	Restarts int
	// Env is set in every worker rank's environment, after the BLAS and GPU
	// variables (so it may override them). Table [workers.env]; values are
	// templates over {rank}, {local_rank}, {node}, {host} and {gpu}.
	Env map[string]string
}

// Python configures the Python executors of worker ranks (table
// [python]): the python kernel (kernels/python) reads them from the worker
// rank's environment, where the plan puts them (PythonEnv).
type Python struct {
	// Interpreter is the Python the executors run, key interpreter,
	// default "": $QLAUNCH_PYTHON, else /usr/bin/python3, else python3 on
	// PATH.
	Interpreter string
	// Path lists directories put first on the executors' PYTHONPATH (the
	// client's sys.path follows with each task), key path, default none.
	// Relative entries are relative to the worker rank's directory.
	Path []string
	// Threads is the value of OMP_NUM_THREADS, MKL_NUM_THREADS,
	// OPENBLAS_NUM_THREADS, NUMEXPR_NUM_THREADS and VECLIB_MAXIMUM_THREADS
	// in each executor (one per worker slot), overriding the rank's. Key
	// threads, default 0: the rank's (workers.blas_threads, 1 by default).
	Threads int
}

// Alloc configures automatic allocation (table [alloc]): while tasks queue,
// the server submits jobs of more capacity through the scheduler's own
// commands (sbatch, qsub) whose ranks join it (qlaunch TOPOLOGY.toml
// --join), and drains them when they are idle. An absent table (Scheduler
// "") turns it off.
type Alloc struct {
	// Scheduler is slurm or pbs, key scheduler; required in the table.
	Scheduler Scheduler
	// Partition is the SLURM partition or the PBS queue of the jobs, key
	// partition (slurm) or queue (pbs), default "": the scheduler's.
	Partition string
	// Nodes is the nodes of one allocation, key nodes, default 1.
	Nodes int
	// Walltime is each allocation's wall-clock limit, key walltime (a Go
	// duration, whole seconds: "30m", "2h"), default 0: the scheduler's.
	Walltime time.Duration
	// Account is the account or project charged, key account, default "".
	Account string
	// Options are more sbatch or qsub options, one argument each (key
	// options, e.g. ["--qos=low"] or ["-l", "place=pack"]).
	Options []string
	// MaxAllocations bounds the allocations submitted and not ended at
	// once, key max_allocations, default 1.
	MaxAllocations int
	// Backlog is the number of queued tasks (waiting for a slot) at and
	// above which an allocation is submitted, key backlog, default 1.
	Backlog int
	// BacklogFor is how long the backlog must last before one is
	// submitted, key backlog_for, default "1s".
	BacklogFor time.Duration
	// IdleTimeout is how long an allocation's ranks run nothing, with no
	// backlog, before it is drained and ends, key idle_timeout, default
	// "1m".
	IdleTimeout time.Duration
	// DrainLead is how long before the walltime the scheduler signals the
	// ranks to drain, key drain_lead, default "1m".
	DrainLead time.Duration
	// Qlaunch is the qlaunch binary as the allocation's nodes see it, key
	// qlaunch, default "": the server's own executable.
	Qlaunch string
}

// Enabled reports whether automatic allocation is on.
func (a Alloc) Enabled() bool { return a.Scheduler != "" }

// Scheduler names a batch scheduler.
type Scheduler string

// The schedulers.
const (
	SchedSLURM Scheduler = "slurm"
	SchedPBS   Scheduler = "pbs"
)

// UnmarshalText accepts slurm or pbs.
func (s *Scheduler) UnmarshalText(b []byte) error {
	return unmarshalEnum((*string)(s), b, "slurm", "pbs")
}

// MarshalText returns the name.
func (s Scheduler) MarshalText() ([]byte, error) { return []byte(s), nil }

// The worker-rank environment variables that carry [python] to the python
// kernel.
const (
	EnvPythonInterpreter = "QLAUNCH_PYTHON"
	EnvPythonPath        = "QLAUNCH_PYTHON_PATH"
	EnvPythonThreads     = "QLAUNCH_PYTHON_THREADS"
)

// PythonEnv returns the variables that carry p to a worker rank: only the
// keys that are set, so a rank's own (e.g. $QLAUNCH_PYTHON) stays otherwise.
// Path entries are joined with ':'.
func (p Python) PythonEnv() map[string]string {
	env := map[string]string{}
	if p.Interpreter != "" {
		env[EnvPythonInterpreter] = p.Interpreter
	}
	if len(p.Path) > 0 {
		env[EnvPythonPath] = strings.Join(p.Path, ":")
	}
	if p.Threads > 0 {
		env[EnvPythonThreads] = fmt.Sprint(p.Threads)
	}
	return env
}

// Compression names a frame compression.
type Compression string

// The compressions.
const (
	CompressZstd Compression = "zstd"
	CompressS2   Compression = "s2"
	CompressNone Compression = "none"
)

// UnmarshalText accepts zstd, s2 or none.
func (c *Compression) UnmarshalText(b []byte) error {
	return unmarshalEnum((*string)(c), b, "zstd", "s2", "none")
}

// MarshalText returns the name.
func (c Compression) MarshalText() ([]byte, error) { return []byte(c), nil }

// LogLevel names a log level.
type LogLevel string

// The log levels.
const (
	LogDebug LogLevel = "debug"
	LogInfo  LogLevel = "info"
	LogWarn  LogLevel = "warn"
	LogError LogLevel = "error"
)

// UnmarshalText accepts debug, info, warn or error.
func (l *LogLevel) UnmarshalText(b []byte) error {
	return unmarshalEnum((*string)(l), b, "debug", "info", "warn", "error")
}

// MarshalText returns the name.
func (l LogLevel) MarshalText() ([]byte, error) { return []byte(l), nil }

// Level returns the slog level (info for an unknown name).
func (l LogLevel) Level() slog.Level {
	switch l {
	case LogDebug:
		return slog.LevelDebug
	case LogWarn:
		return slog.LevelWarn
	case LogError:
		return slog.LevelError
	}
	return slog.LevelInfo
}

// Placement says where the server rank goes.
type Placement string

// The placements.
const (
	PlaceShared    Placement = "shared"
	PlaceDedicated Placement = "dedicated"
)

// UnmarshalText accepts shared or dedicated.
func (p *Placement) UnmarshalText(b []byte) error {
	return unmarshalEnum((*string)(p), b, "shared", "dedicated")
}

// MarshalText returns the name.
func (p Placement) MarshalText() ([]byte, error) { return []byte(p), nil }

// PinPolicy is a CPU pinning policy for worker ranks.
type PinPolicy string

// The pinning policies.
const (
	PinNone     PinPolicy = "none"
	PinCompact  PinPolicy = "compact"
	PinSpread   PinPolicy = "spread"
	PinExplicit PinPolicy = "explicit"
)

// UnmarshalText accepts none, compact, spread or explicit.
func (p *PinPolicy) UnmarshalText(b []byte) error {
	return unmarshalEnum((*string)(p), b, "none", "compact", "spread", "explicit")
}

// MarshalText returns the name.
func (p PinPolicy) MarshalText() ([]byte, error) { return []byte(p), nil }

// GPUEnv is the environment variable that selects a rank's GPUs.
type GPUEnv string

// The GPU variables.
const (
	GPUCUDA  GPUEnv = "CUDA_VISIBLE_DEVICES"
	GPUROCr  GPUEnv = "ROCR_VISIBLE_DEVICES"
	GPULevel GPUEnv = "ZE_AFFINITY_MASK"
)

// UnmarshalText accepts CUDA_VISIBLE_DEVICES, ROCR_VISIBLE_DEVICES or
// ZE_AFFINITY_MASK.
func (g *GPUEnv) UnmarshalText(b []byte) error {
	return unmarshalEnum((*string)(g), b, string(GPUCUDA), string(GPUROCr), string(GPULevel))
}

// MarshalText returns the name.
func (g GPUEnv) MarshalText() ([]byte, error) { return []byte(g), nil }

func unmarshalEnum(dst *string, b []byte, allowed ...string) error {
	s := string(b)
	for _, a := range allowed {
		if s == a {
			*dst = s
			return nil
		}
	}
	return fmt.Errorf("%q is not one of %s", s, strings.Join(allowed, ", "))
}

// Network names a network: auto (the address the node name resolves to,
// else the first interface that is up and not loopback, else loopback), an
// interface name (ib0, hsn0, lo), a CIDR (10.1.0.0/16) or one address.
// The launcher resolves it on each node; the topology checks its form.
type Network string

// NetworkAuto is the default network.
const NetworkAuto Network = "auto"

// UnmarshalText accepts auto, a CIDR, an IP address or an interface name
// (at most 15 printable characters, no space, '/' or ':').
func (n *Network) UnmarshalText(b []byte) error {
	s := string(b)
	switch {
	case s == string(NetworkAuto):
	case strings.Contains(s, "/"):
		if _, err := netip.ParsePrefix(s); err != nil {
			return fmt.Errorf("%q is not a CIDR: %v", s, err)
		}
	default:
		if a, err := netip.ParseAddr(s); err == nil {
			if a.Zone() != "" {
				return fmt.Errorf("%q: an address with a zone is not supported", s)
			}
			break
		}
		if s == "" || len(s) > 15 || strings.ContainsFunc(s, func(c rune) bool { return c <= ' ' || c == ':' || c > '~' }) {
			return fmt.Errorf("%q is not auto, a CIDR, an address or an interface name", s)
		}
	}
	*n = Network(s)
	return nil
}

// MarshalText returns the spec.
func (n Network) MarshalText() ([]byte, error) { return []byte(n), nil }

// NetworkOf returns the network a rank with the given roles listens on:
// the server's or the managers' own, else the runtime's, else auto.
// A child dials its parent on the parent's network.
func (t *Topology) NetworkOf(roles Role) Network {
	n := Network("")
	switch {
	case roles.Has(RoleServer):
		n = t.Server.Network
	case roles.Has(RoleManager):
		n = t.Managers.Network
	}
	if n == "" {
		n = t.Runtime.Network
	}
	if n == "" {
		n = NetworkAuto
	}
	return n
}

// ParentNetwork returns the network rank r dials its parent on: the
// server's when the parent is rank 0 (the server under both placements),
// else the managers'. It is "" for the server, which has no parent.
func (t *Topology) ParentNetwork(r Rank) Network {
	switch {
	case r.Parent < 0:
		return ""
	case r.Parent == 0:
		return t.NetworkOf(RoleServer)
	}
	return t.NetworkOf(RoleManager)
}

// BLASVars are the thread-count variables set to Workers.BLASThreads.
var blasVars = [...]string{"OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS", "VECLIB_MAXIMUM_THREADS"}

// BLASVars returns the names of the BLAS thread variables, in the order
// they are documented.
func BLASVars() []string { return blasVars[:] }
