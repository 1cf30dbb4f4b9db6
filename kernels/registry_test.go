package kernels_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/qlaunch/qlaunch/kernels"
)

func nop(context.Context, kernels.Runtime, []string, []byte) ([]byte, error) { return nil, nil }

func TestNewRegistryErrors(t *testing.T) {
	for _, c := range []struct {
		name    string
		ks      []kernels.Kernel
		mention string // the kernel name the error must carry
	}{
		{"duplicate", []kernels.Kernel{{Name: "a", Func: nop}, {Name: "b", Func: nop}, {Name: "a", Func: nop}}, `"a"`},
		{"duplicate-builtin", append(kernels.Builtin(), kernels.Kernel{Name: "echo", Func: nop}), `"echo"`},
		{"no-name", []kernels.Kernel{{Func: nop}}, `""`},
		{"no-func", []kernels.Kernel{{Name: "z"}}, `"z"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			r, err := kernels.NewRegistry(c.ks...)
			if err == nil || r != nil {
				t.Fatalf("NewRegistry: %v, %v; want an error", r, err)
			}
			if !strings.Contains(err.Error(), c.mention) {
				t.Errorf("error %q does not name kernel %s", err, c.mention)
			}
		})
	}
}

func TestRegistryLookup(t *testing.T) {
	r, err := kernels.NewRegistry(append(kernels.Builtin(), kernels.Kernel{Name: "mine", Func: nop, Usage: "X"})...)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"echo", "exec", "fail", "fanout", "mine", "noop", "sleep"}
	if got := r.Names(); !slices.Equal(got, want) {
		t.Errorf("Names() = %q, want %q", got, want)
	}
	for _, c := range []struct {
		name  string
		ok    bool
		usage string
	}{
		{"mine", true, "X"},
		{"fanout", true, "N DEPTH"},
		{"Fanout", false, ""},
		{"", false, ""},
		{"missing", false, ""},
	} {
		k, ok := r.Lookup(c.name)
		if ok != c.ok || k.Usage != c.usage || (ok && (k.Name != c.name || k.Func == nil)) {
			t.Errorf("Lookup(%q) = {Name %q Usage %q}, %v; want usage %q, %v", c.name, k.Name, k.Usage, ok, c.usage, c.ok)
		}
	}
	empty, err := kernels.NewRegistry()
	if err != nil || len(empty.Names()) != 0 {
		t.Errorf("empty registry: %v, %v", empty.Names(), err)
	}
}

func TestRegistryKernelsAndSynopsis(t *testing.T) {
	r, err := kernels.NewRegistry(append(kernels.Builtin(), kernels.Kernel{Name: "mine", Func: nop, Usage: "X [Y]"})...)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, k := range r.Kernels() {
		got = append(got, k.Synopsis())
	}
	want := []string{"echo [TEXT…]", "exec [--] CMD [ARG…]", "fail MESSAGE…", "fanout N DEPTH", "mine X [Y]", "noop", "sleep MS"}
	if !slices.Equal(got, want) {
		t.Errorf("synopses %q, want %q", got, want)
	}
}

// TestErrorMessagesAcrossTheWire checks the recognisers of error texts
// (only the text of a task's error reaches the client): every usage error
// of a built-in kernel is recognised as one, of that kernel only, and the
// unknown-kernel error as that; other failures are neither.
func TestErrorMessagesAcrossTheWire(t *testing.T) {
	reg, err := kernels.NewRegistry(kernels.Builtin()...)
	if err != nil {
		t.Fatal(err)
	}
	bad := map[string][]string{"sleep": {"x"}, "fanout": {"1"}, "fail": nil, "exec": nil, "noop": {"a"}}
	for name, args := range bad {
		k, _ := reg.Lookup(name)
		_, err := k.Func(t.Context(), nil, args, nil)
		var ue *kernels.UsageError
		if !errors.As(err, &ue) {
			t.Fatalf("%s %q: %v, want a *UsageError", name, args, err)
		}
		if !kernels.IsUsageMessage(name, err.Error()) {
			t.Errorf("IsUsageMessage(%q, %q) = false", name, err.Error())
		}
		if kernels.IsUsageMessage("other", err.Error()) || kernels.IsUnknownKernelMessage(err.Error()) {
			t.Errorf("%q recognised as another kernel's usage error or as an unknown kernel", err.Error())
		}
	}
	unknown := fmt.Errorf("%w %q", kernels.ErrUnknownKernel, "nosuch").Error()
	if !kernels.IsUnknownKernelMessage(unknown) || kernels.IsUsageMessage("nosuch", unknown) {
		t.Errorf("%q: unknown kernel not recognised, or taken for a usage error", unknown)
	}
	for _, msg := range []string{"boom", "fanout: boom", "fail: x (usage: other)", ""} {
		if kernels.IsUsageMessage("fanout", msg) || kernels.IsUnknownKernelMessage(msg) {
			t.Errorf("%q recognised as a usage error or an unknown kernel", msg)
		}
	}
}
