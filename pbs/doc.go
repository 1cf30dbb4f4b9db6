// Package pbs reads what PBS Pro, OpenPBS, Torque and Cray PALS give a job:
// the $PBS_NODEFILE and the environment of a rank; and it writes the qsub
// script of a qlaunch job.
//
// # Node file
//
// $PBS_NODEFILE holds one host name per line and one line per MPI slot:
// a chunk with mpiprocs=K writes its host K times, consecutively, in chunk
// order. ParseNodefile reads it back as the hosts in first-seen order and
// the number of lines of each. A host that appears again later, not next
// to its earlier lines, is counted into its first entry: the node list
// stays a list of distinct nodes, and the slot total stays the line count.
// Blank lines and lines starting with '#' are skipped, CRLF line ends are
// accepted, and names are opaque (short names and FQDNs alike).
//
// # Environment
//
// JobFromEnv reads the job variables of the PBS MoM (PBS_JOBID,
// PBS_NODEFILE, PBS_NODENUM, PBS_TASKNUM, PBS_O_WORKDIR, PBS_ENVIRONMENT,
// …) and Torque's extras (PBS_NUM_NODES, PBS_NUM_PPN, PBS_NP,
// PBS_VNODENUM), which OpenPBS never sets. PALSFromEnv reads the rank
// identity that Cray PALS (mpiexec under PBS Pro) gives each rank:
// PALS_RANKID, PALS_NODEID, PALS_LOCAL_RANKID, PALS_LOCAL_SIZE, PALS_DEPTH
// and the PMI_RANK, PMI_SIZE, PMI_LOCAL_RANK and PMI_LOCAL_SIZE it sets
// alongside. Both read only through the getenv function they are given.
//
// # Batch scripts
//
// Script writes a commented qsub script for PBS Pro or OpenPBS that starts
// the runtime's ranks with Cray PALS mpiexec in the background, waits until
// all have joined, runs the client command and stops the runtime; package
// jobscript writes the part that is the same under every scheduler.
package pbs
