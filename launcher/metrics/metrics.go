// Package metrics serves a qlaunch server's metrics over HTTP in the
// Prometheus text format, with the Prometheus client library.
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
// MaxScrapesInFlight scrapes at once; more are answered 503. Each server
// has its own prometheus.Registry: nothing is registered globally.
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
package metrics

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

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

	submitted, completed, failed, cancelled, retried *prometheus.Desc
	restarts                                         *prometheus.Desc
	queue, inFlight, ranks, slots, clients           *prometheus.Desc
	payload, wireBytes, frames, compressed           *prometheus.Desc
	up, rankSlots, busy, queued, done, heartbeat     *prometheus.Desc
	statusErrors                                     *prometheus.Desc
	allocations                                      *prometheus.Desc
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
// status of one round (zero: DefaultStatusTimeout). Concurrent Collect
// calls share one round; one within MinStatusAge of the end of the last
// round reuses its result.
func NewCollector(src Source, timeout time.Duration) *Collector {
	if timeout <= 0 {
		timeout = DefaultStatusTimeout
	}
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("qlaunch_"+name, help, labels, nil)
	}
	rank := []string{"rank", "host", "role"}
	return &Collector{
		src: src, timeout: timeout,
		submitted:    d("tasks_submitted_total", "Tasks the server's clients submitted."),
		completed:    d("tasks_completed_total", "Tasks whose kernel returned, as reported to clients."),
		failed:       d("tasks_failed_total", "Tasks whose kernel failed or whose rank was lost, as reported to clients."),
		cancelled:    d("tasks_cancelled_total", "Tasks cancelled, as reported to clients."),
		retried:      d("tasks_retried_total", "Retryable tasks placed again after their rank was lost."),
		restarts:     d("worker_restarts_total", "Worker-rank processes that the server's process started again after they died."),
		queue:        d("queue_depth", "Tasks at the server waiting for a free worker slot."),
		inFlight:     d("tasks_in_flight", "Tasks placed below the server and not finished."),
		ranks:        d("ranks", "Ranks in the tree, the server included."),
		slots:        d("slots", "Worker slots in the tree."),
		clients:      d("clients", "Clients connected to the server."),
		payload:      d("wire_payload_bytes_total", "Frame payload bytes of the server's connections before compression.", "direction"),
		wireBytes:    d("wire_bytes_total", "Bytes of the server's connections on the wire, after compression.", "direction"),
		frames:       d("wire_frames_total", "Frames of the server's connections.", "direction"),
		compressed:   d("wire_compressed_frames_total", "Frames of the server's connections that travelled compressed.", "direction"),
		up:           d("rank_up", "1 for a rank in the tree, 0 for a planned rank missing or lost.", rank...),
		rankSlots:    d("rank_slots", "Worker slots of a worker rank.", rank...),
		busy:         d("rank_busy_slots", "Worker slots running a kernel.", rank...),
		queued:       d("rank_queued_tasks", "Tasks queued at a rank.", rank...),
		done:         d("rank_tasks_done_total", "Tasks a rank finished.", rank...),
		heartbeat:    d("rank_heartbeat_age_seconds", "How long the rank's parent had not heard from it.", rank...),
		statusErrors: d("scrape_status_errors_total", "Scrapes whose tree status could not be taken."),
		allocations:  d("allocations", "Allocations the server submitted by itself ([alloc]), by phase.", "phase"),
	}
}

// Describe sends the descriptors of every metric.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{
		c.submitted, c.completed, c.failed, c.cancelled, c.retried, c.restarts, c.queue, c.inFlight, c.ranks, c.slots,
		c.clients, c.payload, c.wireBytes, c.frames, c.compressed, c.up, c.rankSlots, c.busy, c.queued,
		c.done, c.heartbeat, c.statusErrors, c.allocations,
	} {
		ch <- d
	}
}

// Collect reads the server's counters and its tree's status.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	s, err := c.src.Stats()
	if err != nil {
		return // not running: no metrics
	}
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter(c.submitted, s.Submitted)
	counter(c.completed, s.Completed)
	counter(c.failed, s.Failed)
	counter(c.cancelled, s.Cancelled)
	counter(c.retried, s.Retried)
	counter(c.restarts, s.Restarts)
	gauge(c.queue, float64(s.Held))
	gauge(c.inFlight, float64(s.InFlight))
	gauge(c.ranks, float64(s.Ranks))
	gauge(c.slots, float64(s.Slots))
	gauge(c.clients, float64(s.Clients))
	counter(c.payload, s.Wire.PayloadIn, "in")
	counter(c.payload, s.Wire.PayloadOut, "out")
	counter(c.wireBytes, s.Wire.WireIn, "in")
	counter(c.wireBytes, s.Wire.WireOut, "out")
	counter(c.frames, s.Wire.FramesIn, "in")
	counter(c.frames, s.Wire.FramesOut, "out")
	counter(c.compressed, s.Wire.CompressedIn, "in")
	counter(c.compressed, s.Wire.CompressedOut, "out")
	if a, ok := c.src.(AllocSource); ok {
		phases := a.AllocationPhases()
		for _, p := range AllocPhases {
			gauge(c.allocations, float64(phases[p]), p)
		}
	}

	ranks, err := c.status()
	if err != nil {
		c.errs.Add(1)
	}
	counter(c.statusErrors, c.errs.Load())
	seen := make(map[int]bool, len(ranks))
	for _, r := range ranks {
		if seen[r.Rank] {
			continue // a rank lost then joined again: its live row came first
		}
		seen[r.Rank] = true
		l := []string{strconv.Itoa(r.Rank), r.Host, r.Role}
		if r.State != wire.RankJoined {
			gauge(c.up, 0, l...)
			continue
		}
		gauge(c.up, 1, l...)
		gauge(c.heartbeat, r.Silent.Seconds(), l...)
		gauge(c.queued, float64(r.Queued), l...)
		counter(c.done, r.Done, l...)
		if r.Role == "worker" {
			gauge(c.rankSlots, float64(r.Slots), l...)
			gauge(c.busy, float64(r.Busy), l...)
		}
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

// NewRegistry returns a registry holding a Collector of src and the Go
// runtime and process collectors.
func NewRegistry(src Source, timeout time.Duration) (*prometheus.Registry, error) {
	reg := prometheus.NewRegistry()
	for _, c := range []prometheus.Collector{
		NewCollector(src, timeout),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("metrics: %w", err)
		}
	}
	return reg, nil
}

// Handler serves reg's metrics at /metrics (and a short page at /), at
// most MaxScrapesInFlight scrapes at once.
func Handler(reg *prometheus.Registry, log *slog.Logger) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn), ErrorHandling: promhttp.ContinueOnError,
		MaxRequestsInFlight: MaxScrapesInFlight,
	}))
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
	reg, err := NewRegistry(src, 0)
	if err != nil {
		ln.Close()
		return err
	}
	// A request line is due at once (a scraper sends it whole): a peer
	// that sends none, such as a qlaunch client given this port, gets its
	// "400 Bad Request" (and can say it reached HTTP) well within its own
	// 10 s handshake timeout.
	srv := &http.Server{Handler: Handler(reg, log), ReadHeaderTimeout: 3 * time.Second}
	stopped := context.AfterFunc(ctx, func() {
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	})
	defer stopped()
	log.Info("serving metrics", "address", "http://"+ln.Addr().String()+"/metrics")
	err = srv.Serve(ln)
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
