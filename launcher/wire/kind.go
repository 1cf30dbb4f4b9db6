package wire

import "strconv"

// Kind is the type of a frame's message.
type Kind uint8

// Message kinds. The numbers are part of the protocol: append, never reorder.
const (
	KindInvalid   Kind = iota
	KindHello          // handshake: protocol version, role, rank, host
	KindAuth           // handshake: challenge and HMAC proof
	KindSubmit         // a batch of tasks going down (or up, from a kernel)
	KindResult         // a batch of results going up
	KindError          // a connection-level error report
	KindCancel         // cancel tasks and their descendants
	KindLog            // log records from tasks, travelling to the client
	KindStatus         // status request or reply
	KindLoad           // load update: a child's idle slots and queued tasks
	KindShutdown       // stop the subtree below
	KindHeartbeat      // liveness
	KindJoin           // a rank below has joined (readiness accounting)
	KindDrain          // drain ranks: they take no new task, finish theirs and leave
	kindCount
)

var kindNames = [...]string{
	KindInvalid:   "invalid",
	KindHello:     "hello",
	KindAuth:      "auth",
	KindSubmit:    "submit",
	KindResult:    "result",
	KindError:     "error",
	KindCancel:    "cancel",
	KindLog:       "log",
	KindStatus:    "status",
	KindLoad:      "load",
	KindShutdown:  "shutdown",
	KindHeartbeat: "heartbeat",
	KindJoin:      "join",
	KindDrain:     "drain",
}

func (k Kind) String() string {
	if k < kindCount {
		return kindNames[k]
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// Valid reports whether k is a known message kind.
func (k Kind) Valid() bool { return k > KindInvalid && k < kindCount }
