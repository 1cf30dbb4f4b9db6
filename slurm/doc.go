// Package slurm reads and writes what SLURM gives a job: hostlist
// expressions, task and CPU count lists, and the environment of a task;
// and it writes the sbatch script of a qlaunch job.
//
// # Hostlists
//
// Expand, Count and Compress follow SLURM's own hostlist code for a
// one-dimensional cluster, as `scontrol show hostnames` and
// `scontrol show hostlist` use it:
//
//   - An expression is split on ',', ' ', '\t' and '\n', except between
//     '[' and the first ']' after it. Empty tokens are skipped, so ""
//     and ",,," are empty lists.
//   - A token without '[' is one host, whatever it contains ("n1-3]").
//   - Otherwise the last '[' opens a range list and the first ']' after
//     it closes it; a missing ']' is an error. Text after that ']' is a
//     suffix ("gpu[1-2]-ib" → gpu1-ib, gpu2-ib). Earlier "[...]" groups
//     of the prefix are expanded too ("rack[1-2]-n[01-02]"); a '[' of
//     the prefix without a ']' after it is kept as text.
//   - A range list is "N" or "N-M" elements separated by ','; every host
//     of an element is zero-padded to the width of its low bound as
//     written ("n[1-010]" → n1…n10, "n[001-10]" → n001…n010). Elements
//     expand in the written order; nothing is sorted or de-duplicated.
//   - Several groups give every combination. The last group varies
//     fastest; the others nest with the second-to-last outermost, then
//     leftwards, which is SLURM's recursion order: for
//     "a[1-2]b[1-2]c[1-2]" b is outermost, then a, then c.
//   - An element may hold at most MaxRange (65536) hosts, and so may
//     each group before the last in total. The total is not limited by
//     SLURM; Expand refuses more than MaxExpand hosts, Count does not.
//
// Where SLURM's C code accepts input by accident this package rejects it
// with a *SyntaxError naming the offending part: junk after a low bound
// ("n[1a-3]"), signs or spaces ("n[+1-3]"), a missing high bound
// ("n[1-]"), bounds of 2^64-1 and more, and bad groups in a prefix (which
// SLURM silently drops). SLURM 22.05 also rejects any suffix after ']';
// later versions, and this package, accept it.
//
// Compress, CompressSorted and CompressUnique write the ranged form of a
// host list as hostlist_ranged_string does after hostlist_push_host,
// hostlist_sort and hostlist_uniq respectively. Only the trailing number
// of each name is ranged, so Expand(Compress(hosts)) == hosts for every
// list of names free of '[', ']', ',' and white space.
//
// # Count lists
//
// ParseCounts and FormatCounts read and write SLURM_TASKS_PER_NODE and
// SLURM_JOB_CPUS_PER_NODE ("2(x3),1" is 2,2,2,1), with the strict grammar
// of SLURM's own consumers; ParseRuns keeps the run-length form.
//
// # Environment
//
// StepFromEnv reads the SLURM identity of this process through a getenv
// function, and tells an srun task from a batch script or an allocation
// shell.
//
// # Batch scripts
//
// Script writes a commented sbatch script that starts the runtime's ranks
// with srun in the background, waits until all have joined, runs the
// client command and stops the runtime; package jobscript writes the part
// that is the same under every scheduler.
package slurm
