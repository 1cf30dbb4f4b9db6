// Package relay is the protocol core of a relay rank (the server or a
// manager): a pure, deterministic state machine with no sockets, no
// goroutines and no clock. The I/O shell (launcher's node.go) owns the
// connections; it feeds the core events and carries out the actions the
// core returns.
//
// # Events and actions
//
// Step takes one Event: a peer came up (PeerUp: a client, a child or the
// parent, after its handshake), a peer's connection ended (PeerDown, with
// its error), a frame arrived from a peer (Frame: the kind and body as
// read), the heartbeat ticked (Tick, with the time and what the shell saw
// of each peer's reads and writes), a timer the core asked for ran out
// (Timeout), a supervised worker rank's process ended (RankExited), the
// shell found a peer that does not read (Stalled), the rank was told to
// drain itself (SelfDrain) or to stop (Stop), or an observer asked for the
// tree's status (StatusAsk). Every event carries the time it happened
// (Event.Now, Unix nanoseconds): the core never reads a clock.
//
// Step returns the actions the event produced, in a deterministic order:
// first the actions other than sends, in the order the core took them
// (peers are visited in ascending Peer order, tasks in the order they
// arrived), then the frames to send, peer by peer in ascending Peer
// order, each peer's in the order control frames, logs, results, tasks,
// large records, cancels, and last the loans released (Released). Every
// message one event produced for one peer goes into one frame per kind.
// The slice is reused by the next Step.
//
// A shell that wants back the buffer a frame of tasks was read into lends
// it (Event.Loan): the Sends of bodies in it name the loan, and Released
// says when the core refers to no part of it any more; once the Sends
// naming it are written too, the buffer is free. Released comes after
// every Send of its step, so a shell that counts the Sends as it meets
// them never frees a buffer that a Send of the same step still names.
//
// One exception makes a burst one frame: a small frame from a child
// whose next frame the shell already holds whole (Event.More) leaves the
// results it produced for a client queued, when they are all that client
// has queued, and the next step without More sends them with its own.
// A worker under load sends many small result frames back to back; sent
// on one by one, each cost the server a write to the client and the
// client a read.
//
// # Who owns what
//
// The core owns the relay's protocol state: the peers it knows (kind,
// hello, subtree size, liveness as last reported, why it was dropped), the
// task table (a sched.Sched, which it drives and whose actions it turns
// into frames; sched's Action.Lost names the child a failed task was lost
// with), readiness (ExpectRanks, the dialled children that joined), the
// subtree reported up (wire.Join), status requests in flight, the lost
// and drained children kept for status replies (with their allocation, as
// the child's join or status row said, and restart count), how many times
// the Supervisor restarted each rank, the slots reserved for
// supervised ranks being started again, draining and stopping, and the
// counters a Monitor reads.
//
// The shell owns everything that touches the operating system: listening,
// dialling and the handshake, the reader goroutine of each peer, the
// outbox and writer goroutine of each peer, the bytes queued for a peer
// and how long a write to it has blocked (reported in Tick and Stalled),
// the address files, the Ready channel, timers (it arms one per
// StartTimer action and feeds Timeout back) and the Supervisor's
// processes (Kill, Leaving, Stopping actions). It also decides whether a
// frame's buffer is kept or copied before handing it to the core: a body
// given to Step in a Frame event belongs to the core from then on.
//
// # Tests
//
// The scripts in testdata (see script_test.go for their form; go test
// -update rewrites their expected output) drive a Core through each row
// of the reliability matrix (package reliability, make reliability):
//
//	worker rank kill -9, link cut       lost_child.txt, supervised.txt
//	manager kill -9 with a subtree      lost_manager.txt
//	worker rank SIGSTOP (silent peer)   heartbeat.txt, silent.txt, supervised.txt
//	silent rank in status, hung parent  silent.txt
//	killed worker, restarts / none      supervised.txt
//	replacement frozen before it joins  supervised.txt (chaos)
//	no worker slot left                 lost_child.txt, supervised.txt
//	exactly-once across a lost rank     lost_child.txt (retries), FuzzStep
//	client kill -9, cancel              cancel.txt
//	client that never reads             oversized.txt, heartbeat.txt
//	oversized result, large records     oversized.txt
//	hostile, duplicate, malformed       malformed.txt
//	server kill -9, shutdown            stop.txt
//	drain (qlaunch drain, self-drain)   drain.txt
//	readiness, joins, status            readiness.txt, join.txt, status.txt
//	restarts, allocations of departed   departed.txt
//	work sharing                        steal.txt
//	results coalesced in a burst        burst.txt
//	large task buffers lent, released   loans.txt
//
// The rows the core has no part in are tested where they live: admission
// bounds (launcher/admission.go), connection floods and slow handshakes
// (the accept gate, launcher/conn.go), injected frames (wire's MAC), an
// exec task's grandchildren (the worker executor); the worker side of
// heartbeats (link.watch) runs under testing/synctest.
//
// FuzzStep drives a server core with random event sequences and checks
// that every action names a known peer, that sends come last in peer
// order, that no client task gets two results, that every task of a
// connected client gets its result once the run is settled, and that the
// same events give the same actions.
//
// # Concurrency
//
// A Core is not safe for concurrent use. The shell calls Step under its
// node's lock from whichever goroutine read the frame, and that goroutine
// then writes what the actions queued (see launcher's doc): no hand-off
// to a loop goroutine lies on the path of a task.
package relay
