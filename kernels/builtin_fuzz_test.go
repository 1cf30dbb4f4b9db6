package kernels_test

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"testing"

	"github.com/qlaunch/qlaunch/kernels"
)

var errRefused = errors.New("refused")

// refusing is a Runtime that starts nothing, so that a fuzzed fanout
// checks its arguments and stops at its first Map.
type refusing struct{}

func (refusing) Submit(context.Context, kernels.Task) (kernels.Future, error) {
	return kernels.Future{}, errRefused
}
func (refusing) Map(context.Context, []kernels.Task) (kernels.Future, error) {
	return kernels.Future{}, errRefused
}
func (refusing) Wait(context.Context, kernels.Future) ([][]byte, error) { return nil, errRefused }
func (refusing) Next(context.Context, kernels.Future) ([]kernels.Result, error) {
	return nil, errRefused
}
func (refusing) Cancel(kernels.Future) error { return errRefused }
func (refusing) Cache() *kernels.Cache       { return nil }
func (refusing) Logger() *slog.Logger        { return slog.New(slog.DiscardHandler) }
func (refusing) Rank() int                   { return 0 }
func (refusing) Host() string                { return "fuzz" }

// FuzzBuiltinArgs feeds the argument parsing of every built-in kernel but
// exec (which would run the fuzzer's commands) with arbitrary arguments,
// separated by NUL bytes. A kernel either succeeds, fails with a
// *UsageError, or (fanout) gets as far as starting its children; sleep
// runs with a cancelled context.
func FuzzBuiltinArgs(f *testing.F) {
	for _, s := range []string{
		"noop", "noop\x00x", "sleep\x0010", "sleep\x00-1", "sleep\x00ten", "sleep",
		"echo\x00a\x00b", "echo", "fail\x00Boo!", "fail",
		"fanout\x0010\x002", "fanout\x000\x000", "fanout\x002\x0063", "fanout\x002\x0065",
		"fanout\x00+3\x001", "fanout\x009223372036854775807\x001", "fanout\x00-0\x001",
	} {
		f.Add(s, []byte("payload"))
	}
	ks := map[string]kernels.Kernel{}
	for _, k := range kernels.Builtin() {
		ks[k.Name] = k
	}
	f.Fuzz(func(t *testing.T, line string, payload []byte) {
		fields := strings.Split(line, "\x00")
		k, ok := ks[fields[0]]
		if !ok || k.Name == "exec" {
			return
		}
		args := fields[1:]
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		out, err := k.Func(ctx, refusing{}, args, payload)
		var ue *kernels.UsageError
		switch {
		case err == nil:
			switch k.Name {
			case "noop", "sleep":
				if len(out) != 0 {
					t.Errorf("%s %q returned %q", k.Name, args, out)
				}
			case "echo":
				want := strings.Join(args, " ")
				if len(args) == 0 {
					want = string(payload)
				}
				if string(out) != want {
					t.Errorf("echo %q returned %q, want %q", args, out, want)
				}
			case "fanout":
				// Only DEPTH 0 succeeds without starting children.
				if depth, _ := strconv.Atoi(args[1]); string(out) != "1" || depth != 0 {
					t.Errorf("fanout %q returned %q without children", args, out)
				}
			default:
				t.Errorf("%s %q succeeded", k.Name, args)
			}
		case errors.As(err, &ue):
			if ue.Kernel != k.Name || ue.Usage != k.Usage {
				t.Errorf("%s %q: UsageError %+v", k.Name, args, ue)
			}
		case k.Name == "fail":
			if err.Error() != strings.Join(args, " ") {
				t.Errorf("fail %q: %q", args, err)
			}
		case k.Name == "fanout" && errors.Is(err, errRefused):
		case k.Name == "sleep" && errors.Is(err, context.Canceled):
		default:
			t.Errorf("%s %q: unexpected error %v", k.Name, args, err)
		}
	})
}
