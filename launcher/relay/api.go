package relay

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/qlaunch/qlaunch/launcher/sched"
	"github.com/qlaunch/qlaunch/launcher/wire"
)

// This file is the core's interface: its configuration, the events it
// takes and the actions it returns.

var (
	// ErrShutdown is a relay's result after a clean, requested stop (a
	// signal to the server, a shutdown message from above).
	ErrShutdown = errors.New("launcher: shut down")
	// ErrParentLost is the result of a manager whose parent connection
	// broke without a shutdown message.
	ErrParentLost = errors.New("launcher: parent connection lost")
	// ErrDrained is the result of a manager that was drained and left once
	// its children had. It wraps ErrShutdown.
	ErrDrained = fmt.Errorf("%w: drained", ErrShutdown)
)

// Peer identifies a connection of the relay; the shell chooses the
// numbers (ascending as peers come up).
type Peer = sched.Peer

// Loan names a buffer of the shell's that a frame's body lies in, which
// the shell wants back (Event.Loan, Released); zero is none.
type Loan = sched.Loan

// PeerKind says what a peer is to the relay.
type PeerKind uint8

// Peer kinds.
const (
	Client PeerKind = iota // a client of the server
	Child                  // a worker rank or a lower manager
	Parent                 // the manager's parent
)

func (k PeerKind) String() string {
	switch k {
	case Client:
		return "client"
	case Child:
		return "child"
	case Parent:
		return "parent"
	}
	return fmt.Sprintf("PeerKind(%d)", uint8(k))
}

// LargeRecord is the body size from which a task or result record is sent
// in a frame of its own, its body not copied into a batch (Action.Head
// and Body). The shell keeps a received frame's buffer from this size on
// rather than copying it.
const LargeRecord = 64 << 10

// lostLimit bounds the records of lost children a relay keeps.
const lostLimit = 1024

// PlannedRank is one rank of the job's plan, as the server expects it.
type PlannedRank struct {
	Rank   int
	Parent int // -1 for the server
	Host   string
	Role   string // "server", "manager", "worker" (or roles joined by "+")
}

// Config describes the relay rank.
type Config struct {
	Server bool // the top of the tree: takes clients, has no parent
	Rank   int
	Host   string
	Alloc  string // labels the rank's status rows with its allocation
	// ExpectRanks is the number of ranks of the whole tree, this one
	// included; the server is ready once that many have joined (zero:
	// once DialledChildren children joined with worker slots below them).
	ExpectRanks     int
	DialledChildren int
	// DialsParent: the manager dialled its parent (the bootstrap's); it
	// logs ready once its first subtree with slots went up.
	DialsParent bool
	// Plan, if set (the server of a planned job), lists every rank the
	// tree should hold; status replies then name the ranks not in it.
	Plan []PlannedRank
	// Retryable names the kernels whose tasks are placed again when the
	// child running them is lost.
	Retryable map[string]bool
	// HeartbeatTimeout: a peer silent this long is dropped. OutboxStall:
	// a peer one write to which blocked this long is dropped.
	HeartbeatTimeout time.Duration
	OutboxStall      time.Duration
	// KillGrace is how long the relay waits for the exit status of a
	// supervised child whose connection broke before it has the process
	// killed; ExitWait bounds the wait for the exit status.
	KillGrace time.Duration
	ExitWait  time.Duration
	// JoinTimeout: a supervised rank that has not connected this long
	// after its start (RankStarted: the first or a restart) is killed,
	// so that one frozen before it joined dies and is started again like
	// any other; zero means HeartbeatTimeout, at least 5 s.
	JoinTimeout time.Duration
	Logger      *slog.Logger
}

// Role returns the relay's role name, as in wire.Hello.
func (c Config) Role() string {
	if c.Server {
		return "server"
	}
	return "manager"
}

// EventType says what happened.
type EventType uint8

// Event types; see the package doc.
const (
	PeerUp      EventType = iota // Peer, Kind, Hello, Name, Supervised
	PeerDown                     // Peer, Err
	Frame                        // Peer, Frame, Body
	Tick                         // Clocks
	Timeout                      // Peer, Timer
	RankExited                   // Rank, Slots, Reason, Restart
	Stalled                      // Peer, Reason
	SelfDrain                    //
	DrainRanks                   // Ranks
	Stop                         // Err
	StatusAsk                    // Token
	RankStarted                  // Rank
)

var eventNames = [...]string{
	PeerUp: "up", PeerDown: "down", Frame: "frame", Tick: "tick", Timeout: "timeout",
	RankExited: "exited", Stalled: "stalled", SelfDrain: "self-drain", DrainRanks: "drain-ranks", Stop: "stop", StatusAsk: "status-ask",
	RankStarted: "started",
}

func (t EventType) String() string {
	if int(t) < len(eventNames) {
		return eventNames[t]
	}
	return fmt.Sprintf("EventType(%d)", uint8(t))
}

// Event is one input of the core.
type Event struct {
	Type EventType
	Peer Peer
	Now  int64 // when it happened, Unix nanoseconds

	// PeerUp: what the peer is and said in its handshake, its name for
	// logs, and whether its process is one the relay's Supervisor runs.
	Kind       PeerKind
	Hello      wire.Hello
	Name       string
	Supervised bool

	// Frame: the message as read. The core owns Body. More: the shell
	// already holds the peer's next frame whole (wire.Conn.FrameBuffered),
	// so another Frame event from the peer follows at once; results a
	// child's small frame produced for a client then wait for it (a
	// burst, see Step).
	Frame wire.Kind
	Body  []byte
	More  bool

	// Loan, on a Frame of tasks, names the shell's buffer Body lies in
	// (not zero, never reused while open): the core names it on every
	// Send of a body in it, and says Released once it keeps no part of
	// it (tasks kept for a retry, or held for a slot).
	Loan Loan

	// PeerDown: the connection's error; Stop: the cause of the stop.
	Err error

	// Tick: what the shell saw of its peers' connections.
	Clocks []Clock

	// Timeout: which timer ran out.
	Timer Timer

	// RankExited: a supervised worker rank's process ended (Reason), and
	// whether it is being started again. RankStarted: the supervisor
	// started the rank's process, or had started it before the relay ran
	// (Now is when it says so). Stalled: why the
	// peer is dropped.
	Rank    int
	Slots   int
	Reason  string
	Restart bool

	// DrainRanks: the ranks to drain, as a client's wire.Drain lists them.
	Ranks []int

	// StatusAsk: the observer's token, given back in StatusReply.
	Token uint64
}

// Clock is what the shell saw of one peer's connection at a Tick.
type Clock struct {
	Peer Peer
	// LastSeen is when its last frame was read (Unix ns; 0: unknown).
	LastSeen int64
	// Blocked is when the write to it in progress began (0: none).
	Blocked int64
	// Writing: its reader is writing what its frame produced, so its
	// frames wait unread and its silence is not its own.
	Writing bool
}

// Timer names a timer of the core.
type Timer uint8

// Timers.
const (
	// KillTimer: a supervised child whose connection broke gave no exit
	// status in KillGrace: its process is killed.
	KillTimer Timer = iota + 1
	// ExitTimer: no exit status in ExitWait: the child is taken as lost.
	ExitTimer
)

func (t Timer) String() string {
	switch t {
	case KillTimer:
		return "kill"
	case ExitTimer:
		return "exit"
	}
	return fmt.Sprintf("Timer(%d)", uint8(t))
}

// ActionType says what the shell is to do.
type ActionType uint8

// Action types.
const (
	// Send queues frame (Frame, Head+Body) for Peer. The shell owns the
	// bytes from then on.
	Send ActionType = iota
	// Close closes Peer's connection and discards what is queued for it;
	// the core still knows the peer until its PeerDown.
	Close
	// Drop closes Peer's connection and forgets it: the core no longer
	// knows it.
	Drop
	// Stopping: the relay began to stop (Err): close the listeners, end
	// the Supervisor's restarts.
	Stopping
	// WriteAddress: the server is ready; publish its address.
	WriteAddress
	// Ready: the relay is ready: the server once the ranks it expects
	// joined (after WriteAddress), a manager that dialled its parent once
	// its first subtree with slots went up. (A manual-mode manager says
	// so itself when it listens.)
	Ready
	// Kill has the Supervisor kill worker rank Rank's process (Reason).
	Kill
	// Leaving tells the Supervisor that worker rank Rank was drained.
	Leaving
	// StartTimer asks for a Timeout event (Peer, Timer) After from now.
	StartTimer
	// StatusReply answers the observer's StatusAsk (Token) with Ranks.
	StatusReply
	// Released: the core refers to no part of loan Loan any more; what
	// is still queued to be written may. The Released actions of a step
	// come after its Sends.
	Released
)

var actionNames = [...]string{
	Send: "send", Close: "close", Drop: "drop", Stopping: "stopping", WriteAddress: "write-address",
	Ready: "ready", Kill: "kill", Leaving: "leaving", StartTimer: "timer", StatusReply: "status-reply",
	Released: "released",
}

func (t ActionType) String() string {
	if int(t) < len(actionNames) {
		return actionNames[t]
	}
	return fmt.Sprintf("ActionType(%d)", uint8(t))
}

// Action is one output of the core.
type Action struct {
	Type   ActionType
	Peer   Peer
	Frame  wire.Kind
	Head   []byte // Send of a large record: the record's head, Body its body
	Body   []byte
	Err    error
	Rank   int
	Reason string
	Timer  Timer
	After  time.Duration
	Token  uint64
	Ranks  []wire.RankStatus
	// Loan: on a Send, the loan Body lies in (0: none); on Released, the
	// loan.
	Loan Loan
}
