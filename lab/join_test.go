package lab_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/qlaunch/qlaunch/kernels"
	"github.com/qlaunch/qlaunch/lab"
	"github.com/qlaunch/qlaunch/launcher/client"
	"github.com/qlaunch/qlaunch/launcher/wire"
)

// TestJoinSecondAllocation: a first job on n1 runs the runtime; a second
// job on n2 and n3 runs `srun qlaunch TOPOLOGY.toml --join` against its
// address file, started by srun or by sbatch of the script `qlaunch script
// slurm --join` writes. Its ranks join under the server, labelled with
// their job id; a map then runs on their slots; ending the second job
// (qlaunch drain alloc:ID: every rank exits 0; or scancel, whose SIGTERM
// drains a joined allocation) leaves the first one serving and the second
// one's ranks drained.
func TestJoinSecondAllocation(t *testing.T) {
	c := lab.Require(t, os.Getenv)
	needNodes(t, c, 3)
	t.Run("srun", func(t *testing.T) {
		joinAndLeave(t, c, true, func(j *job, name string, stderr *strings.Builder) <-chan error {
			joiner := cmdTimeout(t, 150*time.Second, j.env, "srun", "--job-name="+name, "-N2", "-w", c.Nodes[1]+","+c.Nodes[2], "-n4", "-O",
				"--cpu-bind=none", qlaunch(t), j.topo, "--join", "--address-file", filepath.Join(j.dir, "addr"))
			joiner.Stderr = stderr
			if err := joiner.Start(); err != nil {
				t.Fatal(err)
			}
			ended := make(chan error, 1)
			go func() { ended <- joiner.Wait() }()
			return ended
		})
	})
	t.Run("sbatch", func(t *testing.T) {
		joinAndLeave(t, c, false, func(j *job, name string, _ *strings.Builder) <-chan error {
			script, err := j.qlaunch("script", "slurm", j.topo, "--join", filepath.Join(j.dir, "addr"), "--nodes", "2",
				"--qlaunch", qlaunch(t), "--job-name", name, "--time", "5")
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(j.dir, "join.sbatch")
			if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
				t.Fatal(err)
			}
			out, _, err := output(cmd(t, 30*time.Second, j.env, "sbatch", "--parsable", "-w", c.Nodes[1]+","+c.Nodes[2],
				"-o", filepath.Join(j.dir, "join-%j.out"), path))
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("sbatch: job %s", strings.TrimSpace(out))
			ended := make(chan error, 1)
			go func() {
				// The job is over once squeue no longer lists it.
				for {
					q, err := exec.Command("squeue", "-h", "-n", name, "-o", "%i").Output()
					if err == nil && strings.TrimSpace(string(q)) == "" {
						ended <- nil
						return
					}
					select {
					case <-t.Context().Done():
						ended <- t.Context().Err()
						return
					case <-time.After(200 * time.Millisecond): // polling squeue: SLURM has no completion event
					}
				}
			}()
			return ended
		})
	})
}

// joinAndLeave runs the test with the second job started by start, under
// the job name it is given, and ended by qlaunch drain alloc:ID (byDrain)
// or scancel.
func joinAndLeave(t *testing.T, c lab.Cluster, byDrain bool, start func(j *job, name string, stderr *strings.Builder) <-chan error) {
	j := newJob(t, c, "", c.Nodes[:1], nil)
	j.start(slurm(t, 180*time.Second, j.env, "srun", "-N1", "-w", c.Nodes[0], "-n2", "-O", "--cpu-bind=none", qlaunch(t), j.topo))
	j.wait()
	cl := j.dial()
	ctx, cancel := context.WithTimeout(t.Context(), 120*time.Second)
	defer cancel()
	first := statusRows(t, ctx, cl)
	firstAlloc := first[0].Alloc
	if firstAlloc == "" {
		t.Fatalf("the server's row has no allocation: %+v", first[0])
	}

	// The second allocation, under a job name of its own.
	name := jobName(t) + "-join"
	t.Cleanup(func() { cancelJobs(t, name) })
	var jerr strings.Builder
	t0 := time.Now()
	joined := start(j, name, &jerr)

	// Its 4 ranks join: a manager per node, each with a worker rank,
	// numbered from the job id × 1000 and labelled with it.
	var mine []wire.RankStatus
	for ctx.Err() == nil {
		mine = mine[:0]
		for _, r := range statusRows(t, ctx, cl) {
			if r.State == wire.RankJoined && r.Alloc != firstAlloc {
				mine = append(mine, r)
			}
		}
		if len(mine) == 4 {
			break
		}
		select {
		case err := <-joined:
			t.Fatalf("the joining job ended first: %v\n%s", err, jerr.String())
		case <-time.After(100 * time.Millisecond): // polling status while SLURM starts the job
		}
	}
	if len(mine) != 4 {
		t.Fatalf("joined ranks %+v, want 4\n%s", mine, jerr.String())
	}
	t.Logf("the second job's 4 ranks joined %v after its submission", time.Since(t0).Round(time.Millisecond))
	alloc := mine[0].Alloc
	var hosts []string
	for _, r := range mine {
		if r.Alloc != alloc || alloc == "" || r.Rank < 1000 {
			t.Fatalf("joined rank %+v: want allocation %q and a number from its rank base", r, alloc)
		}
		hosts = append(hosts, r.Host)
	}
	slices.Sort(hosts)
	if want := []string{c.Nodes[1], c.Nodes[1], c.Nodes[2], c.Nodes[2]}; !slices.Equal(hosts, want) {
		t.Fatalf("joined ranks on %v, want %v", hosts, want)
	}
	out, err := j.qlaunch("status", "--address-file", filepath.Join(j.dir, "addr"))
	if err != nil || !strings.Contains(out, "ALLOC") || !strings.Contains(out, alloc) {
		t.Fatalf("qlaunch status shows no allocation column with %s: %v\n%s", alloc, err, out)
	}
	t.Logf("status with the second allocation:\n%s", out)

	// A map uses the new slots: tasks run on n2 and n3.
	ts := make([]kernels.Task, 24)
	for i := range ts {
		ts[i] = kernels.Task{Kernel: "exec", Args: []string{"--", "sh", "-c", "sleep 0.3; echo $SLURMD_NODENAME $SLURM_JOB_ID"}}
	}
	f, err := cl.Map(ctx, ts)
	if err != nil {
		t.Fatal(err)
	}
	vals, err := cl.Wait(ctx, f)
	if err != nil {
		t.Fatal(err)
	}
	ran := map[string]int{}
	for _, v := range vals {
		ran[strings.TrimSpace(string(v))]++
	}
	for _, n := range c.Nodes[1:3] {
		if ran[n+" "+alloc] == 0 {
			t.Fatalf("no task ran on %s in job %s: %v", n, alloc, ran)
		}
	}

	// Ending the second job (qlaunch drain alloc:ID, or scancel) leaves
	// the first serving.
	t1 := time.Now()
	if byDrain {
		out, err := j.qlaunch("drain", "--address-file", filepath.Join(j.dir, "addr"), "alloc:"+alloc)
		if err != nil || !strings.HasPrefix(out, "drained ranks ") {
			t.Fatalf("qlaunch drain alloc:%s: %q %v", alloc, out, err)
		}
	} else if out, err := exec.CommandContext(ctx, "scancel", "--name="+name).CombinedOutput(); err != nil {
		t.Fatalf("scancel: %v %s", err, out)
	}
	select {
	case err := <-joined:
		if byDrain && err != nil {
			t.Fatalf("the drained job's srun: %v, want exit 0 of every rank\n%s", err, jerr.String())
		}
	case <-ctx.Done():
		t.Fatalf("the second job did not end\n%s", jerr.String())
	}
	t.Logf("the second job ended %v after the drain or scancel", time.Since(t1).Round(time.Millisecond))
	v, err := cl.Wait(ctx, must(cl.Submit(ctx, kernels.Task{Kernel: "echo", Args: []string{"still serving"}})))
	if err != nil || string(v[0]) != "still serving" {
		t.Fatalf("the first job after the second left: %q %v", v, err)
	}
	// scancel's SIGTERM drained the second job's ranks: their manager
	// left cleanly.
	top := slices.MinFunc(mine, func(a, b wire.RankStatus) int { return a.Rank - b.Rank })
	// (The server learns of the leave as the connection closes: ask until
	// it has, bounded by ctx.)
	rows := statusRows(t, ctx, cl)
	for ctx.Err() == nil && slices.ContainsFunc(rows, func(r wire.RankStatus) bool { return r.Rank == top.Rank && r.State == wire.RankJoined }) {
		rows = statusRows(t, ctx, cl)
	}
	for _, r := range rows {
		if r.Alloc == firstAlloc && r.State != wire.RankJoined {
			t.Fatalf("a rank of the first job is %s: %+v", r.State, r)
		}
		if r.Rank == top.Rank && r.State != wire.RankDrained {
			t.Fatalf("the second job's top manager after scancel: %+v, want drained\n%s", r, jerr.String())
		}
	}
	stopServer(t, j)
}

func statusRows(t *testing.T, ctx context.Context, cl *client.Client) []wire.RankStatus {
	t.Helper()
	rows, err := cl.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
