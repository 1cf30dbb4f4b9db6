package reliability_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// Binaries built once by TestMain: qlaunch and the driver.
var (
	qlaunchBin string
	driverBin  string
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "qlaunch-reliability-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	qlaunchBin = filepath.Join(dir, "qlaunch")
	driverBin = filepath.Join(dir, "reldriver")
	for _, b := range []struct{ out, pkg string }{{qlaunchBin, "../cmd/qlaunch"}, {driverBin, "./reldriver"}} {
		if out, err := exec.Command("go", "build", "-o", b.out, b.pkg).CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "building %s: %v\n%s", b.pkg, err, out)
			os.RemoveAll(dir)
			os.Exit(1)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}
