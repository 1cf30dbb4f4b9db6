package topology

import (
	"errors"
	"fmt"
	"math"
	"os"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// Load reads and parses the topology file at path; see Parse. Reading the
// file is the only I/O of the package.
func Load(path string) (*Topology, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, &ConfigError{File: path, Msg: err.Error()}
	}
	return Parse(path, data)
}

// Parse decodes a topology file named name (used in errors only), fills in
// the defaults of the keys it leaves out and validates the result. It
// reports every problem at once: unknown keys, wrong types, bad values and
// impossible shapes, each a *ConfigError with the key's line and column,
// joined with errors.Join. On error the returned topology is nil.
func Parse(name string, data []byte) (*Topology, error) {
	var raw map[string]any
	if _, err := toml.Decode(string(data), &raw); err != nil {
		return nil, syntaxError(name, err)
	}
	t, errs := decode(name, string(data), raw)
	if len(errs) == 0 {
		if err := t.Validate(); err != nil {
			return nil, err
		}
		return t, nil
	}
	// Report the decoding problems and what validation finds besides.
	if err := t.Validate(); err != nil {
		errs = append(errs, unjoin(err)...)
	}
	return nil, joinSorted(errs)
}

func syntaxError(name string, err error) error {
	var pe toml.ParseError
	if errors.As(err, &pe) {
		return &ConfigError{File: name, Line: pe.Position.Line, Col: pe.Position.Col, Key: pe.LastKey, Msg: pe.Message}
	}
	return &ConfigError{File: name, Msg: err.Error()}
}

func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

// joinSorted orders the errors by position (then key and message, and
// drops exact duplicates) so the report reads top to bottom.
func joinSorted(errs []error) error {
	sort.SliceStable(errs, func(i, j int) bool {
		a, aok := errs[i].(*ConfigError)
		b, bok := errs[j].(*ConfigError)
		if !aok || !bok {
			return aok && !bok
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		if a.Col != b.Col {
			return a.Col < b.Col
		}
		return a.Key < b.Key
	})
	errs = slices.CompactFunc(errs, func(a, b error) bool { return a.Error() == b.Error() })
	return errors.Join(errs...)
}

// decoder turns the generic TOML tree into a Topology, collecting errors.
type decoder struct {
	src  source
	errs []error
}

func (d *decoder) errorf(key, format string, a ...any) {
	d.errs = append(d.errs, d.src.errAt(key, fmt.Sprintf(format, a...)))
}

func decode(name, text string, raw map[string]any) (*Topology, []error) {
	t := Default()
	t.src = source{file: name, keys: indexKeys(text)}
	d := &decoder{src: t.src}
	d.table("", raw, map[string]func(string, any){
		"runtime": func(k string, v any) {
			d.table(k, v, map[string]func(string, any){
				"port":               func(k string, v any) { d.int(k, v, &t.Runtime.Port) },
				"compression":        func(k string, v any) { d.enum(k, v, &t.Runtime.Compression) },
				"compress_threshold": func(k string, v any) { d.int(k, v, &t.Runtime.CompressThreshold) },
				"log_level":          func(k string, v any) { d.enum(k, v, &t.Runtime.LogLevel) },
				"address_file":       func(k string, v any) { d.str(k, v, &t.Runtime.AddressFile) },
				"secret_file":        func(k string, v any) { d.str(k, v, &t.Runtime.SecretFile) },
				"network":            func(k string, v any) { d.enum(k, v, &t.Runtime.Network) },
				"heartbeat":          func(k string, v any) { d.duration(k, v, &t.Runtime.Heartbeat) },
				"heartbeat_timeout":  func(k string, v any) { d.duration(k, v, &t.Runtime.HeartbeatTimeout) },
				"handshake_timeout":  func(k string, v any) { d.duration(k, v, &t.Runtime.HandshakeTimeout) },
				"max_pending_handshakes": func(k string, v any) {
					d.int(k, v, &t.Runtime.MaxPendingHandshakes)
				},
				"accept_rate": func(k string, v any) { d.int(k, v, &t.Runtime.AcceptRate) },
				"outbox_bytes": func(k string, v any) {
					var n int
					d.int(k, v, &n)
					t.Runtime.OutboxBytes = int64(n)
				},
				"outbox_stall":     func(k string, v any) { d.duration(k, v, &t.Runtime.OutboxStall) },
				"max_result_bytes": func(k string, v any) { d.int(k, v, &t.Runtime.MaxResultBytes) },
				"max_client_tasks": func(k string, v any) { d.int(k, v, &t.Runtime.MaxClientTasks) },
				"max_client_bytes": func(k string, v any) {
					var n int
					d.int(k, v, &n)
					t.Runtime.MaxClientBytes = int64(n)
				},
				"max_queued_tasks": func(k string, v any) { d.int(k, v, &t.Runtime.MaxQueuedTasks) },
				"max_queued_bytes": func(k string, v any) {
					var n int
					d.int(k, v, &n)
					t.Runtime.MaxQueuedBytes = int64(n)
				},
			})
		},
		"tls": func(k string, v any) {
			d.table(k, v, map[string]func(string, any){
				"cert_file":      func(k string, v any) { d.str(k, v, &t.TLS.CertFile) },
				"key_file":       func(k string, v any) { d.str(k, v, &t.TLS.KeyFile) },
				"ca_file":        func(k string, v any) { d.str(k, v, &t.TLS.CAFile) },
				"verify_clients": func(k string, v any) { d.bool(k, v, &t.TLS.VerifyClients) },
				"server_name":    func(k string, v any) { d.str(k, v, &t.TLS.ServerName) },
			})
		},
		"server": func(k string, v any) {
			d.table(k, v, map[string]func(string, any){
				"placement": func(k string, v any) { d.enum(k, v, &t.Server.Placement) },
				"network":   func(k string, v any) { d.enum(k, v, &t.Server.Network) },
				"metrics":   func(k string, v any) { d.str(k, v, &t.Server.Metrics) },
			})
		},
		"managers": func(k string, v any) {
			d.table(k, v, map[string]func(string, any){
				"fanout":  func(k string, v any) { d.int(k, v, &t.Managers.Fanout) },
				"network": func(k string, v any) { d.enum(k, v, &t.Managers.Network) },
			})
		},
		"workers": func(k string, v any) {
			d.table(k, v, map[string]func(string, any){
				"ranks_per_node": func(k string, v any) { d.int(k, v, &t.Workers.RanksPerNode) },
				"slots_per_rank": func(k string, v any) { d.int(k, v, &t.Workers.SlotsPerRank) },
				"cpus_per_node":  func(k string, v any) { d.int(k, v, &t.Workers.CPUsPerNode) },
				"pin":            func(k string, v any) { d.enum(k, v, &t.Workers.Pin) },
				"cpus":           func(k string, v any) { d.strList(k, v, &t.Workers.CPUs) },
				"blas_threads":   func(k string, v any) { d.int(k, v, &t.Workers.BLASThreads) },
				"gpus_per_node":  func(k string, v any) { d.int(k, v, &t.Workers.GPUsPerNode) },
				"ranks_per_gpu":  func(k string, v any) { d.int(k, v, &t.Workers.RanksPerGPU) },
				"gpu_env":        func(k string, v any) { d.enum(k, v, &t.Workers.GPUEnv) },
				"env":            func(k string, v any) { d.strMap(k, v, &t.Workers.Env) },
				"restarts":       func(k string, v any) { d.int(k, v, &t.Workers.Restarts) },
			})
		},
		"python": func(k string, v any) {
			d.table(k, v, map[string]func(string, any){
				"interpreter": func(k string, v any) { d.str(k, v, &t.Python.Interpreter) },
				"path":        func(k string, v any) { d.strList(k, v, &t.Python.Path) },
				"threads":     func(k string, v any) { d.int(k, v, &t.Python.Threads) },
			})
		},
		"alloc": func(k string, v any) {
			a := &t.Alloc
			d.table(k, v, map[string]func(string, any){
				"scheduler":       func(k string, v any) { d.enum(k, v, &a.Scheduler) },
				"partition":       func(k string, v any) { d.str(k, v, &a.Partition); t.allocQueueKey = k },
				"queue":           func(k string, v any) { d.str(k, v, &a.Partition); t.allocQueueKey = k },
				"nodes":           func(k string, v any) { d.int(k, v, &a.Nodes) },
				"walltime":        func(k string, v any) { d.duration(k, v, &a.Walltime) },
				"account":         func(k string, v any) { d.str(k, v, &a.Account) },
				"options":         func(k string, v any) { d.strList(k, v, &a.Options) },
				"max_allocations": func(k string, v any) { d.int(k, v, &a.MaxAllocations) },
				"backlog":         func(k string, v any) { d.int(k, v, &a.Backlog) },
				"backlog_for":     func(k string, v any) { d.duration(k, v, &a.BacklogFor) },
				"idle_timeout":    func(k string, v any) { d.duration(k, v, &a.IdleTimeout) },
				"drain_lead":      func(k string, v any) { d.duration(k, v, &a.DrainLead) },
				"qlaunch":         func(k string, v any) { d.str(k, v, &a.Qlaunch) },
			})
			t.allocTable = true
		},
		"env": func(k string, v any) { d.strMap(k, v, &t.Env) },
	})
	return t, d.errs
}

func join(prefix, key string) string {
	k := toml.Key{key}.String()
	if prefix == "" {
		return k
	}
	return prefix + "." + k
}

// table decodes a TOML table whose keys must be among fields.
func (d *decoder) table(key string, v any, fields map[string]func(string, any)) {
	m, ok := v.(map[string]any)
	if !ok {
		d.errorf(key, "must be a table, not %s", tomlType(v))
		return
	}
	for _, k := range sortedKeys(m) {
		full := join(key, k)
		f, ok := fields[k]
		if !ok {
			d.errorf(full, "unknown key%s", suggest(k, fields))
			continue
		}
		f(full, m[k])
	}
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// suggest names the known keys, for an unknown-key message.
func suggest(k string, fields map[string]func(string, any)) string {
	known := sortedKeys(fields)
	for _, f := range known {
		if normKey(f) == normKey(k) {
			return fmt.Sprintf(" (did you mean %s?)", f)
		}
	}
	return fmt.Sprintf(" (known keys: %s)", strings.Join(known, ", "))
}

func normKey(k string) string {
	return strings.NewReplacer("_", "", "-", "").Replace(strings.ToLower(k))
}

func (d *decoder) int(key string, v any, dst *int) {
	n, ok := v.(int64)
	if !ok {
		d.errorf(key, "must be an integer, not %s", tomlType(v))
		return
	}
	if n < math.MinInt32 || n > math.MaxInt32 {
		d.errorf(key, "%d is out of range", n)
		return
	}
	*dst = int(n)
}

func (d *decoder) str(key string, v any, dst *string) {
	s, ok := v.(string)
	if !ok {
		d.errorf(key, "must be a string, not %s", tomlType(v))
		return
	}
	*dst = s
}

func (d *decoder) bool(key string, v any, dst *bool) {
	b, ok := v.(bool)
	if !ok {
		d.errorf(key, "must be a boolean, not %s", tomlType(v))
		return
	}
	*dst = b
}

// duration decodes a Go duration string ("500ms", "2s", "1m30s").
func (d *decoder) duration(key string, v any, dst *time.Duration) {
	s, ok := v.(string)
	if !ok {
		d.errorf(key, "must be a duration string such as \"500ms\" or \"2s\", not %s", tomlType(v))
		return
	}
	x, err := time.ParseDuration(s)
	if err != nil {
		d.errorf(key, "%q is not a duration (such as \"500ms\" or \"2s\")", s)
		return
	}
	*dst = x
}

// enum decodes a string through the enum type's UnmarshalText.
func (d *decoder) enum(key string, v any, dst interface{ UnmarshalText([]byte) error }) {
	s, ok := v.(string)
	if !ok {
		d.errorf(key, "must be a string, not %s", tomlType(v))
		return
	}
	if err := dst.UnmarshalText([]byte(s)); err != nil {
		d.errorf(key, "%v", err)
	}
}

func (d *decoder) strList(key string, v any, dst *[]string) {
	a, ok := v.([]any)
	if !ok {
		d.errorf(key, "must be an array of strings, not %s", tomlType(v))
		return
	}
	out := make([]string, 0, len(a))
	for i, e := range a {
		s, ok := e.(string)
		if !ok {
			d.errorf(key, "element %d must be a string, not %s", i, tomlType(e))
			return
		}
		out = append(out, s)
	}
	*dst = out
}

func (d *decoder) strMap(key string, v any, dst *map[string]string) {
	m, ok := v.(map[string]any)
	if !ok {
		d.errorf(key, "must be a table of strings, not %s", tomlType(v))
		return
	}
	out := make(map[string]string, len(m))
	for _, k := range sortedKeys(m) {
		switch e := m[k].(type) {
		case string:
			out[k] = e
		case int64, float64, bool:
			out[k] = fmt.Sprint(e)
		default:
			d.errorf(join(key, k), "must be a string, not %s", tomlType(e))
		}
	}
	*dst = out
}

func tomlType(v any) string {
	switch v.(type) {
	case string:
		return "a string"
	case int64:
		return "an integer"
	case float64:
		return "a float"
	case bool:
		return "a boolean"
	case []any, []map[string]any:
		return "an array"
	case map[string]any:
		return "a table"
	}
	return "a date or time"
}
