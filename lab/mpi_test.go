package lab_test

import (
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/qlaunch/qlaunch/lab"
)

// rankTest is the rank package's test binary built with the MPI tags; its
// TestMPI checks MPI against the detected launcher and Allgathers.
func rankTest(t *testing.T, tags string) string {
	name := "rank-" + strings.ReplaceAll(tags, ",", "-") + ".test"
	return need(t, name, tags, "test:./rank")
}

// mpiInitCrashed reports whether a rank's output shows Open MPI crashing
// inside MPI_Init_thread (a SIGSEGV during the cgo call, before any code of
// qlaunch ran after it). Open MPI 4.1 under srun --mpi=pmix, with three
// "nodes" on one host's loopback, does so now and then under heavy load
// (seen about once in three full CI runs); the tests retry once for this
// signature only.
func mpiInitCrashed(out string) bool {
	return strings.Contains(out, "SIGSEGV") && strings.Contains(out, "rank._Cfunc_q_init_thread")
}

var mpiOK = regexp.MustCompile(`(?m)^mpi ok: rank (\d+) of (\d+) on (\S+) via (\S+)`)

// checkRanks wants one "mpi ok" line from each of size ranks via launcher,
// rank r on node nodes[r*len(nodes)/size] when nodes is given.
func checkRanks(t *testing.T, out string, size int, launcher string, nodes []string) {
	t.Helper()
	seen := map[string]bool{}
	for _, m := range mpiOK.FindAllStringSubmatch(out, -1) {
		if m[2] != fmt.Sprint(size) || m[4] != launcher {
			t.Errorf("line %q: want size %d via %s", m[0], size, launcher)
		}
		var r int
		fmt.Sscan(m[1], &r)
		if nodes != nil && m[3] != nodes[r*len(nodes)/size] {
			t.Errorf("rank %d on %s, want %s", r, m[3], nodes[r*len(nodes)/size])
		}
		seen[m[1]] = true
	}
	if len(seen) != size {
		t.Fatalf("%d of %d ranks reported MPI ok:\n%s", len(seen), size, out)
	}
}

func TestMPI(t *testing.T) {
	c := lab.Require(t, os.Getenv)
	needNodes(t, c, 3)
	run := []string{"-test.run=^TestMPI$"}
	for _, tc := range []struct {
		name, tags, launcher string
		size                 int
		nodes                []string
		tool                 string
		args                 []string
	}{
		{"mpirun -n 4", "mpi", "ompi", 4, nil, "mpirun", []string{"--oversubscribe", "-n", "4"}},
		{"salloc -N3 -n6 mpirun", "mpi", "ompi", 6, c.Nodes[:3], "salloc", []string{"-N3", "--ntasks-per-node=2", "mpirun"}},
		{"srun --mpi=pmix -N3 -n6", "mpi", "pmix", 6, c.Nodes[:3], "srun", []string{"--mpi=pmix", "-N3", "--ntasks-per-node=2"}},
		{"srun --mpi=pmi2 -N3 -n6 (MPICH)", "mpi,mpich", "pmi", 6, c.Nodes[:3], "srun", []string{"--mpi=pmi2", "-N3", "--ntasks-per-node=2"}},
		{"mpiexec.mpich -n 3 (MPICH)", "mpi,mpich", "hydra", 3, nil, "mpiexec.mpich", []string{"-n", "3"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bin := rankTest(t, tc.tags)
			args := append(append(append([]string{}, tc.args...), bin), run...)
			var out string
			for attempt := 1; ; attempt++ {
				var cmd = slurm(t, 90*time.Second, cleanEnv(), tc.tool, args...)
				if tc.tool == "mpirun" || tc.tool == "mpiexec.mpich" {
					cmd = cmdTimeout(t, 90*time.Second, cleanEnv(), tc.tool, args...)
				}
				var err error
				out, _, err = output(cmd)
				if err != nil && attempt == 1 && mpiInitCrashed(err.Error()) {
					t.Logf("attempt 1: Open MPI crashed in MPI_Init_thread; retrying once:\n%v", err)
					continue
				}
				if err != nil {
					t.Fatal(err)
				}
				break
			}
			checkRanks(t, out, tc.size, tc.launcher, tc.nodes)
		})
	}
}

// TestMPISizeMismatch: MPICH under srun --mpi=pmix runs singletons of size
// 1; every rank must refuse with a clear error instead of running alone.
func TestMPISizeMismatch(t *testing.T) {
	c := lab.Require(t, os.Getenv)
	needNodes(t, c, 2)
	bin := rankTest(t, "mpi,mpich")
	out, _, err := output(slurm(t, 60*time.Second, cleanEnv("QLAUNCH_TEST_EXPECT_MISMATCH=1"),
		"srun", "--mpi=pmix", "-N2", "-n2", bin, "-test.run=^TestMPI$"))
	if err != nil {
		t.Fatal(err)
	}
	const want = "refused: MPI world size 1 differs from the 2 tasks the pmix launcher started"
	if n := strings.Count(out, want); n != 2 {
		t.Fatalf("%d ranks refused, want 2:\n%s", n, out)
	}
}

// TestMPIAbort: a rank that calls MPI_Abort ends the whole job, the ranks
// blocked in MPI_Allgather included, under srun without --kill-on-bad-exit
// and under mpirun: what a rank failing its bootstrap relies on.
func TestMPIAbort(t *testing.T) {
	c := lab.Require(t, os.Getenv)
	needNodes(t, c, 3)
	bin := rankTest(t, "mpi")
	run := []string{"-test.run=^TestMPIAbort$"}
	for _, tc := range []struct {
		name, tool string
		args       []string
	}{
		{"srun --mpi=pmix -N3 -n3", "srun", []string{"--mpi=pmix", "-N3", "-n3"}},
		{"mpirun -n 3", "mpirun", []string{"--oversubscribe", "-n", "3"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := cleanEnv("QLAUNCH_TEST_ABORT=1")
			args := append(append(append([]string{}, tc.args...), bin), run...)
			cmd := slurm(t, 60*time.Second, env, tc.tool, args...)
			if tc.tool == "mpirun" {
				cmd = cmdTimeout(t, 60*time.Second, env, tc.tool, args...)
			}
			out, _, err := output(cmd)
			if err == nil {
				t.Fatalf("the job succeeded although a rank aborted:\n%s", out)
			}
			if strings.Contains(err.Error(), "exit status 124") {
				t.Fatalf("the job hung until the timeout although a rank aborted: %v", err)
			}
			if !strings.Contains(out, "rank 2 aborting") {
				t.Fatalf("no rank said it aborts:\n%s\n%v", out, err)
			}
		})
	}
}
