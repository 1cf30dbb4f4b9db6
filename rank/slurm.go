package rank

import "github.com/qlaunch/qlaunch/slurm"

// expandHosts expands a SLURM hostlist expression ("n[1-3]").
func expandHosts(expr string) ([]string, error) { return slurm.Expand(expr) }
