package lab_test

import (
	"encoding/json"
	"fmt"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/qlaunch/qlaunch/lab"
)

// whoami is the JSON that `qlaunch whoami --format json` prints.
type whoami struct {
	Launcher     string   `json:"launcher"`
	Rank         int      `json:"rank"`
	Size         int      `json:"size"`
	LocalRank    int      `json:"local_rank"`
	LocalSize    int      `json:"local_size"`
	Node         string   `json:"node"`
	NodeIndex    int      `json:"node_index"`
	NodeList     []string `json:"node_list"`
	TasksPerNode []int    `json:"tasks_per_node"`
	JobID        string   `json:"job_id"`
	CPUs         string   `json:"cpus"`
}

// needNodes skips a test that needs more nodes than the lab has.
func needNodes(t *testing.T, c lab.Cluster, n int) {
	t.Helper()
	if len(c.Nodes) < n {
		t.Skipf("needs %d lab nodes, the lab has %d (QLAB_NODES)", n, len(c.Nodes))
	}
}

// TestSrunWhoami: under `srun -N3 --ntasks-per-node=2` every task sees its
// own rank, node (SLURMD_NODENAME, not the shared host name), node list,
// task counts, job id, and the CPU SLURM bound it to.
func TestSrunWhoami(t *testing.T) {
	c := lab.Require(t, os.Getenv)
	needNodes(t, c, 3)
	bin := qlaunch(t)
	out, _, err := output(slurm(t, 60*time.Second, cleanEnv(), "srun", "-N3", "--ntasks-per-node=2", "-l",
		"sh", "-c", `echo "bind=$SLURM_CPU_BIND_LIST"; exec "$0" whoami --format json`, bin))
	if err != nil {
		t.Fatal(err)
	}
	tasks := labeled(t, out)
	if len(tasks) != 6 {
		t.Fatalf("%d tasks answered, want 6:\n%s", len(tasks), out)
	}
	var job string
	for task := range 6 {
		lines := tasks[task]
		if len(lines) != 2 {
			t.Fatalf("task %d printed %q", task, lines)
		}
		var got whoami
		if err := json.Unmarshal([]byte(lines[1]), &got); err != nil {
			t.Fatalf("task %d: %v in %q", task, err, lines[1])
		}
		if job == "" {
			job = got.JobID
		}
		want := whoami{
			Launcher: "slurm", Rank: task, Size: 6, LocalRank: task % 2, LocalSize: 2,
			Node: c.Nodes[task/2], NodeIndex: task / 2, NodeList: c.Nodes[:3], TasksPerNode: []int{2, 2, 2},
			JobID: job, CPUs: fmt.Sprintf("0-%d", c.RealCPUs-1),
		}
		if c.RealCPUs == 1 {
			want.CPUs = "0"
		}
		if c.Binds() {
			masks := strings.Split(strings.TrimPrefix(lines[0], "bind="), ",")
			if len(masks) != 2 {
				t.Fatalf("task %d: SLURM_CPU_BIND_LIST %q", task, lines[0])
			}
			want.CPUs = maskCPUs(t, masks[task%2])
		}
		if !reflect.DeepEqual(got, want) || job == "" {
			t.Errorf("task %d:\n got %+v\nwant %+v", task, got, want)
		}
	}
}

// TestBatchScriptWhoami: the batch script has SLURM_PROCID=0 but is no
// task; whoami says so (launcher none) and names the node it runs on.
func TestBatchScriptWhoami(t *testing.T) {
	c := lab.Require(t, os.Getenv)
	needNodes(t, c, 3)
	bin := qlaunch(t)
	outFile := bins.dir + "/" + jobName(t) + ".out"
	_, err := sbatchWait(t, 60*time.Second, cleanEnv(), bins.dir, "-N3", "-n6", "-o", outFile,
		"--wrap", bin+" whoami --format json")
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(outFile)
	if err != nil {
		t.Fatal(err)
	}
	var got whoami
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatalf("%v in %q", err, b)
	}
	want := whoami{Launcher: "none", Size: 1, LocalSize: 1, Node: c.Nodes[0], NodeList: c.Nodes[:1],
		TasksPerNode: []int{1}, JobID: got.JobID, CPUs: got.CPUs}
	if !reflect.DeepEqual(got, want) || got.JobID == "" {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
}
