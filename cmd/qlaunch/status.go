package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/qlaunch/qlaunch/launcher/client"

	"github.com/qlaunch/qlaunch/launcher/wire"
)

// cmdStatus prints the runtime's tree.
func cmdStatus(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet(e, "status", "status [--ip ADDR] [--watch D] [--format text|json]")
	var cf clientFlags
	cf.add(fs)
	format := fs.String("format", "text", "output format: text or json")
	watch := fs.Duration("watch", 0, "print the status again every D until interrupted (e.g. 1s)")
	if err := parseFlags(e, fs, args); err != nil {
		return err
	}
	if *format != "text" && *format != "json" {
		return usagef("status: unknown format %q", *format)
	}
	c, err := cf.dial(ctx, e, nil)
	if err != nil {
		return err
	}
	defer c.Close()
	if *watch <= 0 {
		return printStatus(ctx, e, c, *format)
	}
	tick := time.NewTicker(*watch)
	defer tick.Stop()
	for {
		if err := printStatus(ctx, e, c, *format); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		fmt.Fprintln(e.stdout)
	}
}

func printStatus(ctx context.Context, e *env, c *client.Client, format string) error {
	ranks, err := c.Status(ctx)
	if err != nil {
		return err
	}
	if format == "json" {
		type line struct {
			Rank   int    `json:"rank"`
			Parent int    `json:"parent"`
			Depth  int    `json:"depth"`
			Role   string `json:"role"`
			Host   string `json:"host"`
			Slots  int    `json:"slots"`
			Busy   int    `json:"busy"`
			Idle   int    `json:"idle"`
			Queued int    `json:"queued"`
			Done   uint64 `json:"done"`
		}
		out := struct {
			Ranks []line `json:"ranks"`
		}{Ranks: []line{}}
		for _, r := range ranks {
			out.Ranks = append(out.Ranks, line{r.Rank, r.Parent, r.Depth, r.Role, r.Host, r.Slots, r.Busy, r.Slots - r.Busy, r.Queued, r.Done})
		}
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "RANK\tPARENT\tROLE\tHOST\tSLOTS\tBUSY\tIDLE\tQUEUED\tDONE")
	printTree(tw, ranks)
	return tw.Flush()
}

// printTree prints the ranks in the order the tree answered (each rank
// followed by its subtree), indented by depth.
func printTree(tw *tabwriter.Writer, ranks []wire.RankStatus) {
	for _, r := range ranks {
		indent := strings.Repeat("  ", r.Depth)
		slots, busy, idle := "-", "-", "-"
		if r.Role == "worker" {
			slots, busy, idle = fmt.Sprint(r.Slots), fmt.Sprint(r.Busy), fmt.Sprint(r.Slots-r.Busy)
		}
		fmt.Fprintf(tw, "%s%d\t%d\t%s\t%s\t%s\t%s\t%s\t%d\t%d\n", indent, r.Rank, r.Parent, r.Role, r.Host, slots, busy, idle, r.Queued, r.Done)
	}
}
