package rank

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzDetect feeds Detect environments (white-space separated KEY=VALUE
// words) and node files. PBS_NODEFILE always names a file holding the
// fuzzed node file, so that no other file is read. Whatever the input,
// Detect either fails or returns an Info that meets its invariants, and
// BlockRank is ErrLayout or a rank below the size.
func FuzzDetect(f *testing.F) {
	for _, env := range []string{
		srunN3n6rank4,
		"OMPI_COMM_WORLD_RANK=1 OMPI_COMM_WORLD_SIZE=4 OMPI_COMM_WORLD_LOCAL_RANK=1 OMPI_COMM_WORLD_LOCAL_SIZE=4",
		"PMI_RANK=2 PMI_SIZE=4 MPI_LOCALRANKID=2 MPI_LOCALNRANKS=4 PMI_FD=3",
		"PMIX_RANK=1 SLURM_STEP_ID=0 SLURM_PROCID=1 SLURM_LOCALID=0 SLURM_STEP_NODELIST=n[1-2] SLURM_STEP_TASKS_PER_NODE=1(x2) SLURMD_NODENAME=n2",
		"PALS_RANKID=1 PALS_NODEID=1 PALS_LOCAL_RANKID=0 PALS_LOCAL_SIZE=1 PMI_RANK=1 PMI_SIZE=2 PBS_JOBID=5.pbs",
		"PBS_JOBID=1.pbs PBS_VNODENUM=3",
		"SLURM_JOB_ID=35 SLURM_PROCID=0 SLURM_NODEID=0 SLURMD_NODENAME=n1",
		"",
	} {
		f.Add(env, "n1\nn1\nn2\nn2\n")
	}
	f.Fuzz(func(t *testing.T, env, nodefile string) {
		m := map[string]string{}
		for _, kv := range strings.Fields(env) {
			k, v, _ := strings.Cut(kv, "=")
			m[k] = v
		}
		delete(m, "PBS_NODEFILE")
		if m["PBS_JOBID"] != "" || m["PALS_RANKID"] != "" {
			path := filepath.Join(t.TempDir(), "nodefile")
			if err := os.WriteFile(path, []byte(nodefile), 0o600); err != nil {
				t.Fatal(err)
			}
			m["PBS_NODEFILE"] = path
		}
		info, err := Detect(func(k string) string { return m[k] })
		if err != nil {
			return
		}
		if err := info.check(); err != nil {
			t.Fatalf("Detect = %+v, which fails its own check: %v", info, err)
		}
		br, err := info.BlockRank()
		switch {
		case errors.Is(err, ErrLayout):
		case err != nil || br < 0 || br >= info.Size:
			t.Fatalf("Detect = %+v: BlockRank = %d, %v; want a rank below %d", info, br, err, info.Size)
		}
	})
}
