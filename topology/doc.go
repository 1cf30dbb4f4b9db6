// Package topology reads a qlaunch topology file and computes the plan of a
// job: from the topology, the scheduler's node list and the ranks per node,
// every rank's role, parent, children, listen port, CPU set, GPUs and
// environment. It is pure: no I/O beyond reading the file (Load), no clock,
// no randomness, no goroutines; the same inputs give the same plan on every
// rank. Node lists arrive as plain data ([]string hosts, []int ranks per
// node), never through the slurm or pbs packages.
//
// # The file
//
// A topology file is TOML and says the shape of a job, never node names.
// Every key has a default, so an empty file is a valid topology:
//
//	[runtime]
//	port = 7472                  # server listens on port, managers on port+1
//	compression = "zstd"         # zstd | s2 | none
//	compress_threshold = 0       # frames below this many bytes go plain (0: the wire's, 4096)
//	log_level = "info"           # debug | info | warn | error
//	address_file = ".qlaunch/addr"  # where the server's address appears once the tree has joined
//	secret_file = ""             # "" = in a SLURM/PBS job, one generated per job (.qlaunch/job-<id>/secret); "@user" = the user's own
//	network = "auto"             # where ranks listen and dial: auto | interface (ib0) | CIDR (10.1.0.0/16) | address
//	outbox_bytes = 268435456     # bytes held for one peer that does not read; past it the peer is dropped
//	outbox_stall = "0s"          # drop a peer one write to which blocked this long; 0 = heartbeat_timeout
//	max_result_bytes = 0         # a bigger task result fails its task (size and limit named); 0 = the frame limit less 1 KiB
//	max_client_tasks = 1048576   # tasks one client has in flight (admission: past it the client is not read, its map waits)
//	max_client_bytes = 536870912 # their body bytes (512 MiB)
//	max_queued_tasks = 4194304   # tasks of all clients in flight through the server or a manager
//	max_queued_bytes = 1073741824  # their body bytes (1 GiB); the defaults suit a 24 GiB node (~300 B a task at the server)
//
//	[server]
//	placement = "shared"         # shared: rank 0 = server + node 0's manager
//	                             # dedicated: rank 0 = server alone, rank 1 = node 0's manager
//	network = ""                 # "" = runtime.network; the server's own (clients reach it there)
//	metrics = ""                 # "" = none; "9464" or "HOST:PORT": Prometheus metrics over HTTP (loopback unless HOST says)
//	[managers]
//	fanout = 32                  # most children of any rank, its own worker ranks included
//	network = ""                 # "" = runtime.network
//
//	[workers]
//	ranks_per_node = 0           # 0 = gpus_per_node*ranks_per_gpu, else len(cpus) when explicit, else 1
//	slots_per_rank = 0           # 0 = cpus_per_node / worker ranks (at least 1), or the explicit list's size
//	cpus_per_node = 0            # 0 = supplied at plan time (WithCPUsPerNode)
//	pin = "none"                 # none | compact | spread | explicit
//	cpus = ["0-7", "8-15"]       # explicit: one Linux cpulist per worker rank
//	blas_threads = 1             # OMP/OPENBLAS/MKL/NUMEXPR/VECLIB thread variables; 0 = unset
//	gpus_per_node = 0
//	ranks_per_gpu = 1
//	gpu_env = "CUDA_VISIBLE_DEVICES"  # or ROCR_VISIBLE_DEVICES, ZE_AFFINITY_MASK
//	restarts = 3                 # times a worker-rank process the runtime started (qlaunch run) is started again after it died; 0 = never
//
//	[workers.env]                # every worker rank; templates {rank} {local_rank} {node} {host} {gpu}
//	MY_VAR = "w{rank}-gpu{gpu}"
//
//	[env]                        # every rank (no {gpu})
//
//	[python]                     # the Python executors of worker ranks (kernels/python)
//	interpreter = ""             # "" = $QLAUNCH_PYTHON, else /usr/bin/python3, else python3
//	path = []                    # directories put first on the executors' PYTHONPATH
//	threads = 0                  # OMP/MKL/OPENBLAS/NUMEXPR/VECLIB threads per executor; 0 = the rank's (blas_threads)
//
//	[alloc]                      # automatic allocation; absent = off
//	scheduler = "slurm"          # slurm | pbs (required in the table)
//	partition = ""               # slurm partition ("" = the default); pbs: queue = ""
//	nodes = 1                    # nodes per allocation
//	walltime = "0s"              # each allocation's limit, whole seconds; 0 = the scheduler's
//	account = ""                 # account or project charged
//	options = []                 # more sbatch/qsub options, one argument each
//	max_allocations = 1          # allocations submitted and not ended at once
//	backlog = 1                  # queued tasks that call for an allocation …
//	backlog_for = "1s"           # … when they last this long
//	idle_timeout = "1m"          # an allocation idle this long (no backlog) drains and ends
//	drain_lead = "1m"            # the scheduler signals the ranks to drain this long before the walltime
//	qlaunch = ""                 # the qlaunch binary on the new nodes; "" = the server's own
//
// {node} is the node's index in the node list, {host} its name, {gpu} the
// rank's GPUs (comma-separated node-local indices).
//
// Decoding is strict. An unknown key, a value of the wrong type, a bad
// enum value, a failed check or an impossible shape (more pinned worker
// ranks × slots than CPUs, worker ranks that do not match GPUs × ranks per
// GPU, overlapping explicit cpulists, a fanout with no room for child
// managers) is a *ConfigError naming file, line, column and key, and Parse
// reports all of them at once, joined with errors.Join. BurntSushi/toml
// does not expose key positions, so the package keeps its own key → line
// index over the file text. ConfigError and InputError have BadInput() so
// that the qlaunch command exits 2 on them.
//
// # The runtime settings
//
// The runtime reads t.Runtime: Port (int), Compression (CompressZstd,
// CompressS2, CompressNone), CompressThreshold (bytes), LogLevel (with
// Level() for log/slog), AddressFile and SecretFile. Use
// Runtime.AddressPath(getenv) and Runtime.SecretPath(getenv) for the paths
// to use: $QLAUNCH_ADDRESS_FILE and $QLAUNCH_SECRET_FILE, which the scripts
// of "qlaunch script" export per job, take precedence; otherwise the file's
// value with $VAR and ${VAR} expanded.
//
// # The plan
//
// Ranks are laid out node by node in node-list order: node i holds ranks
// starting at the sum of the earlier nodes' counts. Its first rank is its
// manager (under the dedicated placement node 0 first holds the server,
// rank 0, then its manager, rank 1); the rest are worker ranks, local worker
// index 0, 1, … Each worker rank's parent is its own node's manager.
//
// The managers form a complete tree in breadth-first node order, where
// every manager has up to k = fanout − (most worker ranks of a node) child
// managers, so that no rank has more than fanout children (a dedicated
// server, which has no worker ranks, takes up to fanout). Tree position 0
// is the server (node 0's manager under the shared placement); with r the
// server's arity, position h > 0 has parent 0 when h ≤ r, else
// (h−r−1)/k+1, and children r+(h−1)k+1 … r+hk. The depth is about
// log_k(nodes): 1,000 nodes under fanout 32 with a dedicated server need
// two levels of managers. Because positions are closed formulas, RankOf
// computes one rank's entry without building the plan.
//
// Every link is dialled by the child: Rank.ParentHost and Rank.ParentPort
// (or Plan.ParentAddr) give where, on the parent's network
// (Topology.ParentNetwork; a rank listens on Topology.NetworkOf its roles).
// The plan holds node names, not addresses: each node resolves a network
// to an address itself (auto: the node name's address when local, else
// the first interface that is up and not loopback, else loopback; an
// interface name; a CIDR; one address), and a child finds its parent's
// address among those the parent's node name resolves to, in that network. The server listens on Runtime.Port,
// managers on Runtime.Port+1 (+1 more per earlier node with the same host
// name, so that a node list repeating one host still works unpinned);
// worker ranks listen on nothing (Port 0).
//
// Pinning gives each worker rank w of a node with C CPUs, W worker ranks and
// S slots per rank: compact, CPUs w·S … w·S+S−1; spread, CPUs from w·⌊C/W⌋,
// S of them (ranks spread evenly over the node, each contiguous); explicit,
// the w-th list of workers.cpus; none, no CPU set. Server and manager ranks
// are never pinned: they mostly wait on the network. Worker rank w gets GPU
// ⌊w / ranks_per_gpu⌋, written to gpu_env.
//
// The JSON form of a plan ("qlaunch plan --format json") is
// {"ranks":[…]} with the fields of Rank; "role" joins two roles with "+".
//
// # cpulists
//
// ParseCPUList follows the Linux kernel's bitmap_parselist grammar and
// CPUSet.String its canonical printing; see ParseCPUList.
package topology
