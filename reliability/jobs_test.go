package reliability_test

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/qlaunch/qlaunch/kernels"
	"github.com/qlaunch/qlaunch/launcher"
	"github.com/qlaunch/qlaunch/launcher/client"
	"github.com/qlaunch/qlaunch/launcher/wire"
	"github.com/qlaunch/qlaunch/reliability"
)

// inFolder selects the processes whose working directory is dir.
func inFolder(dir string) func(reliability.Process) bool {
	return func(p reliability.Process) bool {
		cwd, err := os.Readlink("/proc/" + strconv.Itoa(p.PID) + "/cwd")
		return err == nil && cwd == dir
	}
}

// folderJob is one scheduler job's runtime (qlaunch manager -n 1 and
// qlaunch server) started in a shared folder with the job's environment.
type folderJob struct {
	id, addr string
	env      []string
	server   *proc
	procs    []*proc
}

// TestJobsOfOneUserIsolated: two jobs of one user (SLURM_JOB_ID 101 and
// 102) start their runtimes in the same folder with no secret named, as a
// batch script does. Each takes its own secret (.qlaunch/job-<id>/secret,
// in a directory of mode 0700), never the user's long-lived one. Each
// job's client runs its task in its own job (the task echoes the job id
// its worker rank runs in); a client of one job given the other job's
// address is refused (authentication failed), directly and through the
// folder's address file, which both runtimes write.
func TestJobsOfOneUserIsolated(t *testing.T) {
	t.Parallel()
	rec := newRecord(t, "two jobs of one user in one folder (SLURM_JOB_ID 101, 102)")
	dir := t.TempDir()
	home := filepath.Join(dir, "home")
	t.Cleanup(func() {
		for _, p := range reliability.Processes(inFolder(dir)) {
			syscall.Kill(p.PID, syscall.SIGKILL)
		}
	})
	start := func(id string) *folderJob {
		j := &folderJob{id: id, env: []string{"HOME=" + home, "XDG_CONFIG_HOME=", "QLAUNCH_SECRET_FILE=", "QLAUNCH_ADDR=",
			"QLAUNCH_ADDRESS_FILE=", "PBS_JOBID=", "SLURM_JOB_ID=" + id}}
		mport, sport := freePort(t), freePort(t)
		j.addr = hostPort(sport)
		j.procs = append(j.procs, startProcIn(t, dir, j.env, "manager-"+id, qlaunchBin, "manager", "-n", "1",
			"-p", strconv.Itoa(mport), "-w", strconv.Itoa(freePort(t)), "-i", "127.0.0.1"))
		j.server = startProcIn(t, dir, j.env, "server-"+id, qlaunchBin, "server", "-p", strconv.Itoa(sport), "-i", "127.0.0.1",
			"--ranks", "3", hostPort(mport))
		j.procs = append(j.procs, j.server)
		return j
	}
	// cli runs qlaunch in the folder as a client of job j.
	cli := func(j *folderJob, args ...string) (string, error) {
		ctx, cancel := context.WithTimeout(t.Context(), startBound)
		defer cancel()
		cmd := exec.CommandContext(ctx, qlaunchBin, args...)
		cmd.Dir, cmd.Env = dir, append(os.Environ(), j.env...)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	jobs := []*folderJob{start("101"), start("102")}
	for _, j := range jobs {
		if out, err := cli(j, "wait", "--ip", j.addr, "--ranks", "3", "--timeout", "25s"); err != nil {
			t.Fatalf("job %s: qlaunch wait: %v\n%s\n%s\n%s", j.id, err, out, j.procs[0].out, j.server.out)
		}
	}
	secrets := map[string]wire.Secret{}
	for _, j := range jobs {
		jd := filepath.Join(dir, ".qlaunch", wire.JobDirPrefix+j.id)
		if fi, err := os.Stat(jd); err != nil || fi.Mode().Perm() != 0o700 {
			t.Fatalf("job directory %s: %v, %v; want mode 0700", jd, fi, err)
		}
		s, err := wire.LoadSecretFile(filepath.Join(jd, "secret"))
		if err != nil {
			t.Fatalf("job %s's secret: %v", j.id, err)
		}
		secrets[j.id] = s
	}
	if _, err := os.Stat(filepath.Join(home, ".config", "qlaunch", "secret")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the user's long-lived secret was created or used under a scheduler: %v", err)
	}
	// Each job serves its own client, and the task runs in that job.
	for _, j := range jobs {
		ctx, cancel := context.WithTimeout(t.Context(), startBound)
		c, err := client.Dial(ctx, j.addr, client.Options{Secret: secrets[j.id], Host: "job-" + j.id})
		cancel()
		if err != nil {
			t.Fatalf("job %s's client to its own runtime: %v", j.id, err)
		}
		v, err := resultOf(t, c, submit(t, c, kernels.Task{Kernel: "exec", Args: []string{"--", "sh", "-c", "echo $SLURM_JOB_ID"}}), startBound)
		c.Close()
		if err != nil || strings.TrimSpace(string(v)) != j.id {
			t.Errorf("job %s's task: %q, %v; want it run in job %s", j.id, v, err, j.id)
		}
	}
	// A client of one job given the other's address is refused.
	refused := 0
	for i, j := range jobs {
		other := jobs[1-i]
		ctx, cancel := context.WithTimeout(t.Context(), startBound)
		c, err := client.Dial(ctx, other.addr, client.Options{Secret: secrets[j.id], Host: "job-" + j.id})
		cancel()
		if err == nil {
			c.Close()
			t.Errorf("job %s's client authenticated to job %s's runtime", j.id, other.id)
			continue
		}
		if !errors.Is(err, wire.ErrAuth) {
			t.Errorf("job %s's client to job %s's runtime: %v, want an authentication error", j.id, other.id, err)
			continue
		}
		refused++
		if out, err := cli(j, "status", "--ip", other.addr); err == nil || !strings.Contains(out, "authentication failed") {
			t.Errorf("qlaunch status of job %s at job %s's address: %v\n%s; want refused (authentication failed)", j.id, other.id, err, out)
		} else {
			refused++
		}
	}
	// Both wrote the folder's address file; through it, a client of the
	// job that wrote it last is served and one of the other job refused.
	ar, err := launcher.ReadAddressRecord(filepath.Join(dir, ".qlaunch", "addr"))
	if err != nil || (ar.Job != "101" && ar.Job != "102") {
		t.Fatalf("the folder's address file: %+v, %v; want one of the two jobs'", ar, err)
	}
	for _, j := range jobs {
		out, err := cli(j, "status")
		switch {
		case j.id == ar.Job && err != nil:
			t.Errorf("job %s's qlaunch status through the address file its runtime wrote: %v\n%s", j.id, err, out)
		case j.id != ar.Job && (err == nil || !strings.Contains(out, "authentication failed")):
			t.Errorf("job %s's qlaunch status through job %s's address file: %v\n%s; want refused (authentication failed)", j.id, ar.Job, err, out)
		case j.id != ar.Job:
			refused++
		}
	}
	// Both runtimes stop on SIGINT and leave nothing in the folder.
	for _, j := range jobs {
		j.server.cmd.Process.Signal(syscall.SIGINT)
	}
	for _, j := range jobs {
		for _, p := range j.procs {
			if !p.exited(exitBound) {
				t.Errorf("job %s: %s still runs %v after SIGINT to its server", j.id, p.name, exitBound)
			}
		}
	}
	left := leftIn(dir, exitBound)
	if len(left) > 0 {
		t.Errorf("processes left in the folder: %v", left)
	}
	rec.Left = strconv.Itoa(len(left))
	rec.Note = "each job ran its own client's task (it echoed its job id); " + strconv.Itoa(refused) +
		" of 5 cross-job attempts refused (authentication failed: 2 clients, 2 qlaunch status, 1 through the shared address file); " +
		"secrets in .qlaunch/job-<id>/ (0700); no user secret created"
}

// leftIn waits up to bound for every process working in dir to exit; it
// returns those still there.
func leftIn(dir string, bound time.Duration) []reliability.Process {
	deadline := time.Now().Add(bound)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		left := reliability.Processes(inFolder(dir))
		if len(left) == 0 || time.Now().After(deadline) {
			return left
		}
		<-tick.C
	}
}
