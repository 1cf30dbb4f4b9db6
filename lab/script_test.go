package lab_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/qlaunch/qlaunch/lab"
)

// TestSbatchScript: `sbatch --wait` of the script `qlaunch script slurm`
// prints for a shipped topology runs its client to completion, the job
// exits 0 and no qlaunch process is left.
func TestSbatchScript(t *testing.T) {
	c := lab.Require(t, os.Getenv)
	needNodes(t, c, 3)
	for _, cfg := range []string{"slurm-cpu.toml", "hierarchy.toml"} {
		t.Run(cfg, func(t *testing.T) {
			topo := filepath.Join(bins.root, "configs", cfg)
			if _, err := os.Stat(topo); err != nil {
				t.Skipf("configs/%s not in the tree yet", cfg)
			}
			bin := qlaunch(t)
			script, stderr, err := output(cmd(t, 30*time.Second, cleanEnv(), bin, "script", "slurm", topo, "--nodes", "3",
				"--", bin, "submit", "fanout", "10", "2"))
			if err != nil && strings.Contains(stderr, "not built yet") {
				t.Skip("qlaunch script is not built yet")
			}
			if err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			path := filepath.Join(dir, "job.sh")
			// The script names the binary as PATH finds it.
			if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
				t.Fatal(err)
			}
			env := cleanEnv("PATH=" + bins.dir + ":" + os.Getenv("PATH"))
			outFile := filepath.Join(dir, "job.out")
			c := slurm(t, 180*time.Second, env, "sbatch", "--wait", "-o", outFile, path)
			c.Dir = dir
			if _, _, err := output(c); err != nil {
				b, _ := os.ReadFile(outFile)
				t.Fatalf("%v\njob output:\n%s", err, b)
			}
			b, err := os.ReadFile(outFile)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(b), "100\n") {
				t.Fatalf("the client's result 100 is not in the job output:\n%s", b)
			}
		})
	}
}
