// Package metrics serves a qlaunch server's metrics over HTTP in the
// Prometheus text exposition format (version 0.0.4), written here.
//
// The endpoint is off unless asked for (qlaunch server --metrics ADDR,
// qlaunch run --metrics ADDR, the topology's server.metrics) and bound to
// loopback unless an address says otherwise. Every scrape reads the
// server's counters through a launcher.Monitor. The per-rank figures come
// from a status round of the whole tree (bounded by a timeout), which a
// scrape does not repeat at will: concurrent scrapes share one round, and
// a scrape within MinStatusAge of the end of the last round reuses its
// result, so however many scrapers there are, and however fast they
// scrape, the tree answers at most one status round per MinStatusAge (plus
// the round's own duration). The handler serves at most
// MaxScrapesInFlight scrapes at once; more are answered 503. Nothing is
// registered globally.
//
// The format is written here rather than by the Prometheus client library:
// every qlaunch process links this package, and the library's package
// initialisation (its default registry with the Go and process collectors,
// protobuf descriptors, expvar) took about a fifth of the CPU time of
// every process start, the worker ranks' and clients' too, which never
// serve metrics (qlaunch bench --trace-startup and GODEBUG=inittrace=1:
// 6 of 27 ms of "qlaunch version" on the developers' 2-CPU guest). The
// tests read the output with the Prometheus parser (expfmt).
//
// Metrics (all prefixed qlaunch_):
//
//	tasks_submitted_total, tasks_completed_total, tasks_failed_total,
//	tasks_cancelled_total, tasks_retried_total   counters, the server's clients' tasks
//	worker_restarts_total                           worker-rank processes the server's process started again
//	queue_depth, tasks_in_flight                  tasks waiting for a slot; placed and unfinished
//	ranks, slots, clients                         the tree's size and connected clients
//	wire_payload_bytes_total{direction}           bytes before compression (in, out)
//	wire_bytes_total{direction}                   bytes on the wire, after compression
//	wire_frames_total{direction}, wire_compressed_frames_total{direction}
//	rank_up{rank,host,role}                       1 joined, 0 missing or lost (planned jobs)
//	rank_slots, rank_busy_slots, rank_queued_tasks{rank,host,role}
//	rank_tasks_done_total{rank,host,role}         tasks the rank finished
//	rank_heartbeat_age_seconds{rank,host,role}    how long its parent had not heard from it
//	scrape_status_errors_total                    scrapes whose tree status failed
//
// and, as the Prometheus client's Go and process collectors name them:
//
//	go_goroutines, go_threads, go_info{version}
//	go_memstats_alloc_bytes, go_memstats_alloc_bytes_total, go_memstats_sys_bytes,
//	go_memstats_heap_objects, go_memstats_last_gc_time_seconds
//	process_cpu_seconds_total, process_resident_memory_bytes,
//	process_virtual_memory_bytes, process_open_fds, process_max_fds,
//	process_start_time_seconds   (Linux: from /proc)
package metrics

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/qlaunch/qlaunch/launcher"
	"github.com/qlaunch/qlaunch/launcher/wire"
)

// DefaultStatusTimeout bounds the tree status a scrape asks for.
const DefaultStatusTimeout = 2 * time.Second

// MinStatusAge is how long after a tree status round ends its result
// serves the scrapes that follow, instead of a new round.
const MinStatusAge = time.Second

// MaxScrapesInFlight bounds the scrapes Handler serves at once; a scrape
// beyond it is answered 503 Service Unavailable. The tree's cost does not
// depend on it (scrapes share status rounds, and one waiting for a round
// only blocks on it), so it is far above any real set of scrapers (an HA
// Prometheus pair and an agent stay served while a slow round runs to its
// timeout) and only bounds what a flood of requests holds.
const MaxScrapesInFlight = 64

// Source is what the metrics read: a *launcher.Monitor.
type Source interface {
	Stats() (launcher.Stats, error)
	Status(ctx context.Context) ([]wire.RankStatus, error)
}

// AllocSource is what a Source also gives when its server grows the job
// by itself (topology [alloc]): how many of the allocations it submitted
// are in each phase (pending, running, joined, draining, ended).
type AllocSource interface {
	AllocationPhases() map[string]int
}

// AllocPhases are the phases qlaunch_allocations reports, every one of
// them on every scrape.
var AllocPhases = []string{"pending", "running", "joined", "draining", "ended"}

// Collector turns a server's counters and its tree's status into metrics.
type Collector struct {
	src     Source
	timeout time.Duration
	errs    atomic.Uint64

	mu    sync.Mutex
	round *statusRound // the round in flight, else the last one; nil before the first
}

// statusRound is one tree status taken for the scrapes: ranks and err are
// set, and end is the time it ended, once done is closed.
type statusRound struct {
	done  chan struct{}
	ranks []wire.RankStatus
	err   error
	end   time.Time
}

// NewCollector returns a Collector reading src; timeout bounds the tree
// status of one round (zero: DefaultStatusTimeout). Concurrent Write
// calls share one round; one within MinStatusAge of the end of the last
// round reuses its result.
func NewCollector(src Source, timeout time.Duration) *Collector {
	if timeout <= 0 {
		timeout = DefaultStatusTimeout
	}
	return &Collector{src: src, timeout: timeout}
}

// family is one metric of the exposition with its samples.
type family struct {
	name, help, kind string // kind: counter or gauge
	samples          []sample
}

type sample struct {
	labels []string // name, value, name, value…
	value  float64
}

// families collects samples by metric name.
type families map[string]*family

func (fs families) add(name, kind, help string, v float64, labels ...string) {
	f := fs[name]
	if f == nil {
		f = &family{name: name, help: help, kind: kind}
		fs[name] = f
	}
	f.samples = append(f.samples, sample{labels: labels, value: v})
}

// write writes every family in the text format, sorted by name, each
// family's samples in the order added.
func (fs families) write(w io.Writer) error {
	names := make([]string, 0, len(fs))
	for n := range fs {
		names = append(names, n)
	}
	slices.Sort(names)
	var b []byte
	for _, n := range names {
		f := fs[n]
		b = fmt.Appendf(b, "# HELP %s %s\n# TYPE %s %s\n", f.name, helpEscaper.Replace(f.help), f.name, f.kind)
		for _, s := range f.samples {
			b = append(b, f.name...)
			if len(s.labels) > 0 {
				b = append(b, '{')
				for i := 0; i+1 < len(s.labels); i += 2 {
					if i > 0 {
						b = append(b, ',')
					}
					b = append(b, s.labels[i]...)
					b = append(b, '=', '"')
					b = append(b, labelEscaper.Replace(s.labels[i+1])...)
					b = append(b, '"')
				}
				b = append(b, '}')
			}
			b = append(b, ' ')
			b = strconv.AppendFloat(b, s.value, 'g', -1, 64)
			b = append(b, '\n')
		}
	}
	_, err := w.Write(b)
	return err
}

// The text format's escapes: of HELP text, backslash and line feed; of
// label values, also the double quote.
var (
	helpEscaper  = strings.NewReplacer(`\`, `\\`, "\n", `\n`)
	labelEscaper = strings.NewReplacer(`\`, `\\`, "\n", `\n`, `"`, `\"`)
)

// Write reads the server's counters and its tree's status and writes
// them, with the Go runtime's and the process's figures, in the text
// format. A server that is not running has no qlaunch_ metrics.
func (c *Collector) Write(w io.Writer) error {
	fs := families{}
	c.collect(fs)
	collectRuntime(fs)
	collectProcess(fs)
	return fs.write(w)
}

// collect adds the server's counters and its tree's status.
func (c *Collector) collect(fs families) {
	s, err := c.src.Stats()
	if err != nil {
		return // not running: no metrics
	}
	counter := func(name, help string, v uint64, labels ...string) {
		fs.add("qlaunch_"+name, "counter", help, float64(v), labels...)
	}
	gauge := func(name, help string, v float64, labels ...string) {
		fs.add("qlaunch_"+name, "gauge", help, v, labels...)
	}
	counter("tasks_submitted_total", "Tasks the server's clients submitted.", s.Submitted)
	counter("tasks_completed_total", "Tasks whose kernel returned, as reported to clients.", s.Completed)
	counter("tasks_failed_total", "Tasks whose kernel failed or whose rank was lost, as reported to clients.", s.Failed)
	counter("tasks_cancelled_total", "Tasks cancelled, as reported to clients.", s.Cancelled)
	counter("tasks_retried_total", "Retryable tasks placed again after their rank was lost.", s.Retried)
	counter("worker_restarts_total", "Worker-rank processes that the server's process started again after they died.", s.Restarts)
	gauge("queue_depth", "Tasks at the server waiting for a free worker slot.", float64(s.Held))
	gauge("tasks_in_flight", "Tasks placed below the server and not finished.", float64(s.InFlight))
	gauge("ranks", "Ranks in the tree, the server included.", float64(s.Ranks))
	gauge("slots", "Worker slots in the tree.", float64(s.Slots))
	gauge("clients", "Clients connected to the server.", float64(s.Clients))
	for _, d := range []struct {
		dir                                string
		payload, wireBytes, frames, packed uint64
	}{
		{"in", s.Wire.PayloadIn, s.Wire.WireIn, s.Wire.FramesIn, s.Wire.CompressedIn},
		{"out", s.Wire.PayloadOut, s.Wire.WireOut, s.Wire.FramesOut, s.Wire.CompressedOut},
	} {
		counter("wire_payload_bytes_total", "Frame payload bytes of the server's connections before compression.", d.payload, "direction", d.dir)
		counter("wire_bytes_total", "Bytes of the server's connections on the wire, after compression.", d.wireBytes, "direction", d.dir)
		counter("wire_frames_total", "Frames of the server's connections.", d.frames, "direction", d.dir)
		counter("wire_compressed_frames_total", "Frames of the server's connections that travelled compressed.", d.packed, "direction", d.dir)
	}
	if a, ok := c.src.(AllocSource); ok {
		phases := a.AllocationPhases()
		for _, p := range AllocPhases {
			gauge("allocations", "Allocations the server submitted by itself ([alloc]), by phase.", float64(phases[p]), "phase", p)
		}
	}

	ranks, err := c.status()
	if err != nil {
		c.errs.Add(1)
	}
	counter("scrape_status_errors_total", "Scrapes whose tree status could not be taken.", c.errs.Load())
	seen := make(map[int]bool, len(ranks))
	for _, r := range ranks {
		if seen[r.Rank] {
			continue // a rank lost then joined again: its live row came first
		}
		seen[r.Rank] = true
		l := []string{"host", r.Host, "rank", strconv.Itoa(r.Rank), "role", r.Role}
		if r.State != wire.RankJoined {
			gauge("rank_up", "1 for a rank in the tree, 0 for a planned rank missing or lost.", 0, l...)
			continue
		}
		gauge("rank_up", "1 for a rank in the tree, 0 for a planned rank missing or lost.", 1, l...)
		gauge("rank_heartbeat_age_seconds", "How long the rank's parent had not heard from it.", r.Silent.Seconds(), l...)
		gauge("rank_queued_tasks", "Tasks queued at a rank.", float64(r.Queued), l...)
		counter("rank_tasks_done_total", "Tasks a rank finished.", r.Done, l...)
		if r.Role == "worker" {
			gauge("rank_slots", "Worker slots of a worker rank.", float64(r.Slots), l...)
			gauge("rank_busy_slots", "Worker slots running a kernel.", float64(r.Busy), l...)
		}
	}
}

// collectRuntime adds the Go runtime's figures, named as the Prometheus
// client's Go collector names them.
func collectRuntime(fs families) {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	fs.add("go_goroutines", "gauge", "Number of goroutines that currently exist.", float64(runtime.NumGoroutine()))
	fs.add("go_info", "gauge", "Information about the Go environment.", 1, "version", runtime.Version())
	fs.add("go_memstats_alloc_bytes", "gauge", "Number of bytes allocated in heap and currently in use.", float64(m.HeapAlloc))
	fs.add("go_memstats_alloc_bytes_total", "counter", "Total number of bytes allocated in heap until now, even if released already.", float64(m.TotalAlloc))
	fs.add("go_memstats_sys_bytes", "gauge", "Number of bytes obtained from system.", float64(m.Sys))
	fs.add("go_memstats_heap_objects", "gauge", "Number of currently allocated objects.", float64(m.HeapObjects))
	fs.add("go_memstats_last_gc_time_seconds", "gauge", "Number of seconds since 1970 of last garbage collection.", float64(m.LastGC)/1e9)
	if v, ok := procStatusField("Threads:"); ok {
		fs.add("go_threads", "gauge", "Number of OS threads created.", v)
	}
}

// status returns the tree's status: that of the round in flight once it
// ends, else that of the last round if it ended less than MinStatusAge
// ago, else that of a new round.
func (c *Collector) status() ([]wire.RankStatus, error) {
	c.mu.Lock()
	if r := c.round; r != nil {
		select {
		case <-r.done:
			if time.Since(r.end) < MinStatusAge {
				c.mu.Unlock()
				return r.ranks, r.err
			}
		default:
			c.mu.Unlock()
			<-r.done
			return r.ranks, r.err
		}
	}
	r := &statusRound{done: make(chan struct{})}
	c.round = r
	c.mu.Unlock()

	defer func() {
		r.end = time.Now()
		close(r.done)
	}()
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	r.ranks, r.err = c.src.Status(ctx)
	return r.ranks, r.err
}

// collectProcess adds the process's figures, named as the Prometheus
// client's process collector names them; on Linux only (from /proc), as
// there.
func collectProcess(fs families) {
	if runtime.GOOS != "linux" {
		return
	}
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		cpu := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
		fs.add("process_cpu_seconds_total", "counter", "Total user and system CPU time spent in seconds.", cpu.Seconds())
	}
	if b, err := os.ReadFile("/proc/self/statm"); err == nil {
		if f := strings.Fields(string(b)); len(f) >= 2 {
			page := float64(os.Getpagesize())
			if v, err := strconv.ParseFloat(f[0], 64); err == nil {
				fs.add("process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.", v*page)
			}
			if v, err := strconv.ParseFloat(f[1], 64); err == nil {
				fs.add("process_resident_memory_bytes", "gauge", "Resident memory size in bytes.", v*page)
			}
		}
	}
	if fds, err := os.ReadDir("/proc/self/fd"); err == nil {
		fs.add("process_open_fds", "gauge", "Number of open file descriptors.", float64(len(fds)))
	}
	var lim syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim) == nil {
		fs.add("process_max_fds", "gauge", "Maximum number of open file descriptors.", float64(lim.Cur))
	}
	if t, ok := processStart(); ok {
		fs.add("process_start_time_seconds", "gauge", "Start time of the process since unix epoch in seconds.", t)
	}
}

// procStatusField returns the number after key in /proc/self/status.
func procStatusField(key string) (float64, bool) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, false
	}
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, key); ok {
			v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
			return v, err == nil
		}
	}
	return 0, false
}

// clockTicks is USER_HZ, the unit of /proc's process times: 100 on every
// Linux architecture Go supports.
const clockTicks = 100

// processStart is the process's start time, Unix seconds: the boot time
// (/proc/stat btime) plus its start after boot (/proc/self/stat, field
// 22, after the command name, which may hold spaces and parentheses).
func processStart() (float64, bool) {
	stat, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		return 0, false
	}
	i := strings.LastIndexByte(string(stat), ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(string(stat[i+1:]))
	const startField = 22 - 3 // fields 3… follow the name (field 2)
	if len(f) <= startField {
		return 0, false
	}
	ticks, err := strconv.ParseFloat(f[startField], 64)
	if err != nil {
		return 0, false
	}
	sys, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, false
	}
	for line := range strings.Lines(string(sys)) {
		if rest, ok := strings.CutPrefix(line, "btime "); ok {
			boot, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
			return boot + ticks/clockTicks, err == nil
		}
	}
	return 0, false
}

// Handler serves c's metrics at /metrics (and a short page at /), at
// most MaxScrapesInFlight scrapes at once: more are answered 503.
func Handler(c *Collector, log *slog.Logger) http.Handler {
	inFlight := make(chan struct{}, MaxScrapesInFlight)
	mux := http.NewServeMux()
	mux.HandleFunc("/metrics", func(w http.ResponseWriter, r *http.Request) {
		select {
		case inFlight <- struct{}{}:
			defer func() { <-inFlight }()
		default:
			http.Error(w, fmt.Sprintf("Limit of concurrent requests reached (%d), try again later.", MaxScrapesInFlight), http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		if err := c.Write(w); err != nil {
			log.Warn("writing metrics", "err", err)
		}
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		fmt.Fprintln(w, "qlaunch server metrics: /metrics")
	})
	return mux
}

// Serve serves src's metrics on ln until ctx ends, then closes ln. It
// returns nil after ctx ended.
func Serve(ctx context.Context, ln net.Listener, src Source, log *slog.Logger) error {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	// A request line is due at once (a scraper sends it whole): a peer
	// that sends none, such as a qlaunch client given this port, gets its
	// "400 Bad Request" (and can say it reached HTTP) well within its own
	// 10 s handshake timeout.
	srv := &http.Server{Handler: Handler(NewCollector(src, 0), log), ReadHeaderTimeout: 3 * time.Second}
	stopped := context.AfterFunc(ctx, func() {
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	})
	defer stopped()
	log.Info("serving metrics", "address", "http://"+ln.Addr().String()+"/metrics")
	err := srv.Serve(ln)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return fmt.Errorf("metrics: %w", err)
}

// Listen opens the listener of a metrics address as topology.MetricsAddr
// returns it (a port alone means loopback).
func Listen(addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	return ln, nil
}
