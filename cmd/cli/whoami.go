package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/qlaunch/qlaunch/rank"
	"github.com/qlaunch/qlaunch/topology"
)

// whoami is what `qlaunch whoami` prints.
type whoami struct {
	Launcher     rank.Launcher `json:"launcher"`
	Rank         int           `json:"rank"`
	Size         int           `json:"size"`
	LocalRank    int           `json:"local_rank"`
	LocalSize    int           `json:"local_size"`
	Node         string        `json:"node"`
	NodeIndex    int           `json:"node_index"`
	NodeList     []string      `json:"node_list"`
	TasksPerNode []int         `json:"tasks_per_node"`
	JobID        string        `json:"job_id"`
	CPUs         string        `json:"cpus"`
}

func cmdWhoami(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet(e, "whoami", "whoami [--format text|json]\n\n"+
		"Print the launcher and the identity this process detects in its environment\n"+
		"(rank, size, local rank, node, node list, tasks per node, job id) and its CPU\n"+
		"affinity, one field per line: run it under srun, mpirun or mpiexec to see what\n"+
		"qlaunch TOPOLOGY.toml would see.")
	format := fs.String("format", "text", "output `format`: text or json")
	if err := parseFlags(e, fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("whoami takes no arguments, got %q", fs.Args())
	}
	if *format != "text" && *format != "json" {
		return usagef("--format %q: want text or json", *format)
	}
	info, err := rank.Detect(e.getenv)
	if err != nil {
		return fmt.Errorf("whoami: %w", err)
	}
	cpus, err := rank.Affinity()
	if err != nil {
		return fmt.Errorf("whoami: %w", err)
	}
	w := whoami{
		Launcher: info.Launcher, Rank: info.Rank, Size: info.Size,
		LocalRank: info.LocalRank, LocalSize: info.LocalSize,
		Node: info.Node, NodeIndex: info.NodeIndex, NodeList: info.NodeList,
		TasksPerNode: info.TasksPerNode, JobID: info.JobID, CPUs: topology.NewCPUSet(cpus...).String(),
	}
	if *format == "json" {
		enc := json.NewEncoder(e.stdout)
		return enc.Encode(w)
	}
	tasks := "unknown"
	if w.TasksPerNode != nil {
		tasks = joinInts(w.TasksPerNode)
	}
	for _, f := range [][2]string{
		{"launcher", string(w.Launcher)},
		{"rank", strconv.Itoa(w.Rank)},
		{"size", strconv.Itoa(w.Size)},
		{"local rank", strconv.Itoa(w.LocalRank)},
		{"local size", strconv.Itoa(w.LocalSize)},
		{"node", w.Node},
		{"node index", strconv.Itoa(w.NodeIndex)},
		{"node list", strings.Join(w.NodeList, ",")},
		{"tasks per node", tasks},
		{"job id", dashIfEmpty(w.JobID)},
		{"cpu affinity", w.CPUs},
	} {
		fmt.Fprintf(e.stdout, "%-15s %s\n", f[0]+":", f[1])
	}
	return nil
}

func dashIfEmpty(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func joinInts(xs []int) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = strconv.Itoa(x)
	}
	return strings.Join(s, ",")
}
