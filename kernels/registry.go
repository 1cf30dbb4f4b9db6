package kernels

import (
	"fmt"
	"sort"
	"strings"
)

// Registry maps kernel names to kernels. It is a value given to the
// launcher, never a package-level table. A Registry is read-only once
// built and safe for concurrent use.
type Registry struct {
	byName map[string]Kernel
}

// NewRegistry returns a registry holding ks. Two kernels with one name, an
// empty name or a nil Func are errors.
func NewRegistry(ks ...Kernel) (*Registry, error) {
	r := &Registry{byName: make(map[string]Kernel, len(ks))}
	for _, k := range ks {
		if k.Name == "" || k.Func == nil {
			return nil, fmt.Errorf("kernels: kernel %q has no name or no function", k.Name)
		}
		if _, dup := r.byName[k.Name]; dup {
			return nil, fmt.Errorf("kernels: kernel %q registered twice", k.Name)
		}
		r.byName[k.Name] = k
	}
	return r, nil
}

// Lookup returns the kernel called name.
func (r *Registry) Lookup(name string) (Kernel, bool) {
	k, ok := r.byName[name]
	return k, ok
}

// Warm calls every kernel's Warm (Kernel.Warm) with slots, each in a
// goroutine of its own, and returns at once. A worker rank calls it when
// it starts.
func (r *Registry) Warm(slots int) {
	for _, k := range r.byName {
		if k.Warm != nil {
			go k.Warm(slots)
		}
	}
}

// Names returns the registered names in sorted order.
func (r *Registry) Names() []string {
	names := make([]string, 0, len(r.byName))
	for n := range r.byName {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Kernels returns the registered kernels sorted by name.
func (r *Registry) Kernels() []Kernel {
	ks := make([]Kernel, 0, len(r.byName))
	for _, n := range r.Names() {
		ks = append(ks, r.byName[n])
	}
	return ks
}

// Synopsis is a kernel's usage line: its name and Usage, as a task names
// it ("fanout N DEPTH").
func (k Kernel) Synopsis() string {
	if k.Usage == "" {
		return k.Name
	}
	return k.Name + " " + k.Usage
}

// IsUnknownKernelMessage reports whether msg, the error message of a
// failed task as a client receives it (the error's text only crosses the
// wire), says that the rank that took the task has no kernel of its name
// (ErrUnknownKernel).
func IsUnknownKernelMessage(msg string) bool {
	return strings.HasPrefix(msg, ErrUnknownKernel.Error())
}
