package cli

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/qlaunch/qlaunch/kernels/circuitgen"
)

// countProgress counts the steps added to a progress and passes them on.
type countProgress struct {
	progress
	total, done int
}

func (p *countProgress) Add(n int) { p.done += n; p.progress.Add(n) }

// TestCompileProgressWide compiles a circuit too wide to simulate (30
// qubits) at level 1 with the progress drawn: each pass counts every one
// of its block tasks, and the bar shows blocks done of their total (its
// last state, throttled, may not be drawn). The check
// says that it did not simulate.
func TestCompileProgressWide(t *testing.T) {
	in := circuitgen.Heisenberg(30, 1)
	var bars []*countProgress
	var drawn bytes.Buffer
	job := compileJob{in: in, seed: 1, level: 1, gates: "cx,u3", progress: func(what string, total int) progress {
		p := &countProgress{progress: drawProgress(&drawn, total, what), total: total}
		bars = append(bars, p)
		return p
	}}
	c, err := compileLocal(context.Background(), 2, job)
	if err != nil {
		t.Fatal(err)
	}
	if len(bars) != 1 || bars[0].total == 0 || bars[0].done != bars[0].total {
		t.Fatalf("progress: %+v, want one pass with every block counted", bars)
	}
	if want := fmt.Sprintf("/%d)", bars[0].total); !strings.Contains(drawn.String(), want) || !strings.Contains(drawn.String(), "pass 1 of 1, 2-qubit blocks") {
		t.Errorf("the bar never showed blocks done of %d of pass 1 of 1: %q", bars[0].total, drawn.String())
	}
	if c.res.CNOTsAfter >= c.res.CNOTsBefore || !strings.HasPrefix(c.check, "not simulated (30 qubits") {
		t.Errorf("CNOTs %d → %d, check %q", c.res.CNOTsBefore, c.res.CNOTsAfter, c.check)
	}
}
