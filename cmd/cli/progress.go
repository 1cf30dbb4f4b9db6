package cli

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/term"
)

// progress shows a client command's wait on a terminal: a bar when the
// number of steps is known, else a spinner with the elapsed time. Add
// counts steps done; Done removes it before the command prints its result.
type progress interface {
	Add(n int)
	Done()
}

// newProgress returns a progress for total steps (0 or less: unknown)
// described by what, drawn on e.stderr when that is a terminal; otherwise
// one that draws nothing, so piped and captured output stays exactly the
// same.
func newProgress(e *env, total int, what string) progress {
	f, ok := e.stderr.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) || e.getenv("TERM") == "dumb" {
		return noProgress{}
	}
	return drawProgress(f, total, what)
}

// redrawEvery is how often a bar is redrawn: by its own goroutine (the
// elapsed time, the spinner) and at most this often by Add.
const redrawEvery = 100 * time.Millisecond

// drawProgress draws on w unconditionally: its state at once, then every
// redrawEvery until Done.
//
// The bar is drawn here rather than by a library: the one used before
// (and the colour library it brought) ran regexp compiles and map
// literals at package initialisation in every process of the binary —
// each start of a worker rank or client, which never draws a bar.
func drawProgress(w io.Writer, total int, what string) progress {
	b := &bar{w: w, what: what, total: total, start: time.Now(), stop: make(chan struct{}), ended: make(chan struct{})}
	b.mu.Lock()
	b.drawLocked(b.start)
	b.mu.Unlock()
	go b.tick()
	return b
}

// bar is a progress line on a terminal. Its goroutine (tick) and Add draw
// under mu; Done stops the goroutine and clears the line.
type bar struct {
	w     io.Writer
	what  string
	total int // 0 or less: unknown, a spinner
	start time.Time

	stop, ended chan struct{}

	mu    sync.Mutex
	done  int
	spin  int
	drawn time.Time
	line  strings.Builder
}

func (b *bar) tick() {
	defer close(b.ended)
	t := time.NewTicker(redrawEvery)
	defer t.Stop()
	for {
		select {
		case <-b.stop:
			return
		case now := <-t.C:
			b.mu.Lock()
			b.spin++
			b.drawLocked(now)
			b.mu.Unlock()
		}
	}
}

func (b *bar) Add(n int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.done += n
	if now := time.Now(); now.Sub(b.drawn) >= redrawEvery {
		b.drawLocked(now)
	}
}

// Done stops the redraws and clears the line.
func (b *bar) Done() {
	close(b.stop)
	<-b.ended
	b.mu.Lock()
	defer b.mu.Unlock()
	_, _ = io.WriteString(b.w, "\r\x1b[K")
}

// spinner is drawn, one character per redraw, while the total is unknown.
const spinner = `-\|/`

// barWidth is the width of the bar's filled and empty part.
const barWidth = 30

// drawLocked writes the line as of now: "WHAT  40% [======        ] (4/10) 3s, about 5s left",
// or "WHAT - 3s" with an unknown total. The line is rewritten in place
// (carriage return, erase to its end).
func (b *bar) drawLocked(now time.Time) {
	b.drawn = now
	elapsed := now.Sub(b.start)
	l := &b.line
	l.Reset()
	l.WriteString("\r")
	l.WriteString(b.what)
	if b.total <= 0 {
		fmt.Fprintf(l, " %c %s", spinner[b.spin%len(spinner)], roundDuration(elapsed))
	} else {
		done := min(b.done, b.total)
		filled := done * barWidth / b.total
		fmt.Fprintf(l, " %3d%% [%s%s] (%d/%d) %s", done*100/b.total,
			strings.Repeat("=", filled), strings.Repeat(" ", barWidth-filled), done, b.total, roundDuration(elapsed))
		if done > 0 && done < b.total {
			left := time.Duration(float64(elapsed) * float64(b.total-done) / float64(done))
			fmt.Fprintf(l, ", about %s left", roundDuration(left))
		}
	}
	l.WriteString("\x1b[K")
	_, _ = io.WriteString(b.w, l.String())
}

// roundDuration rounds d for a progress line: tenths of a second below a
// minute, whole seconds above.
func roundDuration(d time.Duration) time.Duration {
	if d < time.Minute {
		return d.Round(100 * time.Millisecond)
	}
	return d.Round(time.Second)
}

type noProgress struct{}

func (noProgress) Add(int) {}
func (noProgress) Done()   {}
