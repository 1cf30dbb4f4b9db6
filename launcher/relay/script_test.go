package relay

import (
	"bytes"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/qlaunch/qlaunch/launcher/wire"
)

// The scripts in testdata drive a Core event by event and compare the
// actions of each with the expected ones, in the style of etcd-io/raft's
// interaction tests. A script is a list of blocks:
//
//	command arg key=value … (one event, or config / state)
//	----
//	expected output, one action a line
//	(a blank line ends the block)
//
// Lines starting with # between blocks are comments. go test -update
// rewrites every script's expected output with what the core does now;
// review the diff.
var update = flag.Bool("update", false, "rewrite the expected output of testdata/*.txt")

func TestMain(m *testing.M) {
	// Lost-rank messages name the time of the loss in the local zone;
	// scripts run at times near the Unix epoch and expect UTC.
	time.Local = time.UTC
	os.Exit(m.Run())
}

func TestScripts(t *testing.T) {
	files, err := filepath.Glob("testdata/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no scripts in testdata: %v", err)
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".txt"), func(t *testing.T) {
			runScript(t, file)
		})
	}
}

// block is one command of a script and its expected output.
type block struct {
	line     int // of the command
	comments []string
	cmd      string
	want     string
}

func parseScript(t *testing.T, file string) []block {
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(data), "\n")
	var blocks []block
	var comments []string
	for i := 0; i < len(lines); i++ {
		l := lines[i]
		switch {
		case strings.TrimSpace(l) == "":
			if len(comments) > 0 {
				comments = append(comments, "")
			}
			continue
		case strings.HasPrefix(l, "#"):
			comments = append(comments, l)
			continue
		}
		b := block{line: i + 1, cmd: l, comments: trimBlank(comments)}
		comments = nil
		i++
		if i >= len(lines) || lines[i] != "----" {
			t.Fatalf("%s:%d: command %q: want a line \"----\" after it, then the expected output and a blank line", file, i+1, l)
		}
		var want []string
		for i++; i < len(lines) && lines[i] != ""; i++ {
			want = append(want, lines[i])
		}
		b.want = strings.Join(want, "\n")
		blocks = append(blocks, b)
	}
	return blocks
}

func trimBlank(s []string) []string {
	for len(s) > 0 && s[len(s)-1] == "" {
		s = s[:len(s)-1]
	}
	return s
}

func runScript(t *testing.T, file string) {
	blocks := parseScript(t, file)
	r := &runner{t: t, file: file}
	var out strings.Builder
	failed := false
	for i, b := range blocks {
		r.line = b.line
		got := strings.TrimRight(r.exec(b.cmd), "\n")
		if i > 0 {
			out.WriteString("\n")
		}
		for _, c := range b.comments {
			out.WriteString(c + "\n")
		}
		out.WriteString(b.cmd + "\n----\n")
		if got != "" {
			out.WriteString(got + "\n")
		}
		if !*update && got != b.want {
			failed = true
			t.Errorf("%s:%d: %s\ngot:\n%s\nwant:\n%s", file, b.line, b.cmd, indent(got), indent(b.want))
		}
	}
	if *update {
		if err := os.WriteFile(file, []byte(out.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	_ = failed
}

func indent(s string) string {
	if s == "" {
		return "  (nothing)"
	}
	return "  " + strings.ReplaceAll(s, "\n", "\n  ")
}

// runner holds one script's core and clock.
type runner struct {
	t    *testing.T
	file string
	line int
	core *Core
	now  int64
	// hellos remembers each peer's hello, for frames it sends.
	kinds map[Peer]PeerKind
}

func (r *runner) fatalf(format string, args ...any) {
	r.t.Helper()
	r.t.Fatalf("%s:%d: %s", r.file, r.line, fmt.Sprintf(format, args...))
}

// fields splits a command line into words; "quoted words" keep spaces.
func fields(s string) []string {
	var out []string
	for s = strings.TrimSpace(s); s != ""; s = strings.TrimSpace(s) {
		if i := strings.Index(s, `"`); i >= 0 && !strings.ContainsAny(s[:i], " \t") {
			j := strings.Index(s[i+1:], `"`)
			if j < 0 {
				out = append(out, s)
				break
			}
			out = append(out, s[:i]+s[i+1:i+1+j])
			s = s[i+2+j:]
			continue
		}
		w, rest, _ := strings.Cut(s, " ")
		out = append(out, w)
		s = rest
	}
	return out
}

// args are a command's positional words and key=value options.
type args struct {
	r    *runner
	pos  []string
	opts map[string]string
	used map[string]bool
}

func (r *runner) parseArgs(words []string) *args {
	a := &args{r: r, opts: map[string]string{}, used: map[string]bool{}}
	for _, w := range words {
		if k, v, ok := strings.Cut(w, "="); ok && isOptionName(k) {
			a.opts[k] = v
		} else {
			a.pos = append(a.pos, w)
		}
	}
	return a
}

// isOptionName reports whether k names an option (lower-case letters and
// dashes), not a positional word such as a record "3:ok=x".
func isOptionName(k string) bool {
	return k != "" && strings.Trim(k, "abcdefghijklmnopqrstuvwxyz-") == ""
}

func (a *args) str(k, def string) string {
	a.used[k] = true
	if v, ok := a.opts[k]; ok {
		return v
	}
	return def
}

func (a *args) int(k string, def int) int {
	v := a.str(k, "")
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		a.r.fatalf("%s=%q: want an integer", k, v)
	}
	return n
}

func (a *args) dur(k string, def time.Duration) time.Duration {
	v := a.str(k, "")
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		a.r.fatalf("%s=%q: want a duration such as 1.5s", k, v)
	}
	return d
}

func (a *args) has(word string) bool {
	return slices.Contains(a.pos, word)
}

func (a *args) peer(i int) Peer {
	if i >= len(a.pos) {
		a.r.fatalf("want a peer number as argument %d", i+1)
	}
	n, err := strconv.Atoi(a.pos[i])
	if err != nil {
		a.r.fatalf("peer %q: want a number", a.pos[i])
	}
	return Peer(n)
}

func (a *args) ints(s string) []int {
	var out []int
	for f := range strings.SplitSeq(s, ",") {
		if f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil {
			a.r.fatalf("%q: want comma-separated integers", s)
		}
		out = append(out, n)
	}
	return out
}

// exec runs one command and returns its output.
func (r *runner) exec(line string) string {
	words := fields(line)
	cmd := words[0]
	a := r.parseArgs(words[1:])
	if cmd != "config" && r.core == nil {
		r.fatalf("%s before config", cmd)
	}
	if at := a.str("at", ""); at != "" {
		r.now = int64(a.dur("at", 0))
	}
	ev := Event{Now: r.now}
	switch cmd {
	case "config":
		r.config(a)
		return ""
	case "state":
		return r.state()
	case "up":
		ev.Type, ev.Peer = PeerUp, a.peer(0)
		switch k := a.pos[1]; k {
		case "client":
			ev.Kind = Client
		case "child":
			ev.Kind = Child
		case "parent":
			ev.Kind = Parent
		default:
			r.fatalf("peer kind %q: want client, child or parent", k)
		}
		ev.Hello = wire.Hello{Role: a.str("role", "worker:child"), Rank: a.int("rank", 0), Host: a.str("host", "h")}
		ev.Name = fmt.Sprintf("peer %d", ev.Peer)
		ev.Supervised = a.has("supervised")
		r.kinds[ev.Peer] = ev.Kind
	case "down":
		ev.Type, ev.Peer = PeerDown, a.peer(0)
		if e := a.str("err", ""); e != "" {
			ev.Err = errors.New(e)
		}
	case "frame":
		ev.Type, ev.Peer = Frame, a.peer(0)
		ev.Frame, ev.Body = r.frameBody(a)
		ev.More = a.int("more", 0) != 0 // the next frame is already read (a burst)
		ev.Loan = Loan(a.int("loan", 0))
	case "tick":
		ev.Type = Tick
		for _, w := range a.pos {
			// blocked:P@T, writing:P, seen:P@T
			what, rest, _ := strings.Cut(w, ":")
			ps, at, _ := strings.Cut(rest, "@")
			p, err := strconv.Atoi(ps)
			if err != nil {
				r.fatalf("tick %q: want blocked:PEER@TIME, writing:PEER or seen:PEER@TIME", w)
			}
			var ts int64
			if at != "" {
				d, err := time.ParseDuration(at)
				if err != nil {
					r.fatalf("tick %q: bad time", w)
				}
				ts = int64(d)
			}
			i := slices.IndexFunc(ev.Clocks, func(c Clock) bool { return c.Peer == Peer(p) })
			if i < 0 {
				ev.Clocks = append(ev.Clocks, Clock{Peer: Peer(p)})
				i = len(ev.Clocks) - 1
			}
			switch what {
			case "blocked":
				ev.Clocks[i].Blocked = ts
			case "writing":
				ev.Clocks[i].Writing = true
			case "seen":
				ev.Clocks[i].LastSeen = ts
			default:
				r.fatalf("tick %q: want blocked, writing or seen", w)
			}
		}
	case "timeout":
		ev.Type, ev.Peer = Timeout, a.peer(0)
		switch a.pos[1] {
		case "kill":
			ev.Timer = KillTimer
		case "exit":
			ev.Timer = ExitTimer
		default:
			r.fatalf("timer %q: want kill or exit", a.pos[1])
		}
	case "exited":
		ev.Type, ev.Rank, ev.Slots = RankExited, a.int("rank", 0), a.int("slots", 0)
		ev.Reason, ev.Restart = a.str("reason", "killed by signal 9 (SIGKILL)"), a.has("restart")
	case "started":
		ev.Type, ev.Rank = RankStarted, a.int("rank", 0)
	case "stalled":
		ev.Type, ev.Peer, ev.Reason = Stalled, a.peer(0), a.str("reason", "not reading")
	case "self-drain":
		ev.Type = SelfDrain
	case "stop":
		ev.Type, ev.Err = Stop, ErrShutdown
		if e := a.str("err", ""); e != "" {
			ev.Err = errors.New(e)
		}
	case "status-ask":
		ev.Type, ev.Token = StatusAsk, uint64(a.int("token", 1))
	default:
		r.fatalf("unknown command %q: want config, state, up, down, frame, tick, timeout, exited, started, stalled, self-drain, stop or status-ask", cmd)
	}
	for k := range a.opts {
		if !a.used[k] {
			r.fatalf("%s: unknown option %s=", cmd, k)
		}
	}
	var b strings.Builder
	for _, act := range r.core.Step(ev) {
		b.WriteString(formatAction(act))
	}
	return b.String()
}

func (r *runner) config(a *args) {
	cfg := Config{
		Server: a.has("server"), Rank: a.int("rank", 0), Host: a.str("host", "h0"),
		ExpectRanks: a.int("expect", 0), DialledChildren: a.int("dialled", 0), DialsParent: a.has("dials-parent"),
		HeartbeatTimeout: a.dur("timeout", 10*time.Second), OutboxStall: a.dur("stall", 10*time.Second),
		KillGrace: a.dur("kill-grace", 100*time.Millisecond), ExitWait: a.dur("exit-wait", 2*time.Second),
		JoinTimeout: a.dur("join-timeout", 0),
		Alloc:       a.str("alloc", ""),
	}
	if k := a.str("retry", ""); k != "" {
		cfg.Retryable = map[string]bool{}
		for name := range strings.SplitSeq(k, ",") {
			cfg.Retryable[name] = true
		}
	}
	if p := a.str("plan", ""); p != "" {
		// rank:parent:host:role,…
		for e := range strings.SplitSeq(p, ",") {
			f := strings.Split(e, ":")
			if len(f) != 4 {
				r.fatalf("plan %q: want rank:parent:host:role,…", e)
			}
			rank, _ := strconv.Atoi(f[0])
			parent, _ := strconv.Atoi(f[1])
			cfg.Plan = append(cfg.Plan, PlannedRank{Rank: rank, Parent: parent, Host: f[2], Role: f[3]})
		}
	}
	r.core = New(cfg)
	r.kinds = map[Peer]PeerKind{}
	r.now = 0
	for k := range a.opts {
		if !a.used[k] {
			r.fatalf("config: unknown option %s=", k)
		}
	}
}

// frameBody encodes the frame a "frame PEER KIND …" command describes.
func (r *runner) frameBody(a *args) (wire.Kind, []byte) {
	if len(a.pos) < 2 {
		r.fatalf("frame: want a peer and a kind")
	}
	rest := a.pos[2:]
	switch kind := a.pos[1]; kind {
	case "heartbeat":
		return wire.KindHeartbeat, nil
	case "shutdown":
		return wire.KindShutdown, wire.AppendText(nil, "stop")
	case "submit":
		// ID:KERNEL[/PAYLOAD_BYTES] …; a kernel "!" is a malformed body.
		var b []byte
		for _, rec := range rest {
			ids, k, _ := strings.Cut(rec, ":")
			id, _ := strconv.ParseUint(ids, 10, 64)
			k, size, _ := strings.Cut(k, "/")
			if k == "!" {
				b = wire.AppendRecord(b, id, []byte{0xff})
				continue
			}
			n, _ := strconv.Atoi(size)
			b = wire.AppendTaskRecord(b, id, &wire.Task{Kernel: k, Payload: make([]byte, n)})
		}
		return wire.KindSubmit, b
	case "result":
		// ID:ok[=VALUE] or ID:error=MESSAGE …
		var b []byte
		for _, rec := range rest {
			ids, res, _ := strings.Cut(rec, ":")
			id, _ := strconv.ParseUint(ids, 10, 64)
			st, val, _ := strings.Cut(res, "=")
			var body []byte
			switch st {
			case "ok":
				body = wire.AppendResult(nil, &wire.Result{Status: wire.ResultOK, Value: []byte(val)})
			case "error":
				body = wire.AppendResult(nil, &wire.Result{Status: wire.ResultError, Message: val})
			case "cancelled":
				body = wire.AppendResult(nil, &wire.Result{Status: wire.ResultCancelled})
			case "large":
				n, _ := strconv.Atoi(val)
				body = wire.AppendResult(nil, &wire.Result{Status: wire.ResultOK, Value: make([]byte, n)})
			default:
				r.fatalf("result %q: want ID:ok[=VALUE], ID:error=MESSAGE, ID:cancelled or ID:large=BYTES", rec)
			}
			b = wire.AppendRecord(b, id, body)
		}
		return wire.KindResult, b
	case "cancel":
		var ids []uint64
		for _, s := range rest {
			id, _ := strconv.ParseUint(s, 10, 64)
			ids = append(ids, id)
		}
		return wire.KindCancel, wire.AppendCancel(nil, ids)
	case "join":
		return wire.KindJoin, wire.AppendJoin(nil, &wire.Join{Ranks: a.int("ranks", 1), Slots: a.int("slots", 0), Alloc: a.str("alloc", "")})
	case "load":
		return wire.KindLoad, wire.AppendLoad(nil, &wire.Load{Idle: a.int("idle", 0), Queued: a.int("queued", 0)})
	case "status":
		return wire.KindStatus, wire.AppendStatus(nil, &wire.Status{ID: uint64(a.int("id", 1))})
	case "status-reply":
		// Rows RANK:ROLE:HOST[:lost][:alloc=JOB][:restarts=N] …, the
		// child's own first.
		s := wire.Status{ID: uint64(a.int("id", 1)), Reply: true}
		for i, row := range rest {
			f := strings.Split(row, ":")
			if len(f) < 3 {
				r.fatalf("status row %q: want RANK:ROLE:HOST[:lost][:alloc=JOB][:restarts=N]", row)
			}
			rank, _ := strconv.Atoi(f[0])
			// The first row is the child's own, the others its subtree's.
			rs := wire.RankStatus{Rank: rank, Role: f[1], Host: f[2], Depth: min(i, 1)}
			for _, opt := range f[3:] {
				k, v, _ := strings.Cut(opt, "=")
				switch k {
				case "lost":
					rs.State, rs.Depth, rs.Reason = wire.RankLost, 1, "lost below"
				case "alloc":
					rs.Alloc = v
				case "restarts":
					rs.Restarts, _ = strconv.Atoi(v)
				default:
					r.fatalf("status row %q: unknown field %q; want lost, alloc=JOB or restarts=N", row, opt)
				}
			}
			s.Ranks = append(s.Ranks, rs)
		}
		return wire.KindStatus, wire.AppendStatus(nil, &s)
	case "drain":
		return wire.KindDrain, wire.AppendDrain(nil, &wire.Drain{Ranks: a.ints(strings.Join(rest, ","))})
	case "log":
		return wire.KindLog, wire.AppendLog(nil, &wire.LogRecord{Task: uint64(a.int("task", 0)), Msg: a.str("msg", "hello")})
	case "raw":
		// KIND HEX: a frame of any kind with any bytes.
		if len(rest) < 1 {
			r.fatalf("raw: want a kind number and hex bytes")
		}
		k, _ := strconv.Atoi(rest[0])
		var b []byte
		if len(rest) > 1 {
			var err error
			if b, err = hex.DecodeString(rest[1]); err != nil {
				r.fatalf("raw: bad hex %q", rest[1])
			}
		}
		return wire.Kind(k), b
	default:
		r.fatalf("frame kind %q: want heartbeat, shutdown, submit, result, cancel, join, load, status, status-reply, drain, log or raw", kind)
	}
	return 0, nil
}

// state prints the core's state that the actions do not show.
func (r *runner) state() string {
	c := r.core
	j := c.Subtree()
	var b strings.Builder
	fmt.Fprintf(&b, "subtree ranks=%d slots=%d ready=%v stopping=%v result=%v\n", j.Ranks, j.Slots, c.Ready(), c.Stopping(), c.Result())
	s := c.Sched()
	fmt.Fprintf(&b, "tasks pending=%d held=%d reserved=%d retries=%d\n", s.Pending(), s.Held(), s.Reserved(), s.Retries())
	cn := c.Counters()
	fmt.Fprintf(&b, "clients submitted=%d completed=%d failed=%d cancelled=%d\n", cn.Submitted, cn.Completed, cn.Failed, cn.Cancelled)
	for _, id := range c.order {
		p := c.peers[id]
		fmt.Fprintf(&b, "peer %d %s rank=%d ranks=%d slots=%d holding=%d", id, p.kind, p.hello.Rank, p.ranks, p.slots, s.Holding(id))
		if p.draining {
			b.WriteString(" draining")
		}
		if p.dying {
			b.WriteString(" dying")
		}
		if p.lostReason != "" {
			fmt.Fprintf(&b, " dropped=%q", p.lostReason)
		}
		b.WriteString("\n")
	}
	return b.String()
}

// formatAction prints one action, decoding the frames it sends.
func formatAction(a Action) string {
	var b strings.Builder
	switch a.Type {
	case Send:
		fmt.Fprintf(&b, "send %d %s", a.Peer, a.Frame)
		body := a.Body
		if a.Loan != 0 {
			fmt.Fprintf(&b, " loan=%d", a.Loan)
		}
		if a.Head != nil {
			b.WriteString(" (large record)")
			body = append(append([]byte(nil), a.Head...), a.Body...)
		}
		b.WriteString(formatFrame(a.Frame, body))
	case Close, Drop:
		fmt.Fprintf(&b, "%s %d", a.Type, a.Peer)
		if a.Reason != "" {
			fmt.Fprintf(&b, " %q", a.Reason)
		}
	case Stopping:
		fmt.Fprintf(&b, "stopping %q", a.Err)
	case Kill:
		fmt.Fprintf(&b, "kill rank=%d %q", a.Rank, a.Reason)
	case Leaving:
		fmt.Fprintf(&b, "leaving rank=%d", a.Rank)
	case StartTimer:
		fmt.Fprintf(&b, "timer %d %s %v", a.Peer, a.Timer, a.After)
	case Released:
		fmt.Fprintf(&b, "released loan=%d", a.Loan)
	case StatusReply:
		fmt.Fprintf(&b, "status-reply token=%d", a.Token)
		b.WriteString(formatRows(a.Ranks))
	default:
		b.WriteString(a.Type.String())
	}
	b.WriteString("\n")
	return b.String()
}

func formatFrame(k wire.Kind, body []byte) string {
	var b strings.Builder
	switch k {
	case wire.KindSubmit, wire.KindResult:
		recs := wire.NewRecords(body)
		for {
			id, rec, ok := recs.Next()
			if !ok {
				break
			}
			if k == wire.KindSubmit {
				var t wire.Task
				if err := wire.DecodeTask(rec, &t); err != nil {
					fmt.Fprintf(&b, "\n  %d malformed", id)
					continue
				}
				fmt.Fprintf(&b, "\n  %d %s", id, t.Kernel)
				if len(t.Payload) > 0 {
					fmt.Fprintf(&b, " payload=%d", len(t.Payload))
				}
				continue
			}
			var res wire.Result
			if err := wire.DecodeResult(rec, &res); err != nil {
				fmt.Fprintf(&b, "\n  %d malformed", id)
				continue
			}
			fmt.Fprintf(&b, "\n  %d %s", id, resultStatus(res.Status))
			switch {
			case res.Status == wire.ResultOK && len(res.Value) > 64:
				fmt.Fprintf(&b, " value=%d bytes", len(res.Value))
			case res.Status == wire.ResultOK:
				fmt.Fprintf(&b, " %q", res.Value)
			default:
				fmt.Fprintf(&b, " rank=%d host=%s", res.Rank, res.Host)
				if res.Kernel != "" {
					fmt.Fprintf(&b, " kernel=%s", res.Kernel)
				}
				if res.Message != "" {
					fmt.Fprintf(&b, " %q", res.Message)
				}
			}
		}
		if recs.Err() != nil {
			fmt.Fprintf(&b, "\n  (bad batch: %v)", recs.Err())
		}
	case wire.KindCancel:
		ids, err := wire.DecodeCancel(body, nil)
		if err != nil {
			return " (bad)"
		}
		for _, id := range ids {
			fmt.Fprintf(&b, " %d", id)
		}
	case wire.KindJoin:
		var j wire.Join
		_ = wire.DecodeJoin(body, &j)
		fmt.Fprintf(&b, " ranks=%d slots=%d", j.Ranks, j.Slots)
		if j.Alloc != "" {
			fmt.Fprintf(&b, " alloc=%s", j.Alloc)
		}
	case wire.KindLoad:
		var l wire.Load
		_ = wire.DecodeLoad(body, &l)
		fmt.Fprintf(&b, " idle=%d queued=%d steal=%d", l.Idle, l.Queued, l.Steal)
	case wire.KindDrain:
		var d wire.Drain
		_ = wire.DecodeDrain(body, &d)
		for _, r := range d.Ranks {
			fmt.Fprintf(&b, " %d", r)
		}
	case wire.KindShutdown:
		s, _ := wire.DecodeText(body)
		fmt.Fprintf(&b, " %q", s)
	case wire.KindStatus:
		var s wire.Status
		if err := wire.DecodeStatus(body, &s); err != nil {
			return " (bad)"
		}
		if s.Reply {
			fmt.Fprintf(&b, " reply id=%d", s.ID)
			b.WriteString(formatRows(s.Ranks))
		} else {
			fmt.Fprintf(&b, " id=%d", s.ID)
		}
	case wire.KindLog:
		var l wire.LogRecord
		for rest := body; len(rest) > 0; {
			var err error
			if rest, err = wire.DecodeLog(rest, &l); err != nil {
				return " (bad)"
			}
			fmt.Fprintf(&b, " task=%d %q", l.Task, l.Msg)
		}
	case wire.KindHeartbeat:
	default:
		if len(body) > 0 {
			fmt.Fprintf(&b, " %x", body)
		}
	}
	return b.String()
}

func resultStatus(s byte) string {
	switch s {
	case wire.ResultOK:
		return "ok"
	case wire.ResultError:
		return "error"
	case wire.ResultCancelled:
		return "cancelled"
	case wire.ResultLost:
		return "lost"
	}
	return fmt.Sprintf("status(%d)", s)
}

func formatRows(rows []wire.RankStatus) string {
	var b bytes.Buffer
	for _, r := range rows {
		fmt.Fprintf(&b, "\n  rank=%d parent=%d depth=%d role=%s host=%s state=%s queued=%d done=%d", r.Rank, r.Parent, r.Depth, r.Role, r.Host, r.State, r.Queued, r.Done)
		if r.Since != 0 {
			fmt.Fprintf(&b, " since=%v", time.Duration(r.Since))
		}
		if r.Silent != 0 {
			fmt.Fprintf(&b, " silent=%v", r.Silent)
		}
		if r.Alloc != "" {
			fmt.Fprintf(&b, " alloc=%s", r.Alloc)
		}
		if r.Restarts != 0 {
			fmt.Fprintf(&b, " restarts=%d", r.Restarts)
		}
		if r.Reason != "" {
			fmt.Fprintf(&b, " %q", r.Reason)
		}
	}
	return b.String()
}
