package topology

import "time"

// Default values of the topology keys.
const (
	DefaultPort              = 7472 // the server's: clients connect to it here
	DefaultManagerPort       = 7473 // a manager waits here for its parent
	DefaultWorkerPort        = 7474 // a manager waits here for its worker ranks
	DefaultCompressThreshold = 0    // the wire's own (launcher/wire.DefaultThreshold, 4096): the default lives there alone
	DefaultAddressFile       = ".qlaunch/addr"
	DefaultFanout            = 32
	DefaultBLASThreads       = 1
	DefaultRestarts          = 3

	DefaultHeartbeat            = time.Second
	DefaultHandshakeTimeout     = 10 * time.Second
	DefaultMaxPendingHandshakes = 128
	DefaultAcceptRate           = 1000
	DefaultOutboxBytes          = 256 << 20

	// How long a stopping rank waits: a relay (server, manager) for its
	// children to leave, a worker rank for its cancelled kernels to
	// return.
	DefaultRelayShutdownWait  = 5 * time.Second
	DefaultWorkerShutdownWait = 2 * time.Second
	// DefaultRestartBackoff is the wait before a supervised worker rank's
	// first restart; each further restart of the rank waits twice as long.
	DefaultRestartBackoff = 100 * time.Millisecond

	DefaultAllocBacklogFor  = time.Second
	DefaultAllocIdleTimeout = time.Minute
	DefaultAllocDrainLead   = time.Minute
	// Admission bounds (Runtime.MaxClientTasks …), launcher's defaults.
	DefaultMaxClientTasks = 1 << 20
	DefaultMaxClientBytes = 512 << 20
	DefaultMaxQueuedTasks = 4 << 20
	DefaultMaxQueuedBytes = 1 << 30
)

// Default returns the topology of an empty file: every key at its default.
func Default() *Topology {
	return &Topology{
		Runtime: Runtime{
			Port:              DefaultPort,
			Compression:       CompressZstd,
			CompressThreshold: DefaultCompressThreshold,
			LogLevel:          LogInfo,
			AddressFile:       DefaultAddressFile,
			Network:           NetworkAuto,

			Heartbeat:            DefaultHeartbeat,
			HandshakeTimeout:     DefaultHandshakeTimeout,
			MaxPendingHandshakes: DefaultMaxPendingHandshakes,
			AcceptRate:           DefaultAcceptRate,
			OutboxBytes:          DefaultOutboxBytes,
			MaxClientTasks:       DefaultMaxClientTasks,
			MaxClientBytes:       DefaultMaxClientBytes,
			MaxQueuedTasks:       DefaultMaxQueuedTasks,
			MaxQueuedBytes:       DefaultMaxQueuedBytes,
		},
		Server:   Server{Placement: PlaceShared},
		Managers: Managers{Fanout: DefaultFanout},
		Workers: Workers{
			Pin:         PinNone,
			BLASThreads: DefaultBLASThreads,
			Restarts:    DefaultRestarts,
			RanksPerGPU: 1,
			GPUEnv:      GPUCUDA,
		},
		Alloc: Alloc{
			Nodes: 1, MaxAllocations: 1, Backlog: 1,
			BacklogFor: DefaultAllocBacklogFor, IdleTimeout: DefaultAllocIdleTimeout, DrainLead: DefaultAllocDrainLead,
		},
	}
}

// WithCPUsPerNode returns a copy of t whose Workers.CPUsPerNode is n when
// the file left it 0 (unknown); otherwise t's own value is kept. Every rank
// must pass the same n, or the ranks' plans differ.
func (t *Topology) WithCPUsPerNode(n int) *Topology {
	c := *t
	if c.Workers.CPUsPerNode == 0 {
		c.Workers.CPUsPerNode = n
	}
	return &c
}

// WorkerRanksPerNode returns the worker ranks the topology puts on each
// node: Workers.RanksPerNode when set, else GPUsPerNode*RanksPerGPU with
// GPUs, else the number of explicit CPU lists, else 1.
func (t *Topology) WorkerRanksPerNode() int {
	w := t.Workers
	switch {
	case w.RanksPerNode > 0:
		return w.RanksPerNode
	case w.GPUsPerNode > 0:
		return w.GPUsPerNode * max(w.RanksPerGPU, 1)
	case w.Pin == PinExplicit && len(w.CPUs) > 0:
		return len(w.CPUs)
	}
	return 1
}
