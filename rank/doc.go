// Package rank tells a process who it is in a parallel job: which launcher
// started it (Open MPI's mpirun, a PMIx or PMI server, MPICH's Hydra, Cray
// PALS, a SLURM step, PBS, or none), its rank and the job's size, its rank
// and the task count on its node, the node's name and the step's node list.
//
// Detect reads only the environment, through a getenv function, so tests
// feed it the exact environments launchers set (see detect_test.go). It
// handles the traps of real launchers:
//
//   - a SLURM batch script has SLURM_PROCID=0 but is not a task: a task of
//     a step has SLURM_STEP_ID;
//   - under salloc or sbatch, mpirun and mpiexec start their daemons with
//     srun, so the SLURM step variables describe the daemons (one per node),
//     not the MPI ranks: the rank comes from the MPI launcher and only the
//     node comes from SLURM;
//   - the node is SLURMD_NODENAME, or the SLURM_NODEID'th entry of the
//     step's node list, never os.Hostname(): several SLURM nodes may share
//     one host (as in the project's lab), and host names need not match
//     the scheduler's node names.
//
// Pin and Affinity set and read the CPUs of the process (sched_setaffinity
// on every thread, GOMAXPROCS to match).
//
// With the build tag "mpi" (and cgo) StartMPI initialises MPI through a
// minimal own binding (Open MPI through pkg-config ompi-c; add the tag
// "mpich" for MPICH), so that ranks can exchange fixed-size records with
// Allgather: each rank listens on port 0 and still finds its parent.
// CheckMPISize refuses an MPI world whose size differs from the launcher's
// task count, which is what an MPI library under a foreign PMI gives (MPICH
// under srun --mpi=pmix runs N singletons of size 1). Without the tag the
// package is pure Go and StartMPI returns ErrNoMPI.
package rank
