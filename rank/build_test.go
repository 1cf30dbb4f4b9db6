package rank

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestPureGoBuild: without the mpi tag the whole module builds with
// CGO_ENABLED=0, and the pure-Go rank package has no MPI.
func TestPureGoBuild(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the module")
	}
	if HaveMPI {
		t.Skip("this test binary was built with the mpi tag")
	}
	c := exec.Command("go", "build", "-o", filepath.Join(t.TempDir(), "qlaunch"), "./cmd/qlaunch")
	c.Dir = ".."
	c.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := c.CombinedOutput(); err != nil {
		t.Fatalf("CGO_ENABLED=0 go build ./cmd/qlaunch: %v\n%s", err, out)
	}
	if _, err := StartMPI(); err == nil {
		t.Fatal("StartMPI succeeded without MPI")
	}
}
