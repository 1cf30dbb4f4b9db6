package cli

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/qlaunch/qlaunch/topology"
)

// The job scripts the server submits for [alloc]: sbatch or qsub of a job
// whose ranks join the runtime of the address file (absolute paths), with
// the table's partition or queue, walltime, account and drain lead, and
// the submit command's options (the output file first, then the table's).
func TestAllocScript(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		table     string
		file      string
		wantOpts  string
		wantLines []string
	}{
		{
			table: "scheduler = \"slurm\"\npartition = \"debug\"\nnodes = 2\nwalltime = \"30m\"\naccount = \"p1\"\ndrain_lead = \"45s\"\noptions = [\"--qos=low\"]\nqlaunch = \"/opt/q\"\n",
			file:  "alloc.sbatch", wantOpts: "--output=" + dir + "/alloc-%j.out --qos=low",
			wantLines: []string{"#SBATCH --job-name=qlaunch-alloc", "#SBATCH --nodes=2", "#SBATCH --ntasks=4", "#SBATCH --signal=TERM@45",
				"#SBATCH --time=00:30:00", "#SBATCH --account=p1", "#SBATCH --partition=debug", "QLAUNCH=/opt/q",
				"ADDRESS_FILE=" + dir + "/addr", `--join --address-file "$ADDRESS_FILE" &`},
		},
		{
			table: "scheduler = \"pbs\"\nqueue = \"workq\"\nwalltime = \"1h\"\ndrain_lead = \"2m\"\noptions = [\"-l\", \"place=pack\"]\nqlaunch = \"/opt/q\"\n",
			file:  "alloc.pbs", wantOpts: "-j oe -o " + dir + "/ -l place=pack",
			wantLines: []string{"#PBS -N qlaunch-alloc", "#PBS -l select=1:mpiprocs=2", "#PBS -l walltime=01:00:00", "#PBS -q workq",
				"QLAUNCH=/opt/q", "(sleep 3480 && kill -TERM \"$ranks\" 2>/dev/null) &", `--join --address-file "$ADDRESS_FILE" &`},
		},
	} {
		text := "[workers]\nranks_per_node = 1\n[alloc]\n" + c.table
		topo := filepath.Join(dir, "job.toml")
		if err := os.WriteFile(topo, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		top, err := topology.Load(topo)
		if err != nil {
			t.Fatal(err)
		}
		path, opts, err := allocScript(top, topo, filepath.Join(dir, "addr"))
		if err != nil {
			t.Fatal(err)
		}
		if path != filepath.Join(dir, c.file) || strings.Join(opts, " ") != c.wantOpts {
			t.Errorf("script %s, options %q; want %s, %q", path, opts, c.file, c.wantOpts)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range append(c.wantLines, "TOPOLOGY="+topo) {
			if !strings.Contains(string(b), l) {
				t.Errorf("%s lacks %q:\n%s", c.file, l, b)
			}
		}
		if out, err := exec.Command("bash", "-n", path).CombinedOutput(); err != nil {
			t.Errorf("bash -n %s: %v %s", c.file, err, out)
		}
	}
}

func TestAllocWithoutAllocator(t *testing.T) {
	dir := t.TempDir()
	addr := filepath.Join(dir, "addr")
	r := e2eRun(t, nil, "", "alloc", "list", "--address-file", addr)
	if r.code != 1 || !strings.Contains(r.stderr, addr+".alloc does not exist") || !strings.Contains(r.stderr, "[alloc] table") {
		t.Fatalf("alloc list with no allocator: %+v", r)
	}
	for _, args := range [][]string{{"alloc"}, {"alloc", "remove"}, {"alloc", "remove", "1;rm"}, {"alloc", "grow"}, {"alloc", "list", "--format", "xml"}} {
		if r := e2eRun(t, nil, "", args...); r.code != 2 {
			t.Errorf("qlaunch %q: %+v, want exit 2", args, r)
		}
	}
}
