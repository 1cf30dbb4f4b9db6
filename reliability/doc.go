// Package reliability measures how the qlaunch runtime behaves under
// faults, hostile input and sustained load, by driving the real qlaunch
// binary on loopback.
//
// The package's tests build qlaunch and the driver (reldriver) once,
// start detached trees (qlaunch manager, worker and server processes,
// managers of managers) or attached runs (qlaunch run), and inject faults
// from outside: kill -9 of a worker rank, of a manager with a subtree, of
// the server and of a client; SIGSTOP of a worker rank (a hang the
// heartbeats must detect); a link cut by closing a proxied socket. For each
// they check what the client sees (an error naming the lost rank and its
// host, or a retried result for retryable kernels), that the other tasks
// finish, how long detection takes, and that no process is left behind.
//
// The self-healing tests kill -9 and SIGSTOP the only worker rank of an
// attached run (qlaunch run) and of qlaunch manager -n: the rank is reaped
// and replaced, retryable tasks retried on it, others fail naming the rank
// and the signal; with restarts off a later task fails within 1 s saying
// that no worker slot is left. A client that never reads is dropped while
// another is served. The chaos test (20 seeded runs: make check's race and
// one-CPU lanes run 10 each, make reliability all 20; 100 longer ones with
// QLAUNCH_SOAK=1) kills and stops worker ranks at random during maps of
// retryable tasks and checks that every task gives its result and that no
// process or zombie is left.
//
// Further tests count results at the wire level to check exactly-once
// delivery across a lost rank, send hostile input (oversize and truncated
// frames, other protocol versions, replayed handshakes, a slow sender, a
// connection flood) to a server and a manager, and soak an attached
// runtime with many tiny tasks and then 1 MiB payloads while sampling the
// resident memory of every process.
//
// An on-path relay injects a frame after the handshake, or flips a bit of
// one, on a connection without TLS: the server refuses it (the frame MAC),
// logs why, and runs none of the altered tasks. A client mapping tiny
// tasks faster than they run is held at [runtime] max_client_tasks by
// admission control, with the server's resident memory bounded.
//
// Results stream: of 20 gated tasks on one slot, each result reaches the
// client while every later task is still held at its gate, and the table
// gives how long after the command finished it arrived. Cancelled tasks,
// those of a client killed -9 and failed ones (10^5 of each map, on a
// tree of two managers and three worker ranks) leave no entry on any
// rank. Two jobs of one user started in one folder (SLURM_JOB_ID) each
// serve their own client and refuse the other's. A child an exec task
// started with setsid is gone once the runtime was shut down.
//
// The quick part runs with go test ./... (and make reliability, which
// prints a table of the results). The long soak (10^6 tiny tasks, 10^4
// tasks of 1 MiB), the admission test at 10^7 tasks and the stalled
// client at 10^6 results run only when QLAUNCH_SOAK=1 (make
// reliability-long).
// When QLAUNCH_RELIABILITY_REPORT names a file, every test appends one row
// to it (see Row); reldriver table prints them aligned.
//
// The non-test code is small: reading processes from /proc (Processes,
// ReadMem) and the report rows.
package reliability
