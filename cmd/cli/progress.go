package cli

import (
	"io"
	"os"
	"time"

	"github.com/schollz/progressbar/v3"
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

// drawProgress draws on w unconditionally.
func drawProgress(w io.Writer, total int, what string) progress {
	opts := []progressbar.Option{
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetDescription(what),
		progressbar.OptionSetElapsedTime(true),
		progressbar.OptionClearOnFinish(),
		progressbar.OptionSetRenderBlankState(true),
		progressbar.OptionThrottle(100 * time.Millisecond),
	}
	if total <= 0 {
		// Unknown length: the library redraws the spinner and the elapsed
		// time every 100 ms until Finish.
		opts = append(opts, progressbar.OptionSpinnerType(14), progressbar.OptionSetSpinnerChangeInterval(100*time.Millisecond))
		return &bar{progressbar.NewOptions(-1, opts...)}
	}
	opts = append(opts, progressbar.OptionShowCount(), progressbar.OptionSetPredictTime(true), progressbar.OptionSetWidth(30))
	return &bar{progressbar.NewOptions(total, opts...)}
}

type bar struct{ b *progressbar.ProgressBar }

func (p *bar) Add(n int) { _ = p.b.Add(n) }

func (p *bar) Done() {
	_ = p.b.Finish()
	_ = p.b.Clear()
	_ = p.b.Exit()
}

type noProgress struct{}

func (noProgress) Add(int) {}
func (noProgress) Done()   {}
