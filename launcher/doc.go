// Package launcher is the qlaunch runtime: the server, managers and worker
// ranks that run kernels submitted by clients, connected by the
// authenticated, framed and compressed protocol of package wire.
//
// # Roles
//
//	client ──► server ──► manager ──► worker rank (N slots)
//	              │          └──────► manager ──► worker rank …
//	              └─────────► worker rank
//
// The server (RunServer) accepts clients and is the top of the tree. A
// manager (RunManager) relays between its parent and its children. Both are
// the same relay code (node.go): a node places the tasks it receives on its
// children and routes results, log records and status replies back; the
// server's sources are clients, a manager's its parent. Any node may have
// worker ranks and lower managers side by side, so trees of any shape,
// unbalanced included, work alike. A worker rank (RunWorker) runs kernels
// from a kernels.Registry on Slots worker slots.
//
// Every rank is described by one NodeConfig (rank, host, parent, link,
// registry, logger, drain, monitor, supervisor); ServerConfig,
// ManagerConfig and WorkerConfig embed it and add their role's own part
// (listeners and managers to dial, readiness and address file, slots),
// so a field describing a node is declared once. The role commands build
// it with one function from the topology and their shared role flags
// (cmd/cli), package boot from the job's plan; its defaults, as the
// link's (transport.Config), live in package topology.
//
// Either end of a link may dial: worker ranks dial their manager (BQSKit's
// worker port), the server dials the managers it is given (qlaunch server
// ADDR…), a manager given a Parent dials it (the srun/mpirun bootstrap,
// where every rank dials its parent from the plan). The dialler says in its
// wire.Hello which end it is ("worker:child", "server:parent"); clients say
// "client", and only the server accepts them. Every connection proves the
// job secret before any other frame is read (wire.ClientHandshake); a
// connection that fails, or sends a frame that does not decode or that its
// role may not send, is closed and logged, and nothing else is disturbed.
// Dialling (with backoff), TLS, the handshake, socket tuning and every
// link setting with its default are the link layer's, package transport,
// which the client (launcher/client) uses too; LinkConfig is its Config,
// made from a topology by transport.FromTopology.
//
// The client's futures and kerneltest's are tables of package
// kernels/futures, whose contract futurestest.Run checks; the futures a
// kernel gets on a worker rank (exec.go) are still its own.
//
// # Message flow
//
// Tasks go down as batches (wire.KindSubmit) of records "id | body" and
// results come up as batches (wire.KindResult) of the same shape. A relay
// reads only the ids: it renumbers each task with a fresh local id, keeps
// (source, source's id, child) in its table (package sched), and copies the
// body through, so a hop costs one map insert and delete per task. A
// large batch stays in the buffer it was read into, lent to the core
// (relay.Event.Loan), and goes back to its connection (wire.Conn.Recycle)
// once the core keeps no body of it and every frame naming it was
// written: the next large batch is read into it, not into fresh memory
// (node.go's lentBuffer). Every
// message one incoming frame produces for one peer goes into one frame per
// kind. The goroutine that read a frame handles it under the node's lock
// and then writes what it produced itself (wire.Outbox.Drain) unless
// another goroutine is already writing to that peer, which then writes it
// too: no hand-off between goroutines lies on the path of a task, and
// under load many tasks share a frame and many frames share a system call.
// (A loop goroutine owning the state, as in etcd-io/raft, costs two
// goroutine wake-ups per hop.)
//
// The relay's protocol state lives in a pure core, package relay: node.go
// is its I/O shell. Every frame read, peer connected or lost, heartbeat
// tick, timer and supervisor report is one relay.Event given to
// relay.Core.Step under the node's lock by the goroutine that saw it; the
// core returns actions (frames to send, connections to close, the address
// to publish, ready, a rank to kill, a timer to arm) in a deterministic
// order, which the shell carries out. The core holds no socket, goroutine
// or clock: the shell passes the time and what it saw of each connection,
// so every behaviour of the relay is tested by scripts of events and
// expected actions (launcher/relay/testdata).
//
// Isolation: a reader writes to a peer only what fits in that peer's
// socket send buffer (the queue the kernel reports, SIOCOUTQ, against
// half of SO_SNDBUF), so the write cannot block; otherwise the peer's own
// writer goroutine writes it. A peer that does not read (stopped, stuck,
// hostile) is dropped, with a log line, once the bytes held for it pass
// LinkConfig.MaxOutboxBytes or one write to it stays blocked for
// OutboxStall; a dropped client's tasks are cancelled, a dropped child's
// fail or are placed again. Liveness is judged on what a peer sends: a
// peer whose frames wait unread because its reader was writing is not
// held silent.
//
// Placement: each node knows, per child, its worker slots (from wire.Join,
// sent when a child connects and whenever its subtree changes), the tasks
// it holds, and its idle slots and queued tasks (wire.Load, sent by worker
// ranks when these change noticeably). Tasks go to children with unfilled
// idle slots first, then to the child with the fewest tasks per slot.
//
// Local first: a kernel's children (Submit, Map) are queued on its own
// worker rank and run on its slots with no network hop. When a sibling rank
// is idle and this one has a queue, the manager asks it (wire.Load with
// Steal) to hand its oldest queued tasks back up; the manager places them
// like any task, and their results come back to the kernel that asked.
// A relay child sends no load reports: its spare slots are its slots less
// the tasks it holds, so a manager that joins while a worker rank holds a
// queue (a second allocation, package boot's Join) is offered a share of
// it at once, and again whenever it has room.
//
// # Worker slots
//
// A worker rank's slots are tokens. A goroutine holds one while it runs a
// kernel; runners take queued tasks in batches, newest first, and each
// task's result leaves the rank within about 10 ms of its kernel returning
// (at the batch's end or by a periodic check), never held until its batch
// is done: a rank that is lost loses only unfinished tasks. A kernel that
// calls Wait or Next on an incomplete future first runs queued tasks itself
// (up to a bounded depth), then gives its token back and parks; when its
// future is ready it takes a token again ahead of queued tasks. So fork-join
// of any depth and width runs on a single slot. The tokens, the queue and
// these policies are a pure core (package executor) that returns effects
// (start a runner, run a batch inline, resume a parked kernel, start a
// reader, report load); the worker carries them out under one lock
// instead of a loop goroutine owning the state: kernels call the runtime
// synchronously, and a channel round trip per Map or Wait would cost more
// than the work of a tiny task. A kernel's futures live in a
// kernels/futures table, with the same Wait, Next and Cancel contract as
// the client's. Who owns what, and the lock order, are in exec.go.
//
// # Cancellation and failures
//
// A kernel's context is cancelled when its task is. Cancelling a future
// cancels its tasks: queued ones never start, running ones see their
// context end and have their own futures cancelled, tasks handed to the
// parent get a wire.KindCancel that every hop follows down (sched.Cancel).
// A cancelled task's result still travels up, so every hop frees its
// entry. When a kernel returns, the futures it left incomplete are
// cancelled. A client that disconnects has all its tasks cancelled.
//
// A malformed task record fails only its task. The server checks every
// record a client sends (wire.CheckTask: the body decodes, the kernel name
// is valid) and answers a bad one with an error result instead of
// forwarding it; a worker rank that receives a body it cannot decode
// answers it with an error result too and goes on.
//
// When a child's connection breaks, or the child stays silent for
// LinkConfig.HeartbeatTimeout (heartbeats flow both ways every
// LinkConfig.Heartbeat), every task it held fails with a result of status
// wire.ResultLost naming its rank and host (a *TaskError wrapping
// ErrRankLost), and tasks it had submitted are cancelled; the rest of the
// job goes on. A task whose kernel is marked Retryable (idempotent) is
// instead placed again on another child, up to sched.MaxRetries times; a
// relay knows which kernels are retryable from NodeConfig.Registry and keeps
// such tasks' bodies until their results come back.
//
// # Supervised ranks and capacity
//
// A worker rank whose process a relay's own process started (attached
// mode's server, qlaunch manager -n) is supervised (Supervisor,
// NodeConfig.Supervisor): its death is known at once from the process's
// wait, without waiting for heartbeats. The relay then holds back the
// loss until the exit status is in (killing the process after 100 ms if
// it lives on without its connection, at once if it was found hung), so
// the errors of the rank's tasks name the signal or the exit status. The
// supervisor reaps the process and starts it again after a backoff (100
// ms, doubled per restart of the rank, at most 5 s), up to a limit per
// rank ([workers] restarts, qlaunch manager --restarts). Until the
// replacement joins, the relay reserves the rank's slots (sched.Reserve)
// and reports them to its parent as still there: its retryable tasks and
// new ones wait for the replacement. When the limit is reached the
// reservation is given up.
//
// A task never waits for a slot that cannot come: when no child has a
// slot, none is reserved and the tree has started, sched passes the task
// to a child without slots (a manager whose ranks were lost, which knows
// why) or fails it at once (sched.Unplaceable) with an error naming the
// ranks this relay lost, when and why, and what to do. Under srun and
// mpirun, ranks are started by the launcher, not by the runtime, and a
// lost one is not replaced: the tree's capacity drops, and with no slot
// left every task fails this way.
//
// # Readiness and shutdown
//
// The server counts the ranks below it from the Join messages; once
// ExpectRanks have joined it writes its address to the address file
// (atomically: temp file and rename), logs one "ready" line and closes its
// Ready channel. Clients find the server through --ip, QLAUNCH_ADDR or the
// address file. Until then the server keeps its address in the starting
// file (StartingFile: the address file's name plus ".starting"), where
// qlaunch wait finds it to ask which ranks are still missing. The address
// file is an AddressRecord: the address, then the server's pid, host, job
// and secret file, so that a client tells a file left by a runtime that
// is gone from a live one (AddressRecord.Gone, or a refused connection).
// RunServer removes the file when it returns, unless another server has
// replaced it. A server that holds its clients until ready (HoldClients:
// attached mode) writes the address file at once instead: a client that
// finds it early is answered once every rank joined.
//
// # Observing the tree
//
// A status request walks the tree: each relay answers with its own line,
// a line per child it lost (when, why: the connection's error, or silence
// past the heartbeat timeout) and its children's answers; a relay stamps
// each child's line with how long it had not heard from that child. A
// server started from a plan (ServerConfig.Plan, given by launcher/boot)
// adds a line for every planned rank not in the tree: missing (never
// connected) or lost with the rank above it. A Monitor (NodeConfig.
// Monitor) gives a process's own observers the server's counters (tasks
// submitted, completed, failed, cancelled, retried; queue depth; wire
// bytes before and after compression) and the tree's status; the
// launcher/metrics package serves them to Prometheus.
//
// Stopping the server (its context ends: SIGINT or SIGTERM in qlaunch)
// sends wire.KindShutdown to every child and closes the clients; each
// manager passes it down and waits for its children to leave, each worker
// rank cancels its kernels and leaves; every Run function returns
// ErrShutdown and every process exits 0. A node waits at most
// NodeConfig.ShutdownWait for its children. A client cannot stop the runtime: a
// shutdown frame from a client is a protocol error that closes that client.
// A rank whose parent connection breaks without a shutdown returns
// ErrParentLost.
//
// # Draining and joining
//
// A client's wire.KindDrain names ranks to drain (client.Drain, qlaunch
// drain). Every relay passes it to its relay children and sends it to each
// child it names, which it marks leaving in its scheduler (sched.Drain): no
// new task goes there and its slots stop counting. A drained worker rank
// hands its queued tasks back (as for a steal), finishes the ones it runs,
// writes their results and returns ErrDrained (which wraps ErrShutdown);
// a drained manager drains its children and leaves once they left. A
// child that leaves while drained and holding no task is recorded as
// wire.RankDrained, not lost; a supervised one is not started again. A
// rank can also drain itself (WorkerConfig.Drain, NodeConfig.Drain: a
// joined allocation signalled by its scheduler): it tells its parent with
// a KindDrain of its own rank first. A manager that dials a running server
// (NodeConfig.Parent) joins its tree with its subtree, as the ranks of a
// second allocation do (package boot, Join); NodeConfig.Alloc labels a
// rank's status rows with its allocation. Monitor.Drain drains ranks from
// the server's own process (package alloc ends idle allocations so).
//
// # Attached mode
//
// StartAttached starts a server and its worker ranks on this machine (as
// processes, or in-process for tests and embedding) with a per-run secret
// file, and returns once they joined; Close stops them, waits for every
// process and removes the secret file. LaunchAttached returns as soon as
// the server listens and the ranks' processes were started, WaitReady
// then waits for them to join: qlaunch run starts its command in between,
// and the server holds the command's connections until every rank joined
// (ServerConfig.HoldClients), so that the two process starts overlap.
//
// # Goroutines
//
// Every goroutine has an owner that waits for it: RunServer and RunManager own a node's
// accept, dial, heartbeat, reader and writer goroutines and returns after
// them (the timers the relay core asks for run their function on a
// goroutine of the runtime's, which steps the core under the node's lock
// and does nothing once the node closed); a Supervisor owns a reaper goroutine per process, which Close
// waits for;
// a worker rank owns its reader (one at a time: the reading moves to a
// new goroutine when the reader runs a batch inline that waits or runs
// long), writer (wire.Outbox.Run), heartbeat and runner goroutines
// (runners are waited for at most NodeConfig.ShutdownWait, since a kernel that
// ignores its context cannot be stopped from outside).
package launcher
