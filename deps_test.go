package qlaunch

import (
	"bufio"
	"bytes"
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/qlaunch/qlaunch"

// rules is the import policy of the module, a statement of intent in the
// manner of the Go tree's go/build/deps_test.go: each package pattern
// (relative to the module; "x/..." means x and everything below it) lists
// the patterns its non-test code may import: "std" is the standard library
// ("std!a,b" the standard library but a and b), "..." any package of the
// module, a pattern with a dot in its first element an external module.
// Change it on purpose, never to make a build pass. The first rule that
// matches a package applies.
var rules = []struct {
	pkg     string
	allowed []string
}{
	{"", nil}, // the root package holds only this test
	{"jobscript", []string{"std"}},
	{"slurm", []string{"std", "jobscript"}},
	{"pbs", []string{"std", "jobscript"}},
	{"topology", []string{"std", "github.com/BurntSushi/toml"}},
	{"rank", []string{"std", "slurm", "pbs", "golang.org/x/sys/..."}},
	{"kernels/kerneltest", []string{"std", "kernels", "kernels/futures"}},
	{"kernels/...", []string{"std", "kernels/...", "gonum.org/v1/gonum/..."}},
	{"launcher/wire", []string{"std", "github.com/klauspost/compress/..."}},
	{"launcher/sched", []string{"std!net,os,os/exec,net/http"}},
	{"launcher/relay", []string{"std!net,os,os/exec,net/http", "launcher/sched", "launcher/wire"}},
	{"launcher/executor", []string{"std!net,os,os/exec,net/http,time,sync"}},
	{"launcher/client", []string{"std", "launcher/wire", "launcher/transport", "kernels", "kernels/futures"}},
	{"launcher/transport", []string{"std", "launcher/wire", "topology", "golang.org/x/sys/..."}},
	{"launcher/launchertest", []string{"std", "launcher/...", "kernels/...", "topology", "golang.org/x/sys/..."}},
	{"launcher/netpick", []string{"std"}},
	{"launcher/metrics", []string{"std", "launcher", "launcher/wire"}},
	{"launcher/alloc/decide", []string{"std!net,os,os/exec,net/http"}},
	{"launcher/alloc", []string{"std", "launcher", "launcher/wire", "launcher/alloc/decide"}},
	{"launcher/boot", []string{"std", "launcher/...", "kernels/...", "topology", "rank", "slurm", "pbs", "golang.org/x/sys/..."}},
	{"launcher/starttrace", []string{"std"}},
	{"launcher", []string{"std", "launcher/wire", "launcher/starttrace", "launcher/transport", "launcher/sched", "launcher/relay", "launcher/executor", "kernels/...", "topology", "rank", "golang.org/x/sys/..."}},
	{"lab", []string{"std"}},
	{"configs", []string{"std", "topology"}},
	{"launcher/bench", []string{"std", "launcher/client", "launcher/starttrace", "launcher/wire", "kernels/...", "golang.org/x/term"}},
	{"reliability/...", []string{"std", "reliability", "launcher/client", "launcher/wire", "kernels"}},
	{"cmd/cli", []string{"std", "...", "github.com/...", "golang.org/...", "gonum.org/...", "honnef.co/..."}},
	{"cmd/qlaunch", []string{"std", "cmd/cli"}},
	{"examples/...", []string{"std", "cmd/cli", "kernels"}},
}

func TestImportRules(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", "{{.ImportPath}} {{join .Imports \" \"}}", "./...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		pkg := strings.TrimPrefix(strings.TrimPrefix(fields[0], module), "/")
		allowed, ok := rulesFor(pkg)
		if !ok {
			t.Errorf("package %q has no import rule: add one to rules in deps_test.go", pkg)
			continue
		}
		for _, imp := range fields[1:] {
			if !permitted(imp, allowed) {
				t.Errorf("forbidden import: %s -> %s", orRoot(pkg), imp)
			}
		}
	}
}

func TestRulesCatchForbiddenEdges(t *testing.T) {
	for _, c := range []struct {
		pkg, imp string
		want     bool
	}{
		{"slurm", "strings", true},
		{"slurm", module + "/topology", false},
		{"slurm", module + "/jobscript", true},
		{"jobscript", module + "/slurm", false},
		{"topology", module + "/slurm", false},
		{"topology", "github.com/BurntSushi/toml", true},
		{"launcher/client", module + "/launcher", false},
		{"launcher/client", module + "/launcher/wire", true},
		{"launcher/client", module + "/kernels", true},
		{"launcher/sched", "net", false},
		{"launcher/sched", "sort", true},
		{"launcher/relay", "net", false},
		{"launcher/relay", module + "/launcher/sched", true},
		{"launcher/wire", module + "/kernels", false},
		{"kernels", module + "/launcher", false},
		{"kernels/circuit", "gonum.org/v1/gonum/mat", true},
		{"rank", module + "/topology", false},
		{"cmd/cli", module + "/launcher", true},
		{"cmd/qlaunch", module + "/launcher", false},
		{"launcher/netpick", module + "/topology", false},
		{"launcher/boot", module + "/launcher/netpick", true},
	} {
		allowed, _ := rulesFor(c.pkg)
		if got := permitted(c.imp, allowed); got != c.want {
			t.Errorf("%s -> %s permitted = %v, want %v", c.pkg, c.imp, got, c.want)
		}
	}
}

func orRoot(pkg string) string {
	if pkg == "" {
		return module
	}
	return pkg
}

func rulesFor(pkg string) ([]string, bool) {
	for _, r := range rules {
		if match(r.pkg, pkg) {
			return r.allowed, true
		}
	}
	return nil, false
}

// match reports whether pkg matches pattern ("x", or "x/..." for x and below).
func match(pattern, pkg string) bool {
	if pattern == "..." {
		return true
	}
	if base, ok := strings.CutSuffix(pattern, "/..."); ok {
		return pkg == base || strings.HasPrefix(pkg, base+"/")
	}
	return pattern == pkg
}

func permitted(imp string, allowed []string) bool {
	internal, isInternal := strings.CutPrefix(imp, module+"/")
	if imp == module {
		internal, isInternal = "", true
	}
	std := !isInternal && !strings.Contains(strings.SplitN(imp, "/", 2)[0], ".")
	for _, a := range allowed {
		switch {
		case strings.HasPrefix(a, "std"):
			if !std {
				continue
			}
			if banned, ok := strings.CutPrefix(a, "std!"); ok {
				for _, b := range strings.Split(banned, ",") {
					if imp == b {
						return false
					}
				}
			}
			return true
		case a == "...":
			if isInternal {
				return true
			}
		case strings.Contains(strings.SplitN(a, "/", 2)[0], "."):
			if !isInternal && match(a, imp) {
				return true
			}
		default:
			if isInternal && match(a, internal) {
				return true
			}
		}
	}
	return false
}
