package alloc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/qlaunch/qlaunch/launcher/alloc/decide"
)

// Scheduler is a batch scheduler, driven through its own commands.
type Scheduler interface {
	// Name is "slurm" or "pbs".
	Name() string
	// Submit submits the job script at path with the extra options and
	// returns the job's id as its ranks will report it.
	Submit(ctx context.Context, path string, options []string) (string, error)
	// Jobs returns the scheduler's word on each of ids it still lists.
	Jobs(ctx context.Context, ids []string) (map[string]decide.Job, error)
	// Cancel cancels the jobs.
	Cancel(ctx context.Context, ids []string) error
}

// Runner runs a command and returns its stdout; a failure's error holds
// its stderr. Command is the default; tests of the PBS path give their
// own PATH instead.
type Runner func(ctx context.Context, name string, args ...string) (stdout string, err error)

// commandTimeout bounds one scheduler command.
const commandTimeout = 30 * time.Second

// Command runs name with args (at most 30 s).
func Command(ctx context.Context, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, commandTimeout)
	defer cancel()
	c := exec.CommandContext(ctx, name, args...)
	c.Env = SubmitEnviron(os.Environ())
	var out, errb bytes.Buffer
	c.Stdout, c.Stderr = &out, &errb
	if err := c.Run(); err != nil {
		msg := strings.TrimSpace(errb.String())
		if msg == "" {
			msg = strings.TrimSpace(out.String())
		}
		return out.String(), &CommandError{Command: name + " " + strings.Join(args, " "), Err: err, Stderr: msg}
	}
	return out.String(), nil
}

// SubmitEnviron is env without the variables the server's own job and
// step set (SLURM_*, SBATCH_*, SRUN_*, PBS_*, PMI*, OMPI_*, PALS_*), but
// with SLURM_CONF: the server runs inside a job, and a job it submits
// must not inherit that job's task counts, CPU binding or step.
func SubmitEnviron(env []string) []string {
	out := make([]string, 0, len(env))
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		if k != "SLURM_CONF" && hasAnyPrefix(k, "SLURM_", "SLURMD_", "SBATCH_", "SRUN_", "SALLOC_", "PBS_", "PMI_", "PMIX_", "OMPI_", "PALS_") {
			continue
		}
		out = append(out, kv)
	}
	return out
}

func hasAnyPrefix(s string, prefixes ...string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

// CommandError is a scheduler command that failed.
type CommandError struct {
	Command string
	Err     error
	Stderr  string
}

func (e *CommandError) Error() string {
	if e.Stderr != "" {
		return fmt.Sprintf("%s: %v: %s", e.Command, e.Err, e.Stderr)
	}
	return fmt.Sprintf("%s: %v", e.Command, e.Err)
}

func (e *CommandError) Unwrap() error { return e.Err }

// Slurm drives SLURM: sbatch, squeue, scancel.
type Slurm struct{ Run Runner }

// Name is "slurm".
func (Slurm) Name() string { return "slurm" }

func run(r Runner) Runner {
	if r == nil {
		return Command
	}
	return r
}

// Submit runs sbatch --parsable OPTIONS PATH; the id is the job number
// (without a ";cluster" suffix).
func (s Slurm) Submit(ctx context.Context, path string, options []string) (string, error) {
	args := append(append([]string{"--parsable"}, options...), path)
	out, err := run(s.Run)(ctx, "sbatch", args...)
	if err != nil {
		return "", err
	}
	id, _, _ := strings.Cut(strings.TrimSpace(out), ";")
	if id == "" || strings.ContainsAny(id, " \n") {
		return "", fmt.Errorf("sbatch --parsable printed %q, not a job id", out)
	}
	return id, nil
}

// Jobs runs squeue for this user's jobs in every state (squeue -j of one
// id the controller forgot is an error; of all of them is not).
func (s Slurm) Jobs(ctx context.Context, ids []string) (map[string]decide.Job, error) {
	out, err := run(s.Run)(ctx, "squeue", "--me", "-h", "-t", "all", "-o", "%i|%T")
	if err != nil {
		return nil, err
	}
	return ParseSqueue(out, ids), nil
}

// ParseSqueue reads squeue -o "%i|%T" lines, keeping the ids asked for.
func ParseSqueue(out string, ids []string) map[string]decide.Job {
	want := make(map[string]bool, len(ids))
	for _, id := range ids {
		want[id] = true
	}
	jobs := make(map[string]decide.Job)
	for _, l := range strings.Split(out, "\n") {
		id, state, ok := strings.Cut(strings.TrimSpace(l), "|")
		if !ok || !want[id] {
			continue
		}
		jobs[id] = decide.Job{State: slurmState(state), Detail: state}
	}
	return jobs
}

func slurmState(s string) decide.JobState {
	switch s {
	case "RUNNING", "COMPLETING", "SIGNALING", "STAGE_OUT", "SUSPENDED", "STOPPED":
		return decide.JobRunning
	case "COMPLETED", "CANCELLED", "FAILED", "TIMEOUT", "NODE_FAIL", "PREEMPTED", "BOOT_FAIL", "DEADLINE",
		"OUT_OF_MEMORY", "SPECIAL_EXIT", "REVOKED":
		return decide.JobEnded
	}
	return decide.JobPending // PENDING, CONFIGURING, REQUEUED, RESIZING, …
}

// Cancel runs scancel IDS.
func (s Slurm) Cancel(ctx context.Context, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	_, err := run(s.Run)(ctx, "scancel", ids...)
	return err
}

// PBS drives PBS Pro / OpenPBS: qsub, qstat, qdel.
type PBS struct{ Run Runner }

// Name is "pbs".
func (PBS) Name() string { return "pbs" }

// Submit runs qsub OPTIONS PATH; the id is what qsub prints
// ("123.server", as PBS_JOBID gives it to the ranks).
func (p PBS) Submit(ctx context.Context, path string, options []string) (string, error) {
	out, err := run(p.Run)(ctx, "qsub", append(append([]string{}, options...), path)...)
	if err != nil {
		return "", err
	}
	id := strings.TrimSpace(out)
	if id == "" || strings.ContainsAny(id, " \n") {
		return "", fmt.Errorf("qsub printed %q, not a job id", out)
	}
	return id, nil
}

// Jobs runs qstat -x IDS (finished jobs too, where the server keeps
// history); a job qstat does not know has ended.
func (p PBS) Jobs(ctx context.Context, ids []string) (map[string]decide.Job, error) {
	if len(ids) == 0 {
		return map[string]decide.Job{}, nil
	}
	out, err := run(p.Run)(ctx, "qstat", append([]string{"-x"}, ids...)...)
	var ce *CommandError
	if err != nil && (ctx.Err() != nil || !(errors.As(err, &ce) && onlyUnknownJobs(ce.Stderr))) {
		return nil, err
	}
	return ParseQstat(out, ids), nil
}

// onlyUnknownJobs reports whether qstat's complaints are all about jobs
// it no longer knows (it exits non-zero then, listing the others).
func onlyUnknownJobs(stderr string) bool {
	unknown := false
	for _, l := range strings.Split(strings.TrimSpace(stderr), "\n") {
		if !strings.Contains(l, "Unknown Job Id") && !strings.Contains(l, "Job has finished") {
			return false
		}
		unknown = true
	}
	return unknown
}

// ParseQstat reads qstat's default table (Job id, Name, User, Time Use,
// S, Queue), keeping the ids asked for. qstat shortens a long id and
// marks it with '*': such a row matches the id it begins.
func ParseQstat(out string, ids []string) map[string]decide.Job {
	jobs := make(map[string]decide.Job)
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		if len(f) < 6 || f[0] == "Job" || strings.HasPrefix(f[0], "---") {
			continue
		}
		state := f[len(f)-2]
		short, cut := strings.CutSuffix(f[0], "*")
		for _, id := range ids {
			if f[0] == id || cut && strings.HasPrefix(id, short) {
				jobs[id] = decide.Job{State: pbsState(state), Detail: state}
			}
		}
	}
	return jobs
}

func pbsState(s string) decide.JobState {
	switch s {
	case "R", "E", "B", "S", "U":
		return decide.JobRunning
	case "F", "X", "M":
		return decide.JobEnded
	}
	return decide.JobPending // Q, H, W, T
}

// Cancel runs qdel IDS.
func (p PBS) Cancel(ctx context.Context, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	_, err := run(p.Run)(ctx, "qdel", ids...)
	return err
}
