package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/qlaunch/qlaunch/kernels"
	"github.com/qlaunch/qlaunch/launcher/client"
	"github.com/qlaunch/qlaunch/launcher/starttrace"
	"github.com/qlaunch/qlaunch/launcher/wire"
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
		payload, err = readInput(e.stdin, "standard input", maxInput)
	default:
		var f *os.File
		if f, err = os.Open(*input); err == nil {
			payload, err = readInput(f, *input, maxInput)
			f.Close()
		}
	}
	if err != nil {
		return usagef("submit: %w", err)
	}
	starttrace.Mark("submit", "dial")
	c, err := cf.dial(ctx, e, newLogger(e, cf.verbose.level()))
	if err != nil {
		return err
	}
	defer c.Close()
	starttrace.Mark("submit", "connected")
	f, err := c.Submit(ctx, kernels.Task{Kernel: fs.Arg(0), Args: fs.Args()[1:], Payload: payload})
	if err != nil {
		return err
	}
	vals, err := c.Wait(ctx, f)
	starttrace.Mark("submit", "result")
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

// maxInput is the most submit reads as a task's payload: a task must fit
// in one frame of the wire (wire.DefaultMaxFrame), so more could not be
// sent anyway.
const maxInput = wire.DefaultMaxFrame

// readInput reads all of r, named name in errors, refusing once it passed
// limit bytes: the memory it takes is bounded whatever r holds.
func readInput(r io.Reader, name string, limit int) ([]byte, error) {
	if f, ok := r.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode().IsRegular() && st.Size() > int64(limit) {
			return nil, inputTooLarge(name, st.Size(), limit)
		}
	}
	// As io.ReadAll, but the buffer never grows past limit+1 bytes, so
	// all the buffers together take at most about twice that.
	b := make([]byte, 0, min(512, limit+1))
	for {
		if len(b) == cap(b) {
			if len(b) > limit {
				return nil, inputTooLarge(name, -1, limit)
			}
			grown := make([]byte, len(b), min(2*cap(b), limit+1))
			copy(grown, b)
			b = grown
		}
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

func inputTooLarge(name string, size int64, limit int) error {
	what := "more than " + byteSize(int64(limit))
	if size >= 0 {
		what = byteSize(size)
	}
	return fmt.Errorf("%s holds %s; a task's payload is limited to %s (the wire's frame limit): pass large data by a file path the task reads instead", name, what, byteSize(int64(limit)))
}

// byteSize writes n in the largest binary unit that divides it, or in bytes.
func byteSize(n int64) string {
	for _, u := range []struct {
		shift int
		name  string
	}{{30, "GiB"}, {20, "MiB"}, {10, "KiB"}} {
		if n >= 1<<u.shift && n%(1<<u.shift) == 0 {
			return fmt.Sprintf("%d %s", n>>u.shift, u.name)
		}
	}
	return fmt.Sprintf("%d bytes", n)
}
