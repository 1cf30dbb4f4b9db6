package kernels_test

import (
	"context"
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
