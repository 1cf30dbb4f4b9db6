package topology

import (
	"fmt"
	"strconv"
	"strings"
)

// templateNames are the placeholders an env value may use.
var templateNames = [...]string{"rank", "local_rank", "node", "host", "gpu"}

// parseTemplate returns the placeholders of an env template. A placeholder
// is {name} with name made of letters and underscores; any other brace is
// literal text. An unknown name is an error.
func parseTemplate(s string) ([]string, error) {
	var names []string
	for i := 0; i < len(s); i++ {
		if s[i] != '{' {
			continue
		}
		j := i + 1
		for j < len(s) && (s[j] == '_' || s[j] >= 'a' && s[j] <= 'z' || s[j] >= 'A' && s[j] <= 'Z') {
			j++
		}
		if j == i+1 || j >= len(s) || s[j] != '}' {
			continue
		}
		name := s[i+1 : j]
		known := false
		for _, n := range templateNames {
			known = known || n == name
		}
		if !known {
			return nil, fmt.Errorf("unknown placeholder {%s} (known: {rank}, {local_rank}, {node}, {host}, {gpu})", name)
		}
		names = append(names, name)
		i = j
	}
	return names, nil
}

// expandTemplate substitutes the placeholders of s for rank r.
func expandTemplate(s string, r *Rank) string {
	if !strings.Contains(s, "{") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '{' {
			if j := strings.IndexByte(s[i:], '}'); j > 0 {
				if v, ok := placeholder(s[i+1:i+j], r); ok {
					b.WriteString(v)
					i += j
					continue
				}
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func placeholder(name string, r *Rank) (string, bool) {
	switch name {
	case "rank":
		return strconv.Itoa(r.Rank), true
	case "local_rank":
		return strconv.Itoa(r.LocalRank), true
	case "node":
		return strconv.Itoa(r.Node), true
	case "host":
		return r.Host, true
	case "gpu":
		return gpuList(r.GPUs), true
	}
	return "", false
}

func gpuList(gpus []int) string {
	parts := make([]string, len(gpus))
	for i, g := range gpus {
		parts[i] = strconv.Itoa(g)
	}
	return strings.Join(parts, ",")
}

// AddressPath returns the address file to use: $QLAUNCH_ADDRESS_FILE when
// set (qlaunch script sets it per job), else AddressFile with $VAR and
// ${VAR} expanded through getenv.
func (r Runtime) AddressPath(getenv func(string) string) string {
	if p := getenv("QLAUNCH_ADDRESS_FILE"); p != "" {
		return p
	}
	return expandVars(r.AddressFile, getenv)
}

// SecretPath returns the job secret file to use: $QLAUNCH_SECRET_FILE when
// set (qlaunch script creates one per job), else SecretFile with $VAR and
// ${VAR} expanded through getenv; "" means the runtime generates the
// secret itself.
func (r Runtime) SecretPath(getenv func(string) string) string {
	if p := getenv("QLAUNCH_SECRET_FILE"); p != "" {
		return p
	}
	return expandVars(r.SecretFile, getenv)
}

// expandVars is os.Expand without the os package's environment.
func expandVars(s string, getenv func(string) string) string {
	if !strings.Contains(s, "$") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '$' || i+1 >= len(s) {
			b.WriteByte(s[i])
			continue
		}
		if s[i+1] == '{' {
			if j := strings.IndexByte(s[i:], '}'); j > 0 {
				b.WriteString(getenv(s[i+2 : i+j]))
				i += j
				continue
			}
			b.WriteByte(s[i])
			continue
		}
		j := i + 1
		for j < len(s) && (s[j] == '_' || s[j] >= 'A' && s[j] <= 'Z' || s[j] >= 'a' && s[j] <= 'z' || s[j] >= '0' && s[j] <= '9') {
			j++
		}
		if j == i+1 {
			b.WriteByte(s[i])
			continue
		}
		b.WriteString(getenv(s[i+1 : j]))
		i = j - 1
	}
	return b.String()
}
