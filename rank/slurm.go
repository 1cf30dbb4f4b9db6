package rank

import "github.com/qlaunch/qlaunch/slurm"

// expandHosts expands a SLURM hostlist expression ("n[1-3]").
func expandHosts(expr string) ([]string, error) { return slurm.Expand(expr) }

// parseCounts expands a SLURM_TASKS_PER_NODE-style count list ("2(x3),1").
func parseCounts(s string) ([]int, error) { return slurm.ParseCounts(s) }
