package metrics_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/qlaunch/qlaunch/launcher"
	"github.com/qlaunch/qlaunch/launcher/metrics"
	"github.com/qlaunch/qlaunch/launcher/wire"
)

// fakeSource counts its Status calls; each blocks until release is
// closed, then returns ranks and err.
type fakeSource struct {
	calls   atomic.Int32
	release chan struct{}
	ranks   []wire.RankStatus
	err     error
}

func (f *fakeSource) Stats() (launcher.Stats, error) {
	return launcher.Stats{Submitted: 7, Completed: 5, Failed: 1, Held: 2, InFlight: 1, Ranks: 2, Slots: 4, Clients: 1}, nil
}

func (f *fakeSource) Status(ctx context.Context) ([]wire.RankStatus, error) {
	f.calls.Add(1)
	select {
	case <-f.release:
		return f.ranks, f.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

var fakeRanks = []wire.RankStatus{
	{Rank: 0, Parent: -1, Role: "server", Host: "h0", Done: 0, State: wire.RankJoined},
	{Rank: 1, Parent: 0, Depth: 1, Role: "worker", Host: "h1", Slots: 4, Busy: 3, Queued: 2, Done: 9, State: wire.RankJoined},
}

// gather scrapes c once, reads the scrape with the Prometheus text
// parser, and returns its qlaunch_ samples, "name{labels} value" a line,
// sorted.
func gather(c *metrics.Collector) (string, error) {
	var b strings.Builder
	if err := c.Write(&b); err != nil {
		return "", err
	}
	p := expfmt.NewTextParser(model.LegacyValidation)
	mfs, err := p.TextToMetricFamilies(strings.NewReader(b.String()))
	if err != nil {
		return "", fmt.Errorf("%w in\n%s", err, b.String())
	}
	var lines []string
	for _, mf := range mfs {
		if !strings.HasPrefix(mf.GetName(), "qlaunch_") {
			continue
		}
		for _, m := range mf.GetMetric() {
			var l []string
			for _, p := range m.GetLabel() {
				l = append(l, p.GetName()+"="+p.GetValue())
			}
			v := m.GetGauge().GetValue() + m.GetCounter().GetValue()
			lines = append(lines, fmt.Sprintf("%s{%s} %g", mf.GetName(), strings.Join(l, ","), v))
		}
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n"), nil
}

// gatherN scrapes c from n goroutines at once and returns what each got
// once all have; the caller first waits (synctest.Wait) for them to block.
func gatherN(reg *metrics.Collector, n int) (results func() []string) {
	ch := make(chan string, n)
	for range n {
		go func() {
			s, err := gather(reg)
			if err != nil {
				s = "error: " + err.Error()
			}
			ch <- s
		}()
	}
	return func() []string {
		out := make([]string, n)
		for i := range out {
			out[i] = <-ch
		}
		return out
	}
}

const wantFakeSamples = `qlaunch_clients{} 1
qlaunch_queue_depth{} 2
qlaunch_rank_busy_slots{host=h1,rank=1,role=worker} 3
qlaunch_rank_heartbeat_age_seconds{host=h0,rank=0,role=server} 0
qlaunch_rank_heartbeat_age_seconds{host=h1,rank=1,role=worker} 0
qlaunch_rank_queued_tasks{host=h0,rank=0,role=server} 0
qlaunch_rank_queued_tasks{host=h1,rank=1,role=worker} 2
qlaunch_rank_slots{host=h1,rank=1,role=worker} 4
qlaunch_rank_tasks_done_total{host=h0,rank=0,role=server} 0
qlaunch_rank_tasks_done_total{host=h1,rank=1,role=worker} 9
qlaunch_rank_up{host=h0,rank=0,role=server} 1
qlaunch_rank_up{host=h1,rank=1,role=worker} 1
qlaunch_ranks{} 2
qlaunch_scrape_status_errors_total{} 0
qlaunch_slots{} 4
qlaunch_tasks_cancelled_total{} 0
qlaunch_tasks_completed_total{} 5
qlaunch_tasks_failed_total{} 1
qlaunch_tasks_in_flight{} 1
qlaunch_tasks_retried_total{} 0
qlaunch_tasks_submitted_total{} 7
qlaunch_wire_bytes_total{direction=in} 0
qlaunch_wire_bytes_total{direction=out} 0
qlaunch_wire_compressed_frames_total{direction=in} 0
qlaunch_wire_compressed_frames_total{direction=out} 0
qlaunch_wire_frames_total{direction=in} 0
qlaunch_wire_frames_total{direction=out} 0
qlaunch_wire_payload_bytes_total{direction=in} 0
qlaunch_wire_payload_bytes_total{direction=out} 0
qlaunch_worker_restarts_total{} 0`

// TestScrapesShareStatusRounds: concurrent scrapes share one tree status
// round, and scrapes within MinStatusAge of its end reuse its result; the
// first scrape after that takes a new round.
func TestScrapesShareStatusRounds(t *testing.T) {
	const n = 8
	synctest.Test(t, func(t *testing.T) {
		src := &fakeSource{release: make(chan struct{}), ranks: fakeRanks}
		reg := metrics.NewCollector(src, 0)
		check := func(what string, wantCalls int32, got []string) {
			t.Helper()
			if c := src.calls.Load(); c != wantCalls {
				t.Errorf("%s: %d Status calls, want %d", what, c, wantCalls)
			}
			for i, s := range got {
				if s != wantFakeSamples {
					t.Errorf("%s: scrape %d got\n%s\nwant\n%s", what, i, s, wantFakeSamples)
				}
			}
		}

		results := gatherN(reg, n)
		synctest.Wait() // one scrape in Status, the others waiting for it
		if c := src.calls.Load(); c != 1 {
			t.Errorf("%d concurrent scrapes: %d Status calls in flight, want 1", n, c)
		}
		close(src.release)
		check("concurrent", 1, results())

		time.Sleep(metrics.MinStatusAge - time.Nanosecond)
		check("within MinStatusAge", 1, gatherN(reg, n)())

		time.Sleep(time.Nanosecond)
		check("at MinStatusAge", 2, gatherN(reg, 1)())
		check("after the second round", 2, gatherN(reg, n)())
	})
}

// TestFailedStatusRoundShared: a failed round is shared and reused too;
// every scrape it serves counts as one whose status failed.
func TestFailedStatusRoundShared(t *testing.T) {
	const n = 5
	synctest.Test(t, func(t *testing.T) {
		src := &fakeSource{release: make(chan struct{}), err: errors.New("tree down")}
		reg := metrics.NewCollector(src, 0)
		results := gatherN(reg, n)
		synctest.Wait()
		close(src.release)
		for _, s := range results() {
			if strings.Contains(s, "qlaunch_rank_") || !strings.Contains(s, "qlaunch_tasks_submitted_total{} 7") {
				t.Errorf("scrape of a failed round:\n%s", s)
			}
		}
		s, err := gather(reg)
		if err != nil {
			t.Fatal(err)
		}
		if want := fmt.Sprintf("qlaunch_scrape_status_errors_total{} %d\n", n+1); !strings.Contains(s, want) {
			t.Errorf("after %d scrapes of one failed round got\n%s\nwant %q", n+1, s, want)
		}
		if c := src.calls.Load(); c != 1 {
			t.Errorf("%d Status calls, want 1", c)
		}
	})
}

// TestStatusRoundTimeout: a round that the tree does not answer ends at
// the collector's timeout, failed, for every scrape waiting on it.
func TestStatusRoundTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := &fakeSource{release: make(chan struct{})} // never released
		reg := metrics.NewCollector(src, 3*time.Second)
		start := time.Now()
		results := gatherN(reg, 3)()
		if d := time.Since(start); d != 3*time.Second {
			t.Errorf("scrapes ended after %v, want 3s", d)
		}
		for _, s := range results {
			if !strings.Contains(s, "qlaunch_scrape_status_errors_total{}") || strings.Contains(s, "qlaunch_rank_") {
				t.Errorf("scrape of a timed-out round:\n%s", s)
			}
		}
		if c := src.calls.Load(); c != 1 {
			t.Errorf("%d Status calls, want 1", c)
		}
	})
}

// TestHandlerBoundsScrapes: beyond MaxScrapesInFlight scrapes at once the
// handler answers 503; the scrapes in flight succeed.
func TestHandlerBoundsScrapes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := &fakeSource{release: make(chan struct{}), ranks: fakeRanks}
		reg := metrics.NewCollector(src, 0)
		h := metrics.Handler(reg, slog.New(slog.DiscardHandler))
		scrape := func() *httptest.ResponseRecorder {
			w := httptest.NewRecorder()
			h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/metrics", nil))
			return w
		}
		codes := make(chan int, metrics.MaxScrapesInFlight)
		for range metrics.MaxScrapesInFlight {
			go func() { codes <- scrape().Code }()
		}
		synctest.Wait() // every one in flight, waiting on the status round
		if w := scrape(); w.Code != http.StatusServiceUnavailable {
			t.Errorf("scrape %d: status %d, want 503", metrics.MaxScrapesInFlight+1, w.Code)
		}
		close(src.release)
		for i := range metrics.MaxScrapesInFlight {
			if c := <-codes; c != http.StatusOK {
				t.Errorf("scrape %d in flight: status %d, want 200", i, c)
			}
		}
		if w := scrape(); w.Code != http.StatusOK || !strings.Contains(w.Body.String(), "qlaunch_rank_busy_slots{host=\"h1\",rank=\"1\",role=\"worker\"} 3\n") {
			t.Errorf("scrape after: status %d\n%s", w.Code, w.Body)
		}
		if c := src.calls.Load(); c != 1 {
			t.Errorf("%d Status calls, want 1", c)
		}
	})
}

// TestWriteParses: a scrape, with label values that need escaping and the
// runtime's and process's figures, reads back through the Prometheus text
// parser with every value as written.
func TestWriteParses(t *testing.T) {
	host := "h\"1\\x\ny"
	src := &fakeSource{release: make(chan struct{}), ranks: []wire.RankStatus{
		{Rank: 1, Parent: 0, Depth: 1, Role: "worker", Host: host, Slots: 4, Busy: 3, Queued: 2, Done: 9, State: wire.RankJoined},
	}}
	close(src.release)
	var b strings.Builder
	if err := metrics.NewCollector(src, 0).Write(&b); err != nil {
		t.Fatal(err)
	}
	p := expfmt.NewTextParser(model.LegacyValidation)
	mfs, err := p.TextToMetricFamilies(strings.NewReader(b.String()))
	if err != nil {
		t.Fatalf("%v in\n%s", err, b.String())
	}
	busy := mfs["qlaunch_rank_busy_slots"]
	if busy == nil || len(busy.GetMetric()) != 1 || busy.GetMetric()[0].GetGauge().GetValue() != 3 || busy.GetType().String() != "GAUGE" {
		t.Fatalf("qlaunch_rank_busy_slots: %v", busy)
	}
	for _, l := range busy.GetMetric()[0].GetLabel() {
		if l.GetName() == "host" && l.GetValue() != host {
			t.Errorf("host label %q, want %q", l.GetValue(), host)
		}
	}
	if f := mfs["qlaunch_tasks_submitted_total"]; f.GetType().String() != "COUNTER" || f.GetMetric()[0].GetCounter().GetValue() != 7 {
		t.Errorf("qlaunch_tasks_submitted_total: %v", f)
	}
	value := func(name string) float64 {
		f := mfs[name]
		if f == nil || len(f.GetMetric()) != 1 {
			t.Errorf("no single %s sample in\n%s", name, b.String())
			return 0
		}
		m := f.GetMetric()[0]
		return m.GetGauge().GetValue() + m.GetCounter().GetValue()
	}
	for _, name := range []string{"go_goroutines", "go_memstats_alloc_bytes", "go_memstats_sys_bytes", "go_info"} {
		if v := value(name); v <= 0 {
			t.Errorf("%s = %v, want > 0", name, v)
		}
	}
	if runtime.GOOS != "linux" {
		return
	}
	for _, name := range []string{"go_threads", "process_open_fds", "process_max_fds", "process_resident_memory_bytes", "process_virtual_memory_bytes"} {
		if v := value(name); v <= 0 {
			t.Errorf("%s = %v, want > 0", name, v)
		}
	}
	if v := value("process_cpu_seconds_total"); v < 0 {
		t.Errorf("process_cpu_seconds_total = %v", v)
	}
	now := float64(time.Now().Unix())
	if v := value("process_start_time_seconds"); v > now+1 || v < now-24*3600 {
		t.Errorf("process_start_time_seconds = %v, now %v", v, now)
	}
}
