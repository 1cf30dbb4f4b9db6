package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/qlaunch/qlaunch/kernels"
	"github.com/qlaunch/qlaunch/launcher/client"
)

// cmdSubmit runs one kernel on the runtime and prints its result.
func cmdSubmit(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet(e, "submit", "submit [--ip ADDR] [--input FILE|-] KERNEL [ARG…]\n\n"+
		"Runs one task of KERNEL with ARGs on the runtime and prints its result.\n"+
		"\"qlaunch kernels\" lists the kernels and their arguments.")
	var cf clientFlags
	cf.add(fs)
	input := fs.String("input", "", "read the task's payload from FILE (- for stdin); default: empty")
	if err := parseFlags(e, fs, args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return usagef("submit: no kernel given")
	}
	var payload []byte
	var err error
	switch *input {
	case "":
	case "-":
		payload, err = io.ReadAll(e.stdin)
	default:
		payload, err = os.ReadFile(*input)
	}
	if err != nil {
		return usagef("submit: %w", err)
	}
	c, err := cf.dial(ctx, e, newLogger(e, cf.verbose.level()))
	if err != nil {
		return err
	}
	defer c.Close()
	f, err := c.Submit(ctx, kernels.Task{Kernel: fs.Arg(0), Args: fs.Args()[1:], Payload: payload})
	if err != nil {
		return err
	}
	vals, err := c.Wait(ctx, f)
	if err != nil {
		if ctx.Err() != nil {
			_ = c.Cancel(f)
			return fmt.Errorf("submit: interrupted, task cancelled")
		}
		var te *client.TaskError
		if errors.As(err, &te) && !te.Cancelled && !te.Lost && te.Kernel != "" {
			switch {
			case kernels.IsUnknownKernelMessage(te.Message):
				return unknownKernel(e, te.Kernel)
			case kernels.IsUsageMessage(te.Kernel, te.Message):
				// The kernel's arguments did not fit: bad input.
				return inputf("%s", te.Message)
			}
			return fmt.Errorf("%s (rank %d, host %s)", te.Message, te.Rank, te.Host)
		}
		return err
	}
	out := vals[0]
	if _, err := e.stdout.Write(out); err != nil {
		return err
	}
	if len(out) > 0 && out[len(out)-1] != '\n' {
		_, err = io.WriteString(e.stdout, "\n")
	}
	return err
}
