package cli

import (
	"context"
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"
)

// version, when set at link time (go build -ldflags "-X
// github.com/qlaunch/qlaunch/cmd/cli.version=v1.2.3"), replaces the
// module version the build info records.
var version string

// cmdVersion prints the binary's version: its module version (or the
// link-time one), the source revision it was built from, and Go's.
func cmdVersion(_ context.Context, e *env, args []string) error {
	fs := newFlagSet(e, "version", "version\n\n"+
		"Prints this binary's version, the source revision it was built from (when\n"+
		"built in a git checkout) and the Go version and platform.")
	if err := parseFlags(e, fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("version: unexpected arguments %q", fs.Args())
	}
	bi, _ := debug.ReadBuildInfo()
	_, err := fmt.Fprintln(e.stdout, versionLine(bi, version))
	return err
}

// versionLine is "qlaunch VERSION, revision REV (TIME, modified), GO
// OS/ARCH" from the build info (nil: none) and a link-time version.
func versionLine(bi *debug.BuildInfo, linked string) string {
	v, prog := linked, "qlaunch"
	var rev, when string
	modified := false
	if bi != nil {
		if v == "" {
			v = bi.Main.Version
		}
		if bi.Main.Path != "" && bi.Main.Path != "github.com/qlaunch/qlaunch" || bi.Path != "" && !strings.HasSuffix(bi.Path, "/cmd/qlaunch") {
			prog = "qlaunch (" + bi.Path + ")" // a binary of one's own, built on cmd/cli
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.time":
				when = s.Value
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
	}
	if v == "" {
		v = "(devel)"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s", prog, v)
	if rev != "" {
		if len(rev) > 12 {
			rev = rev[:12]
		}
		fmt.Fprintf(&b, ", revision %s", rev)
		var notes []string
		if when != "" {
			notes = append(notes, when)
		}
		if modified {
			notes = append(notes, "modified")
		}
		if len(notes) > 0 {
			fmt.Fprintf(&b, " (%s)", strings.Join(notes, ", "))
		}
	}
	fmt.Fprintf(&b, ", %s %s/%s", runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return b.String()
}
