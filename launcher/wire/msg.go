package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"time"
)

// This file holds the encoding of message bodies: flat binary, lengths as
// uvarints, append-style encoders (AppendX(dst, …) []byte) and decoders that
// check every length against the bytes left before slicing, so a hostile
// body can neither allocate more than its own size nor read out of bounds.
//
// Task and result batches (KindSubmit, KindResult) are sequences of
// records, each "uvarint id | uvarint len | body", with no count in front:
// a relay (server, manager) reads only the ids and copies bodies through
// without parsing them, and a batch is built by appending records.

// ErrBadMessage reports a message body that does not decode.
var ErrBadMessage = errors.New("wire: malformed message body")

func badMessage(what string) error { return fmt.Errorf("%w: %s", ErrBadMessage, what) }

// decoder reads fields from a message body; the first failure sticks.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail(what string) {
	if d.err == nil {
		d.err = badMessage(what)
	}
	d.b = nil
}

func (d *decoder) uvarint(what string) uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail(what)
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint(what string) int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail(what)
		return 0
	}
	d.b = d.b[n:]
	return v
}

// int reads a uvarint that must fit an int.
func (d *decoder) int(what string) int {
	v := d.uvarint(what)
	if v > math.MaxInt32 {
		d.fail(what)
		return 0
	}
	return int(v)
}

func (d *decoder) byte(what string) byte {
	if d.err != nil {
		return 0
	}
	if len(d.b) == 0 {
		d.fail(what)
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

// bytes returns a length-prefixed field as a sub-slice of the body.
func (d *decoder) bytes(what string) []byte {
	n := d.uvarint(what)
	if d.err != nil {
		return nil
	}
	if n > uint64(len(d.b)) {
		d.fail(what)
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}

func (d *decoder) string(what string) string { return string(d.bytes(what)) }

// count reads a element count, bounded by the bytes left (each element
// takes at least min bytes), so a count cannot make the caller allocate
// more than the body's size.
func (d *decoder) count(what string, min int) int {
	n := d.uvarint(what)
	if d.err != nil {
		return 0
	}
	if n > uint64(len(d.b)/min) {
		d.fail(what)
		return 0
	}
	return int(n)
}

func (d *decoder) end(what string) error {
	if d.err == nil && len(d.b) != 0 {
		d.fail(what + ": trailing bytes")
	}
	return d.err
}

func appendBytes(dst, b []byte) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(b)))
	return append(dst, b...)
}

func appendString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

// AppendRecord appends one record of a task or result batch.
func AppendRecord(dst []byte, id uint64, body []byte) []byte {
	dst = binary.AppendUvarint(dst, id)
	return appendBytes(dst, body)
}

// AppendRecordHead appends the head of a record of n body bytes:
// AppendRecord(dst, id, body) is AppendRecordHead(dst, id, len(body))
// followed by body.
func AppendRecordHead(dst []byte, id uint64, n int) []byte {
	dst = binary.AppendUvarint(dst, id)
	return binary.AppendUvarint(dst, uint64(n))
}

// Records iterates over the records of a task or result batch without
// copying: bodies are sub-slices of the batch.
type Records struct {
	d decoder
}

// NewRecords returns an iterator over batch.
func NewRecords(batch []byte) Records { return Records{d: decoder{b: batch}} }

// Next returns the next record; ok is false at the end or on a malformed
// batch (then Err says why).
func (r *Records) Next() (id uint64, body []byte, ok bool) {
	if r.d.err != nil || len(r.d.b) == 0 {
		return 0, nil, false
	}
	id = r.d.uvarint("record id")
	body = r.d.bytes("record body")
	return id, body, r.d.err == nil
}

// Err reports a malformed batch.
func (r *Records) Err() error { return r.d.err }

// CountRecords checks a whole batch and returns its number of records.
func CountRecords(batch []byte) (int, error) {
	r := NewRecords(batch)
	n := 0
	for {
		if _, _, ok := r.Next(); !ok {
			break
		}
		n++
	}
	return n, r.Err()
}

// Task is the body of one task record: the kernel to run, its arguments
// and payload, and the lowest log level its submitter wants forwarded.
type Task struct {
	Kernel   string
	Args     []string
	Payload  []byte
	LogLevel int // slog.Level of the submitting client; descendants inherit it
	// LogDepth is how many levels of tasks, this one included, still
	// forward log records: 0 none, negative all. A child gets one less.
	LogDepth int
}

// AppendTask appends the encoding of t.
func AppendTask(dst []byte, t *Task) []byte {
	dst = binary.AppendVarint(dst, int64(t.LogLevel))
	dst = binary.AppendVarint(dst, int64(t.LogDepth))
	dst = appendString(dst, t.Kernel)
	dst = binary.AppendUvarint(dst, uint64(len(t.Args)))
	for _, a := range t.Args {
		dst = appendString(dst, a)
	}
	return appendBytes(dst, t.Payload)
}

// AppendTaskRecord appends a record of a task batch holding the encoding
// of t, written in place: AppendRecord of AppendTask's output would copy
// the payload twice.
func AppendTaskRecord(dst []byte, id uint64, t *Task) []byte {
	dst = binary.AppendUvarint(dst, id)
	dst = binary.AppendUvarint(dst, uint64(TaskSize(t)))
	return AppendTask(dst, t)
}

// TaskSize returns the length of AppendTask's encoding of t.
func TaskSize(t *Task) int {
	n := varintLen(int64(t.LogLevel)) + varintLen(int64(t.LogDepth))
	n += uvarintLen(uint64(len(t.Kernel))) + len(t.Kernel)
	n += uvarintLen(uint64(len(t.Args)))
	for _, a := range t.Args {
		n += uvarintLen(uint64(len(a))) + len(a)
	}
	return n + uvarintLen(uint64(len(t.Payload))) + len(t.Payload)
}

// RecordSize returns the length of a batch record of a body of n bytes.
func RecordSize(id uint64, n int) int { return uvarintLen(id) + uvarintLen(uint64(n)) + n }

func uvarintLen(x uint64) int { return (bits.Len64(x|1) + 6) / 7 }

func varintLen(x int64) int { return uvarintLen(uint64(x<<1) ^ uint64(x>>63)) }

// DecodeTask decodes a task body into t. t.Payload aliases b.
func DecodeTask(b []byte, t *Task) error {
	d := decoder{b: b}
	lvl := d.varint("task log level")
	if lvl < math.MinInt32 || lvl > math.MaxInt32 {
		d.fail("task log level")
	}
	t.LogLevel = int(lvl)
	t.LogDepth = d.smallInt("task log depth")
	t.Kernel = d.string("task kernel")
	n := d.count("task args", 1)
	t.Args = t.Args[:0]
	if n > 0 && t.Args == nil {
		t.Args = make([]string, 0, n)
	}
	for range n {
		t.Args = append(t.Args, d.string("task arg"))
	}
	t.Payload = d.bytes("task payload")
	return d.end("task")
}

// TaskKernel returns the kernel name of a task body without decoding the
// rest (nil if the body is malformed). It aliases body.
func TaskKernel(body []byte) []byte {
	d := decoder{b: body}
	d.varint("task log level")
	d.varint("task log depth")
	k := d.bytes("task kernel")
	if d.err != nil {
		return nil
	}
	return k
}

// Status of a result.
const (
	ResultOK        byte = iota // Value holds the kernel's output
	ResultError                 // the kernel failed: Message, Kernel, Rank, Host
	ResultCancelled             // the task was cancelled before it finished
	ResultLost                  // the rank running it was lost: Rank, Host
	resultStatusCount
)

// Result is the body of one result record.
type Result struct {
	Status  byte
	Value   []byte // ResultOK: the output
	Message string // otherwise: what went wrong
	Kernel  string
	Rank    int
	Host    string
}

// AppendResult appends the encoding of r.
func AppendResult(dst []byte, r *Result) []byte {
	dst = append(dst, r.Status)
	if r.Status == ResultOK {
		return appendBytes(dst, r.Value)
	}
	dst = appendString(dst, r.Message)
	dst = appendString(dst, r.Kernel)
	dst = binary.AppendVarint(dst, int64(r.Rank))
	return appendString(dst, r.Host)
}

// DecodeResult decodes a result body into r. r.Value aliases b.
func DecodeResult(b []byte, r *Result) error {
	d := decoder{b: b}
	r.Status = d.byte("result status")
	if d.err == nil && r.Status >= resultStatusCount {
		d.fail("result status")
	}
	*r = Result{Status: r.Status}
	if r.Status == ResultOK {
		r.Value = d.bytes("result value")
		return d.end("result")
	}
	r.Message = d.string("result message")
	r.Kernel = d.string("result kernel")
	rank := d.varint("result rank")
	if rank < math.MinInt32 || rank > math.MaxInt32 {
		d.fail("result rank")
	}
	r.Rank = int(rank)
	r.Host = d.string("result host")
	return d.end("result")
}

// AppendCancel appends a cancel message: the ids of the tasks to cancel.
func AppendCancel(dst []byte, ids []uint64) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(ids)))
	for _, id := range ids {
		dst = binary.AppendUvarint(dst, id)
	}
	return dst
}

// DecodeCancel appends the ids of a cancel message to ids.
func DecodeCancel(b []byte, ids []uint64) ([]uint64, error) {
	d := decoder{b: b}
	n := d.count("cancel count", 1)
	for range n {
		ids = append(ids, d.uvarint("cancel id"))
	}
	return ids, d.end("cancel")
}

// LogRecord is one log record of a task on its way to the client.
type LogRecord struct {
	Task  uint64 // the task that logged (numbered per hop, like results)
	Time  int64  // Unix nanoseconds
	Level int    // slog.Level
	Rank  int
	Host  string
	Msg   string
	Attrs []string // key, value, key, value … (values already formatted)
}

// AppendLog appends the encoding of one log record; a log message is one
// or more records back to back.
func AppendLog(dst []byte, l *LogRecord) []byte {
	dst = binary.AppendUvarint(dst, l.Task)
	dst = binary.AppendVarint(dst, l.Time)
	dst = binary.AppendVarint(dst, int64(l.Level))
	dst = binary.AppendVarint(dst, int64(l.Rank))
	dst = appendString(dst, l.Host)
	dst = appendString(dst, l.Msg)
	dst = binary.AppendUvarint(dst, uint64(len(l.Attrs)))
	for _, a := range l.Attrs {
		dst = appendString(dst, a)
	}
	return dst
}

// DecodeLog decodes the first log record of b into l and returns the rest.
func DecodeLog(b []byte, l *LogRecord) (rest []byte, err error) {
	d := decoder{b: b}
	l.Task = d.uvarint("log task")
	l.Time = d.varint("log time")
	lvl := d.varint("log level")
	rank := d.varint("log rank")
	if lvl < math.MinInt32 || lvl > math.MaxInt32 || rank < math.MinInt32 || rank > math.MaxInt32 {
		d.fail("log level or rank")
	}
	l.Level, l.Rank = int(lvl), int(rank)
	l.Host = d.string("log host")
	l.Msg = d.string("log message")
	n := d.count("log attrs", 1)
	if n%2 != 0 {
		d.fail("log attrs: odd count")
	}
	l.Attrs = nil
	if d.err == nil && n > 0 {
		l.Attrs = make([]string, 0, n)
	}
	for range n {
		l.Attrs = append(l.Attrs, d.string("log attr"))
	}
	if d.err != nil {
		return nil, d.err
	}
	return d.b, nil
}

// RankStatus is one rank's line in a status reply.
type RankStatus struct {
	Rank   int
	Parent int // -1 for the top
	Depth  int // hops below the rank that answered the request
	Role   string
	Host   string
	Slots  int // worker slots (worker ranks)
	Busy   int // slots running a kernel
	Queued int // tasks waiting for a slot
	Done   uint64

	// The fields below travel in the reply's extension block (see
	// AppendStatus); a reply without one decodes them as zero.

	// State says whether the rank is in the tree (RankJoined) or, for a
	// rank the server expected from its plan or a child a relay lost, why
	// not.
	State RankState
	// Since is when a lost rank was lost (Unix nanoseconds; 0 unknown).
	Since int64
	// Reason says why a rank is lost or missing ("connection reset", "its
	// parent rank 2 was lost").
	Reason string
	// Silent is how long the rank's parent had not heard from it when the
	// status was taken (its last heartbeat's age); 0 for the top.
	Silent time.Duration
	// Alloc is the scheduler allocation (job id) the rank runs in, ""
	// outside one: the ranks of a job that joined a running tree
	// (qlaunch TOPOLOGY.toml --join) carry their own job's.
	Alloc string
	// Kept counts the child tasks (Submit, Map) of a worker rank's kernels
	// that ran on that rank; HandedUp the tasks it handed back to its
	// parent to run elsewhere (a steal or a drain), which travel through
	// the relays above. Together they say which path a kernel's children
	// took.
	Kept     uint64
	HandedUp uint64
	// Restarts is how many times the rank's parent started the rank's
	// process again after it died (its Supervisor's restarts, [workers]
	// restarts); 0 for a rank never restarted or not supervised.
	Restarts int
}

// RankState is a rank's state in a status reply.
type RankState uint8

// States of a rank.
const (
	RankJoined  RankState = iota // connected, in the tree
	RankMissing                  // expected by the plan, never connected
	RankLost                     // connected, then lost (Since, Reason)
	RankDrained                  // drained: finished its tasks and left cleanly (Since)
	rankStateCount
)

func (s RankState) String() string {
	switch s {
	case RankJoined:
		return "joined"
	case RankMissing:
		return "missing"
	case RankLost:
		return "lost"
	case RankDrained:
		return "drained"
	}
	return fmt.Sprintf("RankState(%d)", uint8(s))
}

// MarshalText writes the state's name (joined, missing, lost, drained).
func (s RankState) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Status is a status request (Reply false, no ranks) or reply.
type Status struct {
	ID    uint64
	Reply bool
	Ranks []RankStatus
}

// AppendStatus appends the encoding of s. A reply is the request's id, a
// flag, the ranks' base fields, then an extension block: one
// length-prefixed record per rank (state, since, reason, silent, then
// alloc, and kept and handed up, each only when it or a later one is
// set). A
// decoder reads the fields of a record it knows and skips the rest, so
// later fields can be added at the end of a record; a reply with no
// extension block (the first encoding) decodes with those fields zero.
func AppendStatus(dst []byte, s *Status) []byte {
	dst = binary.AppendUvarint(dst, s.ID)
	if !s.Reply {
		return append(dst, 0)
	}
	dst = append(dst, 1)
	dst = binary.AppendUvarint(dst, uint64(len(s.Ranks)))
	for i := range s.Ranks {
		r := &s.Ranks[i]
		dst = binary.AppendVarint(dst, int64(r.Rank))
		dst = binary.AppendVarint(dst, int64(r.Parent))
		dst = binary.AppendUvarint(dst, uint64(r.Depth))
		dst = appendString(dst, r.Role)
		dst = appendString(dst, r.Host)
		dst = binary.AppendUvarint(dst, uint64(r.Slots))
		dst = binary.AppendUvarint(dst, uint64(r.Busy))
		dst = binary.AppendUvarint(dst, uint64(r.Queued))
		dst = binary.AppendUvarint(dst, r.Done)
	}
	if len(s.Ranks) == 0 {
		return dst
	}
	var ext []byte
	for i := range s.Ranks {
		r := &s.Ranks[i]
		ext = append(ext[:0], byte(r.State))
		ext = binary.AppendVarint(ext, r.Since)
		ext = appendString(ext, r.Reason)
		ext = binary.AppendUvarint(ext, uint64(max(r.Silent, 0)))
		// Trailing fields are optional: each is written when it, or a
		// field after it, is set.
		paths := r.Kept != 0 || r.HandedUp != 0
		if r.Alloc != "" || paths || r.Restarts != 0 {
			ext = appendString(ext, r.Alloc)
		}
		if paths || r.Restarts != 0 {
			ext = binary.AppendUvarint(ext, r.Kept)
			ext = binary.AppendUvarint(ext, r.HandedUp)
		}
		if r.Restarts != 0 {
			ext = binary.AppendUvarint(ext, uint64(max(r.Restarts, 0)))
		}
		dst = appendBytes(dst, ext)
	}
	return dst
}

func (d *decoder) smallInt(what string) int {
	v := d.varint(what)
	if v < math.MinInt32 || v > math.MaxInt32 {
		d.fail(what)
		return 0
	}
	return int(v)
}

// DecodeStatus decodes a status message into s.
func DecodeStatus(b []byte, s *Status) error {
	d := decoder{b: b}
	s.ID = d.uvarint("status id")
	switch d.byte("status flag") {
	case 0:
		s.Reply, s.Ranks = false, nil
		return d.end("status")
	case 1:
		s.Reply = true
	default:
		d.fail("status flag")
		return d.err
	}
	n := d.count("status ranks", 9)
	s.Ranks = make([]RankStatus, 0, n)
	for range n {
		var r RankStatus
		r.Rank = d.smallInt("status rank")
		r.Parent = d.smallInt("status parent")
		r.Depth = d.int("status depth")
		r.Role = d.string("status role")
		r.Host = d.string("status host")
		r.Slots = d.int("status slots")
		r.Busy = d.int("status busy")
		r.Queued = d.int("status queued")
		r.Done = d.uvarint("status done")
		s.Ranks = append(s.Ranks, r)
	}
	if d.err != nil || len(d.b) == 0 {
		return d.end("status")
	}
	for i := range s.Ranks {
		decodeRankExt(d.bytes("status extension"), &s.Ranks[i], &d)
	}
	return d.end("status")
}

// decodeRankExt decodes one rank's extension record into r; fields it
// does not know (after those it reads) are skipped.
func decodeRankExt(b []byte, r *RankStatus, outer *decoder) {
	if outer.err != nil {
		return
	}
	d := decoder{b: b}
	st := RankState(d.byte("status state"))
	if d.err == nil && st >= rankStateCount {
		d.fail("status state")
	}
	r.State = st
	r.Since = d.varint("status since")
	r.Reason = d.string("status reason")
	silent := d.uvarint("status silent")
	if silent > math.MaxInt64 {
		d.fail("status silent")
	}
	r.Silent = time.Duration(silent)
	if d.err == nil && len(d.b) > 0 {
		r.Alloc = d.string("status alloc")
	}
	if d.err == nil && len(d.b) > 0 {
		r.Kept = d.uvarint("status kept")
		r.HandedUp = d.uvarint("status handed up")
	}
	if d.err == nil && len(d.b) > 0 {
		r.Restarts = d.int("status restarts")
	}
	if d.err != nil {
		outer.err, outer.b = d.err, nil
	}
}

// Load is a load update. Going up, a child reports its idle slots and
// queued tasks; going down, Steal asks the child to hand up to that many
// of its queued tasks back up for other ranks to run.
type Load struct {
	Idle   int
	Queued int
	Steal  int
}

// AppendLoad appends the encoding of l.
func AppendLoad(dst []byte, l *Load) []byte {
	dst = binary.AppendUvarint(dst, uint64(l.Idle))
	dst = binary.AppendUvarint(dst, uint64(l.Queued))
	return binary.AppendUvarint(dst, uint64(l.Steal))
}

// DecodeLoad decodes a load message into l.
func DecodeLoad(b []byte, l *Load) error {
	d := decoder{b: b}
	l.Idle = d.int("load idle")
	l.Queued = d.int("load queued")
	l.Steal = d.int("load steal")
	return d.end("load")
}

// Join reports, going up, the ranks and worker slots of a child's whole
// subtree; it is sent when a child connects and whenever its subtree
// changes, so the server knows when every expected rank has joined.
type Join struct {
	Ranks int
	Slots int
	// Alloc is the allocation (job id) of the rank that sends the join,
	// "" outside one; its parent keeps it for the rank's rows once it has
	// left (drained or lost). It is written only when set, after the
	// counts, so a join without it is the first encoding.
	Alloc string
}

// AppendJoin appends the encoding of j.
func AppendJoin(dst []byte, j *Join) []byte {
	dst = binary.AppendUvarint(dst, uint64(j.Ranks))
	dst = binary.AppendUvarint(dst, uint64(j.Slots))
	if j.Alloc != "" {
		dst = appendString(dst, j.Alloc)
	}
	return dst
}

// DecodeJoin decodes a join message into j.
func DecodeJoin(b []byte, j *Join) error {
	d := decoder{b: b}
	j.Ranks = d.int("join ranks")
	j.Slots = d.int("join slots")
	j.Alloc = ""
	if d.err == nil && len(d.b) > 0 {
		j.Alloc = d.string("join alloc")
	}
	return d.end("join")
}

// AppendText appends a message that is one string: the reason of a
// shutdown or the text of a connection-level error.
func AppendText(dst []byte, s string) []byte { return appendString(dst, s) }

// DecodeText decodes a one-string message.
func DecodeText(b []byte) (string, error) {
	d := decoder{b: b}
	s := d.string("text")
	return s, d.end("text")
}
