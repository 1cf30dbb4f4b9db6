package lab_test

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/qlaunch/qlaunch/lab"
)

// TestPBSScriptMPIFlavours runs the script qlaunch script pbs writes as a
// PBS job would (PBS_NODEFILE, PBS_O_WORKDIR, PBS_JOBID), with the lab's
// Open MPI and MPICH as the mpiexec on PATH: the script's own detection
// (--mpi auto) and the flavour given (--mpi openmpi|mpich) both start the
// runtime, the client prints 100 and the job exits 0. (Cray PALS's
// mpiexec cannot be installed here; its line is checked by the golden
// scripts of the pbs package.)
func TestPBSScriptMPIFlavours(t *testing.T) {
	c := lab.Require(t, os.Getenv)
	bin := qlaunch(t)
	for _, f := range []struct{ name, mpiexec string }{
		{"openmpi", "/usr/bin/mpiexec.openmpi"},
		{"mpich", "/usr/bin/mpiexec.mpich"},
	} {
		for _, flag := range []string{"auto", f.name} {
			t.Run(f.name+"/--mpi="+flag, func(t *testing.T) {
				if f.name == "mpich" && !c.MPICH {
					t.Fatal("the lab has no MPICH (lab/up.sh installs it unless QLAB_INSTALL_MPI=0)")
				}
				dir := t.TempDir()
				// mpiexec on PATH is this flavour's (a wrapper: Hydra finds
				// its proxy next to the real binary).
				pathDir := filepath.Join(dir, "bin")
				if err := os.Mkdir(pathDir, 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(pathDir, "mpiexec"), []byte("#!/bin/sh\nexec "+f.mpiexec+" \"$@\"\n"), 0o755); err != nil {
					t.Fatal(err)
				}
				topo := filepath.Join(dir, "job.toml")
				text := fmt.Sprintf("[runtime]\nport = %d\n[workers]\nranks_per_node = 1\nslots_per_rank = 1\npin = \"none\"\n", freePort(t))
				if err := os.WriteFile(topo, []byte(text), 0o644); err != nil {
					t.Fatal(err)
				}
				script, _, err := output(cmd(t, 30*time.Second, cleanEnv(), bin, "script", "pbs", topo, "--nodes", "1", "--mpi", flag,
					"--qlaunch", bin, "--", bin, "submit", "fanout", "10", "2"))
				if err != nil {
					t.Fatal(err)
				}
				job := filepath.Join(dir, "job.sh")
				if err := os.WriteFile(job, []byte(script), 0o755); err != nil {
					t.Fatal(err)
				}
				host, err := os.Hostname()
				if err != nil {
					t.Fatal(err)
				}
				nodefile := filepath.Join(dir, "nodefile")
				if err := os.WriteFile(nodefile, []byte(host+"\n"+host+"\n"), 0o644); err != nil {
					t.Fatal(err)
				}
				env := cleanEnv("PATH="+pathDir+":"+os.Getenv("PATH"), "PBS_O_WORKDIR="+dir, "PBS_JOBID=4242.pbs01",
					"PBS_NODEFILE="+nodefile, "PBS_ENVIRONMENT=PBS_BATCH")
				out, stderr, err := output(cmdTimeout(t, 90*time.Second, env, "bash", job))
				if err != nil {
					t.Fatal(err)
				}
				// Hydra's mpiexec writes its notes to stdout too.
				if !regexp.MustCompile(`(?m)^100$`).MatchString(out) {
					t.Fatalf("the job printed %q, want 100\nstderr:\n%s", out, stderr)
				}
				noProcessLeft(t, topo)
			})
		}
	}
}
