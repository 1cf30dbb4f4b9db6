// Package cli is the qlaunch command as a library: every subcommand, the
// bootstrap (qlaunch TOPOLOGY.toml under srun, mpirun, mpiexec or PBS) and
// the hidden helpers a worker rank starts, behind one function, Main.
//
// The stock qlaunch binary (cmd/qlaunch) is Main with the stock kernels. A
// binary of one's own adds kernels to them and gets every command with
// them; its worker ranks are processes of that same binary, so its kernels
// run wherever the runtime places a task:
//
//	func main() {
//		reg, err := cli.Registry(kernels.Kernel{
//			Name: "wordcount", Func: wordcount, Retryable: true,
//			Usage: "", Doc: "count the words of the payload",
//		})
//		if err != nil {
//			fmt.Fprintln(os.Stderr, err)
//			os.Exit(2)
//		}
//		os.Exit(cli.Main(reg))
//	}
//
// Then "./mybinary run configs/local.toml -- ./mybinary submit wordcount
// --input FILE" runs it on this machine, "srun ./mybinary TOPOLOGY.toml"
// under SLURM, and "./mybinary script slurm TOPOLOGY.toml --qlaunch
// ./mybinary -- CMD" writes a batch script that starts it. See
// examples/customkernel for a whole program.
package cli

import (
	"context"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/qlaunch/qlaunch/kernels"
	"github.com/qlaunch/qlaunch/kernels/python"
	"github.com/qlaunch/qlaunch/kernels/resynth"
	"github.com/qlaunch/qlaunch/launcher/bench"
	"github.com/qlaunch/qlaunch/launcher/starttrace"
)

// Kernels returns the stock kernels of qlaunch, a new slice at each call:
// the built-in kernels (kernels.Builtin: noop, sleep, echo, fail, fanout,
// exec), the circuit-synthesis kernels (resynth, synth, instantiate),
// the benchmark kernels (len) and the Python kernels (python: functions
// sent by Python clients, run in warm interpreters; python-retry: the same,
// retryable, for functions marked qlaunch.retryable). Their exec commands run under the exec
// guard of the binary that calls Main (its hidden subcommand
// kernels.ExecGuardArg), so that a rank killed -9 leaves none of their
// processes behind.
func Kernels() []kernels.Kernel {
	guard := []string{"/proc/self/exe", kernels.ExecGuardArg}
	ks := append(kernels.BuiltinWith(kernels.BuiltinOptions{ExecGuard: guard}), resynth.Kernels()...)
	ks = append(ks, bench.Kernels()...)
	return append(ks, python.Kernels(python.Options{Getenv: os.Getenv, Environ: os.Environ})...)
}

// Registry returns a registry of the stock kernels (Kernels) and extra. A
// kernel of extra named like a stock kernel, or like another of extra, is
// an error.
func Registry(extra ...kernels.Kernel) (*kernels.Registry, error) {
	return kernels.NewRegistry(append(Kernels(), extra...)...)
}

// Main runs the qlaunch command line (os.Args) with reg as the kernels of
// every rank it starts or becomes, and returns the exit status: 0 success,
// 1 the work failed, 2 bad usage or bad input. A nil reg is the stock
// kernels (Registry()). SIGINT and SIGTERM stop the command cleanly.
func Main(reg *kernels.Registry) int {
	role := "qlaunch"
	if len(os.Args) > 1 {
		role = os.Args[1]
	}
	starttrace.Mark(role, "main")
	ctx, interrupted := context.WithCancel(context.Background())
	caught := make(chan struct{})
	go catchInterrupts(interrupted, caught)
	code := run(ctx, os.Args[1:], &env{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr,
		getenv: os.Getenv, setGCPercent: debug.SetGCPercent, reg: reg,
		signalsCaught: func() { <-caught }})
	starttrace.Mark(role, "exit")
	return code
}

// catchInterrupts catches SIGINT and SIGTERM, closes caught once they are,
// and calls interrupted at the first one.
//
// Interrupts stay caught until the process exits: a rank that stopped
// because its tree shut down can still get the scheduler's own SIGINT on
// its way out (scancel -s INT reaches the nodes one after another), and
// must exit with its status rather than die of the signal, which srun
// reports as a failed task.
//
// It runs beside the command rather than before it: catching the first
// signal waits for the Go runtime's signal thread to be created and to
// answer, once per signal, which took 1.5 ms at the median of a process
// start on the developers' 2-CPU guest and up to 17 ms under load
// (qlaunch bench --trace-startup: "main" to the next moment), on the path
// of every process of a start-up, the worker ranks' and the client's too.
// A command that starts processes waits for it first (env.awaitSignals),
// so that an interrupt never kills a qlaunch, by the signal's default
// action, that leaves a child behind.
func catchInterrupts(interrupted context.CancelFunc, caught chan<- struct{}) {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	close(caught)
	<-ch
	interrupted()
}
