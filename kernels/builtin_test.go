package kernels_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/qlaunch/qlaunch/kernels"
	"github.com/qlaunch/qlaunch/kernels/kerneltest"
)

func newRuntime(t testing.TB, slots int) *kerneltest.Runtime {
	t.Helper()
	reg, err := kernels.NewRegistry(kernels.Builtin()...)
	if err != nil {
		t.Fatal(err)
	}
	return kerneltest.New(reg, slots)
}

func TestBuiltinResults(t *testing.T) {
	for _, c := range []struct {
		kernel  string
		args    []string
		payload string
		want    string
		tasks   int64 // kernels run, the root included
	}{
		{"noop", nil, "", "", 1},
		{"sleep", []string{"0"}, "", "", 1},
		{"sleep", []string{"5"}, "", "", 1},
		{"echo", []string{"hello"}, "ignored", "hello", 1},
		{"echo", []string{"a", "b", " c"}, "", "a b  c", 1},
		{"echo", nil, "the payload", "the payload", 1},
		{"echo", nil, "", "", 1},
		{"fanout", []string{"10", "2"}, "", "100", 111},
		{"fanout", []string{"3", "3"}, "", "27", 40},
		{"fanout", []string{"7", "0"}, "", "1", 1},
		{"fanout", []string{"0", "0"}, "", "1", 1},
		{"fanout", []string{"0", "3"}, "", "0", 1},
		{"fanout", []string{"1", "20"}, "", "1", 21},
		{"fanout", []string{"5", "1"}, "", "5", 6},
		{"fanout", []string{"100", "2"}, "", "10000", 10101},
	} {
		for _, slots := range []int{1, 2} {
			t.Run(fmt.Sprintf("%s%q/slots=%d", c.kernel, c.args, slots), func(t *testing.T) {
				rt := newRuntime(t, slots)
				out, err := rt.Run(t.Context(), kernels.Task{Kernel: c.kernel, Args: c.args, Payload: []byte(c.payload)})
				if err != nil || string(out) != c.want {
					t.Errorf("got %q, %v; want %q", out, err, c.want)
				}
				st := rt.Stats()
				if st.Tasks != c.tasks {
					t.Errorf("%d kernels ran, want %d", st.Tasks, c.tasks)
				}
				if st.MaxRunning > slots {
					t.Errorf("%d kernels ran at once on %d slots", st.MaxRunning, slots)
				}
			})
		}
	}
}

func TestFail(t *testing.T) {
	rt := newRuntime(t, 1)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"Boo!"}, "Boo!"},
		{[]string{"two", "words"}, "two words"},
	} {
		_, err := rt.Run(t.Context(), kernels.Task{Kernel: "fail", Args: c.args})
		if err == nil || err.Error() != c.want {
			t.Errorf("fail %q: %v, want an error %q", c.args, err, c.want)
		}
		var ue *kernels.UsageError
		if errors.As(err, &ue) {
			t.Errorf("fail %q: a usage error", c.args)
		}
	}
}

func TestUsageErrors(t *testing.T) {
	rt := newRuntime(t, 1)
	for _, c := range []struct {
		kernel string
		args   []string
		want   string
	}{
		{"noop", []string{"x"}, "noop: takes no arguments, got 1 (usage: noop)"},
		{"sleep", nil, "sleep: takes 1 argument, got 0 (usage: sleep MS)"},
		{"sleep", []string{"1", "2"}, "sleep: takes 1 argument, got 2 (usage: sleep MS)"},
		{"sleep", []string{"soon"}, `sleep: MS must be a non-negative integer, not "soon" (usage: sleep MS)`},
		{"sleep", []string{"-5"}, `sleep: MS must be a non-negative integer, not "-5" (usage: sleep MS)`},
		{"sleep", []string{"9223372036855"}, "sleep: MS 9223372036855 is over the limit of 9223372036854 (usage: sleep MS)"},
		{"fail", nil, "fail: needs a message (usage: fail MESSAGE…)"},
		{"fanout", []string{"10"}, "fanout: takes 2 arguments, got 1 (usage: fanout N DEPTH)"},
		{"fanout", []string{"ten", "2"}, `fanout: N must be a non-negative integer, not "ten" (usage: fanout N DEPTH)`},
		{"fanout", []string{"10", "2.5"}, `fanout: DEPTH must be a non-negative integer, not "2.5" (usage: fanout N DEPTH)`},
		{"fanout", []string{"1048577", "1"}, "fanout: N 1048577 is over the limit of 1048576 (usage: fanout N DEPTH)"},
		{"fanout", []string{"2", "65"}, "fanout: DEPTH 65 is over the limit of 64 (usage: fanout N DEPTH)"},
		{"fanout", []string{"2", "63"}, "fanout: 2^63 leaves overflow an int (usage: fanout N DEPTH)"},
		{"exec", nil, "exec: needs a command (usage: exec [--] CMD [ARG…])"},
		{"exec", []string{"--"}, "exec: needs a command (usage: exec [--] CMD [ARG…])"},
		{"exec", []string{"--", ""}, "exec: needs a command (usage: exec [--] CMD [ARG…])"},
	} {
		t.Run(fmt.Sprintf("%s%q", c.kernel, c.args), func(t *testing.T) {
			_, err := rt.Run(t.Context(), kernels.Task{Kernel: c.kernel, Args: c.args})
			var ue *kernels.UsageError
			if !errors.As(err, &ue) {
				t.Fatalf("got %v, want a *UsageError", err)
			}
			if ue.Kernel != c.kernel || !ue.BadInput() {
				t.Errorf("UsageError{Kernel: %q}, BadInput %v", ue.Kernel, ue.BadInput())
			}
			if err.Error() != c.want {
				t.Errorf("message\n got %q\nwant %q", err, c.want)
			}
		})
	}
	if n := rt.Stats().Tasks; n != 16 {
		t.Errorf("%d kernels ran, want 16: a usage error starts no child", n)
	}
}

func TestSleep(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rt := newRuntime(t, 1)
		start := time.Now()
		if _, err := rt.Run(t.Context(), kernels.Task{Kernel: "sleep", Args: []string{"1500"}}); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d != 1500*time.Millisecond {
			t.Errorf("sleep 1500 took %v", d)
		}
		ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
		defer cancel()
		start = time.Now()
		_, err := rt.Run(ctx, kernels.Task{Kernel: "sleep", Args: []string{"3600000"}})
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("cancelled sleep: %v, want DeadlineExceeded", err)
		}
		if d := time.Since(start); d != 300*time.Millisecond {
			t.Errorf("cancelled sleep returned after %v, want 300ms", d)
		}
	})
}

func TestBuiltinTable(t *testing.T) {
	type row struct {
		name      string
		retryable bool
		usage     string
	}
	var got []row
	for _, k := range kernels.Builtin() {
		got = append(got, row{k.Name, k.Retryable, k.Usage})
		if k.Func == nil || k.Doc == "" {
			t.Errorf("%s has no Func or no Doc", k.Name)
		}
	}
	want := []row{
		{"noop", true, ""},
		{"sleep", true, "MS"},
		{"echo", true, "[TEXT…]"},
		{"fail", false, "MESSAGE…"},
		{"fanout", true, "N DEPTH"},
		{"exec", false, "[--] CMD [ARG…]"},
	}
	if !slices.Equal(got, want) {
		t.Errorf("Builtin():\n got %v\nwant %v", got, want)
	}
	a := kernels.Builtin()
	a[0].Name = "changed"
	if b := kernels.Builtin(); b[0].Name != "noop" {
		t.Error("Builtin returns shared state")
	}
}
