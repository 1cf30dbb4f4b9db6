package pbs

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/qlaunch/qlaunch/jobscript"
)

// ScriptConfig is the batch job Script writes: plain data, filled in by the
// caller (qlaunch script pbs) from a topology.
type ScriptConfig struct {
	Topology     string   // path of the topology file, as the job sees it
	Qlaunch      string   // the qlaunch binary; "" means "qlaunch" from $PATH
	JobName      string   // #PBS -N; "" means "qlaunch"
	Account      string   // #PBS -A, when set
	Queue        string   // #PBS -q, when set
	Time         string   // #PBS -l walltime, when set
	Nodes        int      // chunks of select=
	TasksPerNode int      // mpiprocs= and mpiexec --ppn
	CPUsPerNode  int      // ncpus= of a chunk, when > 0
	GPUsPerNode  int      // ngpus= of a chunk, when > 0
	ReadyTimeout string   // qlaunch wait --timeout; "" means "10m"
	Client       []string // the client command and its arguments
	// MPI is the mpiexec the job starts the ranks with: MPIAuto ("")
	// detects it in the job (mpiexec --version), or one of MPIPALS,
	// MPIOpenMPI, MPIMPICH.
	MPI string
}

// The mpiexec flavours: each says "so many ranks per node, unbound, with
// the job's environment" in its own words.
const (
	MPIAuto    = "auto"    // detected in the job from mpiexec --version
	MPIPALS    = "pals"    // Cray PALS (PBS Pro on HPE Cray EX): --ppn, --cpu-bind none
	MPIOpenMPI = "openmpi" // Open MPI: --map-by ppr:N:node, --bind-to none, -x VAR
	MPIMPICH   = "mpich"   // MPICH's Hydra: -ppn, -bind-to none, -f $PBS_NODEFILE
)

// MPIFlavours lists the values of ScriptConfig.MPI.
var MPIFlavours = []string{MPIAuto, MPIPALS, MPIOpenMPI, MPIMPICH}

// jobVars are the variables every rank needs from the script; PALS and
// Hydra pass the whole environment on, Open MPI only what -x names.
var jobVars = []string{"QLAUNCH_ADDRESS_FILE", "QLAUNCH_SECRET_FILE", "QLAUNCH_ERROR_FILE"}

// mpiexecLine is the command that starts total ranks, perNode per node, of
// the runtime with flavour f, in the background.
func mpiexecLine(f string, total, perNode int) string {
	switch f {
	case MPIOpenMPI:
		x := ""
		for _, v := range jobVars {
			x += " -x " + v
		}
		return fmt.Sprintf("mpiexec -n %d --map-by ppr:%d:node --bind-to none --hostfile \"$PBS_NODEFILE\"%s \"$QLAUNCH\" \"$TOPOLOGY\" &", total, perNode, x)
	case MPIMPICH:
		return fmt.Sprintf("mpiexec -n %d -ppn %d -f \"$PBS_NODEFILE\" -bind-to none \"$QLAUNCH\" \"$TOPOLOGY\" &", total, perNode)
	}
	return fmt.Sprintf("mpiexec -n %d --ppn %d --cpu-bind none \"$QLAUNCH\" \"$TOPOLOGY\" &", total, perNode)
}

// startLines start the runtime with flavour f, detecting it first for
// MPIAuto.
func startLines(f string, total, perNode int) []string {
	head := []string{
		fmt.Sprintf("# Start the runtime: %d rank(s), %d per node; each takes its role from the", total, perNode),
		"# plan. Unbound, every rank sees all the node's CPUs, so server and manager",
		"# ranks are not squeezed onto one core; qlaunch pins worker ranks as the",
		"# topology says.",
	}
	if f != MPIAuto && f != "" {
		return append(head, mpiexecLine(f, total, perNode))
	}
	return append(head,
		"# Which mpiexec this is (Cray PALS, Open MPI or MPICH's Hydra) decides how",
		"# it is told so; QLAUNCH_MPI_FLAVOUR=pals|openmpi|mpich overrides the guess.",
		"mpi=${QLAUNCH_MPI_FLAVOUR:-}",
		"if [ -z \"$mpi\" ]; then",
		"  case \"$(mpiexec --version 2>&1 || true)\" in",
		"  *\"Open MPI\"* | *OpenRTE*) mpi=openmpi ;;",
		"  *HYDRA* | *MPICH*) mpi=mpich ;;",
		"  *) mpi=pals ;;",
		"  esac",
		"fi",
		"case \"$mpi\" in",
		"openmpi) "+mpiexecLine(MPIOpenMPI, total, perNode)+" ;;",
		"mpich) "+mpiexecLine(MPIMPICH, total, perNode)+" ;;",
		"pals) "+mpiexecLine(MPIPALS, total, perNode)+" ;;",
		"*) echo \"qlaunch: QLAUNCH_MPI_FLAVOUR=$mpi: want pals, openmpi or mpich\" >&2; exit 2 ;;",
		"esac",
	)
}

// Script returns a complete, commented qsub script for PBS Pro / OpenPBS
// with Cray PALS, Open MPI or MPICH mpiexec (c.MPI): it starts the qlaunch runtime in the background,
// waits until every rank has joined, runs the client command, stops the
// runtime with SIGINT, waits for it and exits with the client's status.
func Script(c ScriptConfig) (string, error) {
	var errs []error
	if c.Topology == "" {
		errs = append(errs, errors.New("no topology file"))
	}
	if c.Nodes < 1 {
		errs = append(errs, fmt.Errorf("nodes %d: need at least 1", c.Nodes))
	}
	if c.TasksPerNode < 1 || c.CPUsPerNode < 0 || c.GPUsPerNode < 0 {
		errs = append(errs, fmt.Errorf("bad shape: %d tasks, %d CPUs, %d GPUs per node", c.TasksPerNode, c.CPUsPerNode, c.GPUsPerNode))
	}
	if len(c.Client) == 0 {
		errs = append(errs, errors.New("no client command"))
	}
	if c.MPI != "" && !slices.Contains(MPIFlavours, c.MPI) {
		errs = append(errs, fmt.Errorf("mpi %q: want one of %s", c.MPI, strings.Join(MPIFlavours, ", ")))
	}
	for _, v := range []struct{ name, value string }{{"job name", c.JobName}, {"account", c.Account}, {"queue", c.Queue}, {"time", c.Time}} {
		if err := jobscript.CheckWord(v.name, v.value); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return "", errors.Join(errs...)
	}
	name := c.JobName
	if name == "" {
		name = "qlaunch"
	}
	chunk := fmt.Sprintf("select=%d:mpiprocs=%d", c.Nodes, c.TasksPerNode)
	if c.CPUsPerNode > 0 {
		chunk += fmt.Sprintf(":ncpus=%d", c.CPUsPerNode)
	}
	if c.GPUsPerNode > 0 {
		chunk += fmt.Sprintf(":ngpus=%d", c.GPUsPerNode)
	}
	total := c.Nodes * c.TasksPerNode

	var b strings.Builder
	w := func(format string, a ...any) { fmt.Fprintf(&b, format+"\n", a...) }
	w("#!/bin/bash")
	w("# Batch script for a qlaunch job under PBS (mpiexec: %s): start the", flavourName(c.MPI))
	w("# runtime on %d node(s), wait until every rank has joined, run the client,", c.Nodes)
	w("# stop the runtime, exit with the client's status. Submit with: qsub THIS_FILE")
	w("#PBS -N %s", name)
	w("#PBS -l %s", chunk)
	w("# One chunk per node, each node whole: qlaunch pins its worker ranks itself.")
	w("#PBS -l place=scatter:excl")
	if c.Time != "" {
		w("#PBS -l walltime=%s", c.Time)
	}
	if c.Account != "" {
		w("#PBS -A %s", c.Account)
	}
	if c.Queue != "" {
		w("#PBS -q %s", c.Queue)
	}
	w("")
	jobscript.Body{
		Topology: c.Topology, Qlaunch: c.Qlaunch, ReadyTimeout: c.ReadyTimeout, Client: c.Client,
		Setup:    []string{"cd \"${PBS_O_WORKDIR:-$PWD}\""},
		Launcher: "mpiexec",
		JobDir:   "\"$PWD/.qlaunch\"",
		JobID:    "${PBS_JOBID}",
		Interrupt: []string{
			"# mpiexec passes SIGINT on to every rank (Open MPI's ends them with SIGTERM).",
			"kill -INT \"$runtime_pid\" 2>/dev/null || true",
		},
		Start: startLines(c.MPI, total, c.TasksPerNode),
	}.Write(&b)
	return b.String(), nil
}

func flavourName(f string) string {
	switch f {
	case MPIPALS:
		return "Cray PALS"
	case MPIOpenMPI:
		return "Open MPI"
	case MPIMPICH:
		return "MPICH"
	}
	return "Cray PALS, Open MPI or MPICH, detected"
}
