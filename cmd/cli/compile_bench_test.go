package cli

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"strings"
	"testing"

	"github.com/qlaunch/qlaunch/kernels/circuitgen"
	"github.com/qlaunch/qlaunch/kernels/mapping"
	"github.com/qlaunch/qlaunch/kernels/resynth"
	"github.com/qlaunch/qlaunch/launcher/wire"
)

// compileBenchCircuits are the circuits of BenchmarkCompileSet.
var compileBenchCircuits = []string{
	"heisenberg:6:2", "tfim:6:3", "hubbard:3:2", "qaoa:6:2", "qft:5", "adder:2", "grover:3:1", "random:5:60:1",
}

// BenchmarkCompileSet compiles the benchmark circuits for every preset
// gate set, all-to-all and on a line, at the level and block width of
// $COMPILE_LEVEL (default 3) and $COMPILE_BLOCKS, twice: on one slot in
// this process, then on the whole runtime ($QLAUNCH_ADDR's or the address
// file's, as qlaunch run gives its command; NumCPU slots in this process
// when $QLAUNCH_ADDR is unset). It prints one row per compile: two-qubit
// gates before and after, the error bound, the seconds on the whole
// runtime and the speed-up from one slot. Every compile is checked as the
// command checks it, and the two outputs must be the same.
// $COMPILE_CIRCUITS and $COMPILE_GATES (comma or space separated) narrow
// the set.
func BenchmarkCompileSet(b *testing.B) {
	whole, where := func(ctx context.Context, job compileJob) (*compiled, error) {
		return compileLocal(ctx, runtime.NumCPU(), job)
	}, fmt.Sprintf("%d slots in this process", runtime.NumCPU())
	if os.Getenv("QLAUNCH_ADDR") != "" {
		e := &env{stdin: strings.NewReader(""), stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv}
		var cf clientFlags
		cl, err := cf.dial(context.Background(), e, newLogger(e, slog.LevelWarn))
		if err != nil {
			b.Fatal(err)
		}
		defer cl.Close()
		slots := 0
		if rows, err := cl.Status(context.Background()); err == nil {
			for _, r := range rows {
				if r.State == wire.RankJoined {
					slots += r.Slots
				}
			}
		}
		whole, where = func(ctx context.Context, job compileJob) (*compiled, error) {
			return compileCircuit(ctx, cl, job)
		}, fmt.Sprintf("the runtime at %s, %d slots", os.Getenv("QLAUNCH_ADDR"), slots)
	}
	level := 3
	if v := os.Getenv("COMPILE_LEVEL"); v != "" {
		fmt.Sscan(v, &level)
	}
	blocks := 0
	if v := os.Getenv("COMPILE_BLOCKS"); v != "" {
		fmt.Sscan(v, &blocks)
	}
	list := func(env string, def []string) []string {
		if v := os.Getenv(env); v != "" {
			return strings.Fields(strings.ReplaceAll(v, ";", " "))
		}
		return def
	}
	circuits := list("COMPILE_CIRCUITS", compileBenchCircuits)
	gateSets := list("COMPILE_GATES", resynth.GatePresets())
	for range b.N {
		fmt.Printf("whole runtime: %s\n", where)
		fmt.Printf("%-16s %-16s %-10s %7s %7s %6s %10s %8s %8s\n", "circuit", "gates", "coupling", "before", "after", "ratio", "bound", "seconds", "speed-up")
		for _, name := range circuits {
			in, err := circuitgen.Named(name)
			if err != nil {
				b.Fatal(err)
			}
			allToAll := map[string]int{}
			for _, gates := range gateSets {
				for _, coupling := range []string{"", fmt.Sprintf("linear:%d", in.Qubits)} {
					job := compileJob{in: in, seed: 1, level: level, blockQubits: blocks, gates: gates}
					if coupling != "" {
						if job.graph, err = mapping.ParseCoupling(coupling); err != nil {
							b.Fatal(err)
						}
					}
					one, err := compileLocal(context.Background(), 1, job)
					if err != nil {
						b.Fatalf("%s, %s, %s on one slot: %v", name, gates, coupling, err)
					}
					c, err := whole(context.Background(), job)
					if err != nil {
						b.Fatalf("%s, %s, %s: %v", name, gates, coupling, err)
					}
					if one.res.QASM != c.res.QASM {
						b.Fatalf("%s, %s, %s: the output on one slot differs from the whole runtime's", name, gates, coupling)
					}
					label, vs := "all", ""
					if coupling == "" {
						allToAll[gates] = c.res.TwoQubitGatesAfter
					} else {
						label = "linear"
						vs = fmt.Sprintf("  %.2f× all-to-all", float64(c.res.TwoQubitGatesAfter)/float64(max(1, allToAll[gates])))
					}
					fmt.Printf("%-16s %-16s %-10s %7d %7d %6.2f %10.2g %8.2f %7.2f×%s\n", name, gates, label,
						c.res.TwoQubitGatesBefore, c.res.TwoQubitGatesAfter,
						float64(c.res.TwoQubitGatesAfter)/float64(max(1, c.res.TwoQubitGatesBefore)), c.res.ErrorBound, c.seconds,
						one.seconds/c.seconds, vs)
				}
			}
		}
	}
}

// TestCompileLevels compiles a Trotterised Heisenberg chain at levels 1-3:
// each is checked (compileCircuit checks its result), level 3 reaches the
// optimal three CNOTs per bond and step, and no level does worse than the
// one below it.
func TestCompileLevels(t *testing.T) {
	numericOnlyInOneLane(t)
	in := circuitgen.Heisenberg(3, 1) // 2 bonds of 6 CNOTs
	levels := []int{1, 2, 3}          // 4 adds 4-qubit passes, degenerate on 3 qubits
	prev := in.CNOTs()
	for _, level := range levels {
		c, err := compileLocal(context.Background(), 2, compileJob{in: in, seed: 1, level: level, gates: resynth.DefaultGates})
		if err != nil {
			t.Fatalf("level %d: %v", level, err)
		}
		t.Logf("level %d: CNOTs %d → %d in %d passes, %s", level, c.res.CNOTsBefore, c.res.CNOTsAfter, c.passes, c.check)
		if level != 2 && c.res.CNOTsAfter > prev {
			t.Errorf("level %d: %d CNOTs, the level below %d", level, c.res.CNOTsAfter, prev)
		}
		if level == 3 && c.res.CNOTsAfter > 6 {
			t.Errorf("level %d: %d CNOTs, want at most 6", level, c.res.CNOTsAfter)
		}
		prev = c.res.CNOTsAfter
	}
}

// TestCompileReordersCommutingTerms: at level 3 the transverse-field
// Ising chain, whose ZZ terms the partition takes in circuit order only,
// falls to at most 0.7 of its CNOTs once its commuting terms are
// reordered (see mapping.DiagonalOrder), checked as every compile is, and
// the output is the same on one slot and on two.
func TestCompileReordersCommutingTerms(t *testing.T) {
	numericOnlyInOneLane(t)
	in := circuitgen.TFIM(6, 3) // 15 ZZ rotations, 30 CNOTs
	var outputs []string
	for _, slots := range []int{1, 2} {
		c, err := compileLocal(context.Background(), slots, compileJob{in: in, seed: 1, level: 3, gates: resynth.DefaultGates})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%d slots: CNOTs %d → %d, %s", slots, c.res.CNOTsBefore, c.res.CNOTsAfter, c.check)
		if 10*c.res.CNOTsAfter > 7*c.res.CNOTsBefore {
			t.Errorf("%d CNOTs after, more than 0.7 of %d", c.res.CNOTsAfter, c.res.CNOTsBefore)
		}
		outputs = append(outputs, c.res.QASM)
	}
	if outputs[0] != outputs[1] {
		t.Error("the outputs on one slot and on two differ")
	}
}

// compileLocal compiles job on an in-process runtime of slots slots.
func compileLocal(ctx context.Context, slots int, job compileJob) (*compiled, error) {
	var c *compiled
	err := runLocal(ctx, slots, func(ctx context.Context, r taskRunner) error {
		var err error
		c, err = compileCircuit(ctx, r, job)
		return err
	})
	return c, err
}
