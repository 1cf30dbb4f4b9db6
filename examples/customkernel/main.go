// Command customkernel is qlaunch with a kernel of one's own, wordcount:
// every qlaunch command, the bootstrap under srun or mpirun and the batch
// scripts, with wordcount beside the stock kernels on every worker rank.
//
//	go build -o wc ./examples/customkernel
//	./wc kernels
//	./wc run configs/local.toml -- ./wc submit --input README.md wordcount
//	./wc script slurm configs/slurm-cpu.toml --qlaunch ./wc -- ./wc submit wordcount 3
package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strconv"

	"github.com/qlaunch/qlaunch/cmd/cli"
	"github.com/qlaunch/qlaunch/kernels"
)

// wordcount returns the number of words of its payload; with N, of the
// payload repeated N times, as N child tasks on the runtime.
func wordcount(ctx context.Context, rt kernels.Runtime, args []string, payload []byte) ([]byte, error) {
	if len(args) == 0 {
		return []byte(strconv.Itoa(len(bytes.Fields(payload)))), nil
	}
	n, err := strconv.Atoi(args[0])
	if len(args) > 1 || err != nil || n < 1 {
		// A *kernels.UsageError is bad input: submit exits 2 with the usage line.
		return nil, &kernels.UsageError{Kernel: "wordcount", Usage: "[N]", Msg: fmt.Sprintf("want one positive N, got %q", args)}
	}
	tasks := make([]kernels.Task, n)
	for i := range tasks {
		tasks[i] = kernels.Task{Kernel: "wordcount", Payload: payload}
	}
	f, err := rt.Map(ctx, tasks)
	if err != nil {
		return nil, err
	}
	counts, err := rt.Wait(ctx, f)
	if err != nil {
		return nil, err
	}
	total := 0
	for _, c := range counts {
		v, _ := strconv.Atoi(string(c))
		total += v
	}
	return []byte(strconv.Itoa(total)), nil
}

func main() {
	reg, err := cli.Registry(kernels.Kernel{
		Name: "wordcount", Func: wordcount, Retryable: true,
		Usage: "[N]", Doc: "count the words of the payload (N times, as N child tasks)",
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	os.Exit(cli.Main(reg))
}
