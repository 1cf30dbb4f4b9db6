package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/qlaunch/qlaunch/launcher"
	"github.com/qlaunch/qlaunch/launcher/alloc"
	"github.com/qlaunch/qlaunch/launcher/alloc/decide"
	"github.com/qlaunch/qlaunch/launcher/wire"
	"github.com/qlaunch/qlaunch/pbs"
	"github.com/qlaunch/qlaunch/slurm"
	"github.com/qlaunch/qlaunch/topology"
)

// cmdAlloc is qlaunch alloc list|add|remove: the allocations the server
// of a topology with an [alloc] table submitted, through its control link.
func cmdAlloc(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet(e, "alloc", "alloc [--address-file F] [--secret-file F] [--format table|json] list|add|remove JOBID\n\n"+
		"The allocations a server whose topology has an [alloc] table submitted by itself\n"+
		"(sbatch or qsub of a job whose ranks join it): list shows each one's job id,\n"+
		"phase (pending, running, joined, draining, ended), ranks in the tree and times;\n"+
		"add submits one now (up to alloc.max_allocations); remove JOBID drains a joined\n"+
		"one (its ranks finish their tasks and leave, the job ends) or cancels one that\n"+
		"has not joined yet.")
	addrFile := fs.String("address-file", "", "the runtime's address file (default: $QLAUNCH_ADDRESS_FILE, else "+topology.DefaultAddressFile+")")
	secretFile := fs.String("secret-file", "", "job secret file (default: the one the address file records)")
	format := fs.String("format", "table", "list: table or json")
	pos, err := parseInterleaved(e, fs, args)
	if err != nil {
		return err
	}
	var req string
	switch {
	case len(pos) == 1 && (pos[0] == "list" || pos[0] == "add"):
		req = pos[0]
	case len(pos) == 2 && pos[0] == "remove":
		req = "remove " + pos[1]
	default:
		return usagef("alloc: want list, add or remove JOBID, got %q", pos)
	}
	if *format != "table" && *format != "json" {
		return usagef("alloc: --format %q: want table or json", *format)
	}
	if _, err := alloc.ParseRequest(req); err != nil {
		return usagef("alloc: %v", err)
	}
	path := addressFile(e, *addrFile, nil)
	rec, err := launcher.ReadAddressRecord(alloc.ControlFile(path))
	if errors.Is(err, iofs.ErrNotExist) {
		return fmt.Errorf("alloc: no allocator: %s does not exist (is the runtime of %s running, and does its topology have an [alloc] table?)", alloc.ControlFile(path), path)
	}
	if err != nil {
		return fmt.Errorf("alloc: %w", err)
	}
	sf := *secretFile
	if sf == "" {
		sf = rec.SecretFile
	}
	s, err := clientSecret(e, sf)
	if err != nil {
		return err
	}
	out, err := alloc.Ask(ctx, rec.Addr, s, req)
	if err != nil {
		return fmt.Errorf("alloc %s: %w", req, err)
	}
	if req != "list" {
		_, err = fmt.Fprintln(e.stdout, out)
		return err
	}
	if *format == "json" {
		_, err = fmt.Fprintln(e.stdout, out)
		return err
	}
	snap, err := alloc.DecodeSnapshot(out)
	if err != nil {
		return err
	}
	writeAllocTable(e.stdout, snap)
	return nil
}

// writeAllocations prints the allocations of the server of addrFile to w
// after the report of command cmd (status, wait), when it runs an
// allocator; nothing otherwise.
func writeAllocations(ctx context.Context, e *env, w io.Writer, cmd, addrFile, secretFile string) {
	rec, err := launcher.ReadAddressRecord(alloc.ControlFile(addrFile))
	if err != nil {
		return
	}
	if secretFile == "" {
		secretFile = rec.SecretFile
	}
	s, err := clientSecret(e, secretFile)
	if err == nil {
		var out string
		if out, err = alloc.Ask(ctx, rec.Addr, s, "list"); err == nil {
			var snap alloc.Snapshot
			if snap, err = alloc.DecodeSnapshot(out); err == nil {
				fmt.Fprintln(w)
				writeAllocTable(w, snap)
				return
			}
		}
	}
	fmt.Fprintf(e.stderr, "qlaunch: %s: the allocations: %v\n", cmd, err)
}

// writeAllocTable prints the allocator's list as a table.
func writeAllocTable(w io.Writer, s alloc.Snapshot) {
	fmt.Fprintf(w, "scheduler %s, backlog %d tasks\n", s.Scheduler, s.Backlog)
	if s.Error != "" {
		fmt.Fprintf(w, "stopped: %s\n", s.Error)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "JOB\tPHASE\tRANKS\tSUBMITTED\tJOINED AFTER\tWHY")
	for _, a := range s.Allocations {
		joined := "-"
		if !a.Joined.IsZero() {
			joined = a.Joined.Sub(a.Submitted).Round(time.Millisecond).String()
		}
		how := ""
		if a.Manual {
			how = "(by hand) "
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s%s\n", a.ID, a.Phase, a.Ranks, a.Submitted.Format("15:04:05.000"), joined, how, a.Reason)
	}
	tw.Flush()
}

// allocScript writes the job script of an automatic allocation for the
// topology at path, whose ranks join the runtime of addrFile, and
// returns its path and the submit command's options (the output file
// first, then alloc.options).
func allocScript(t *topology.Topology, path, addrFile string) (string, []string, error) {
	a := t.Alloc
	qlaunch := a.Qlaunch
	if qlaunch == "" {
		exe, err := os.Executable()
		if err != nil {
			return "", nil, fmt.Errorf("alloc: this executable: %w (set alloc.qlaunch)", err)
		}
		qlaunch = exe
	}
	topo, err := filepath.Abs(path)
	if err != nil {
		return "", nil, err
	}
	addr, err := filepath.Abs(addrFile)
	if err != nil {
		return "", nil, err
	}
	dir := filepath.Dir(addr)
	walltime := ""
	if a.Walltime > 0 {
		s := int(a.Walltime / time.Second)
		walltime = fmt.Sprintf("%02d:%02d:%02d", s/3600, s/60%60, s%60)
	}
	perNode := 1 + t.WorkerRanksPerNode()
	var text, file string
	var opts []string
	switch a.Scheduler {
	case topology.SchedSLURM:
		c := slurm.ScriptConfig{
			Topology: topo, Qlaunch: qlaunch, JobName: "qlaunch-alloc", Account: a.Account, Partition: a.Partition, Time: walltime,
			Nodes: a.Nodes, TasksPerNode: perNode, GPUsPerNode: t.Workers.GPUsPerNode,
		}
		if t.Server.Placement == topology.PlaceDedicated {
			c.ExtraOnFirst = 1
		}
		if cpus := t.Workers.CPUsPerNode; cpus > 0 {
			c.CPUsPerTask = max(1, cpus/(perNode+c.ExtraOnFirst))
		}
		text, err = slurm.JoinScript(slurm.JoinScriptConfig{ScriptConfig: c, AddressFile: addr, DrainLead: int(a.DrainLead / time.Second)})
		file = filepath.Join(dir, "alloc.sbatch")
		opts = []string{"--output=" + filepath.Join(dir, "alloc-%j.out")}
	case topology.SchedPBS:
		drainAfter := 0
		if a.Walltime > 0 {
			drainAfter = int((a.Walltime - a.DrainLead) / time.Second)
		}
		text, err = pbs.JoinScript(pbs.JoinScriptConfig{
			ScriptConfig: pbs.ScriptConfig{
				Topology: topo, Qlaunch: qlaunch, JobName: "qlaunch-alloc", Account: a.Account, Queue: a.Partition, Time: walltime,
				Nodes: a.Nodes, TasksPerNode: perNode, CPUsPerNode: t.Workers.CPUsPerNode, GPUsPerNode: t.Workers.GPUsPerNode, MPI: pbs.MPIAuto,
			},
			AddressFile: addr, DrainAfter: drainAfter,
		})
		file = filepath.Join(dir, "alloc.pbs")
		opts = []string{"-j", "oe", "-o", dir + "/"}
	default:
		return "", nil, fmt.Errorf("alloc: no scheduler")
	}
	if err != nil {
		return "", nil, fmt.Errorf("alloc: the job script: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", nil, err
	}
	if err := os.WriteFile(file, []byte(text), 0o700); err != nil {
		return "", nil, fmt.Errorf("alloc: writing the job script: %w", err)
	}
	return file, append(opts, a.Options...), nil
}

// allocPolicy is the core's policy from [alloc].
func allocPolicy(a topology.Alloc) decide.Policy {
	return decide.Policy{MaxAllocations: a.MaxAllocations, Backlog: a.Backlog, BacklogFor: a.BacklogFor, IdleTimeout: a.IdleTimeout}
}

// startAllocator runs the automatic allocator of a server rank (topology
// [alloc]) until ctx ends: it writes the job script, waits until the
// server is ready (ready closed: its address file is written), serves the control link next to it, and
// returns a function that waits until the allocator has cancelled every
// job it submitted that still runs.
func startAllocator(ctx context.Context, t *topology.Topology, path, addrFile string, ready <-chan struct{}, secret wire.Secret, mon *launcher.Monitor, log *slog.Logger) (*alloc.Allocator, func() error, error) {
	script, opts, err := allocScript(t, path, addrFile)
	if err != nil {
		return nil, nil, err
	}
	var sched alloc.Scheduler = alloc.Slurm{}
	if t.Alloc.Scheduler == topology.SchedPBS {
		sched = alloc.PBS{}
	}
	a := alloc.New(alloc.Config{Policy: allocPolicy(t.Alloc), Scheduler: sched, Script: script, Options: opts, Tree: mon, Logger: log})
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	control := make(chan struct{})
	go func() {
		defer close(control)
		serveAllocControl(ctx, addrFile, ready, secret, a, log)
	}()
	log.Info("alloc: automatic allocation on", "scheduler", sched.Name(), "script", script, "options", strings.Join(opts, " "))
	return a, func() error {
		err := <-done
		<-control
		return err
	}, nil
}

// allocMetrics is the metrics' source of a server with an allocator: the
// Monitor's counters and the allocations by phase.
type allocMetrics struct {
	*launcher.Monitor
	a *alloc.Allocator
}

func (m allocMetrics) AllocationPhases() map[string]int { return m.a.AllocationPhases() }

// serveAllocControl waits until the server is ready (its address file
// is written before ready closes), listens on its host and records the
// control address in alloc.ControlFile beside the address file (so
// `qlaunch alloc` finds it as soon as a client can find the server),
// serving until ctx ends; it removes the file then.
func serveAllocControl(ctx context.Context, addrFile string, ready <-chan struct{}, secret wire.Secret, a *alloc.Allocator, log *slog.Logger) {
	select {
	case <-ctx.Done():
		return
	case <-ready:
	}
	rec, err := launcher.ReadAddressRecord(addrFile)
	if err == nil && rec.PID != os.Getpid() {
		err = fmt.Errorf("%s names process %d, not this server (%d)", addrFile, rec.PID, os.Getpid())
	}
	if err != nil {
		log.Error("alloc: no control link", "err", err)
		return
	}
	host, _, err := net.SplitHostPort(rec.Addr)
	if err != nil {
		log.Error("alloc: no control link", "err", err)
		return
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		log.Error("alloc: no control link", "err", err)
		return
	}
	file := alloc.ControlFile(addrFile)
	own := launcher.AddressRecord{Addr: ln.Addr().String(), PID: os.Getpid(), Host: rec.Host, Job: rec.Job, SecretFile: rec.SecretFile}
	if err := launcher.WriteAddressRecord(file, own); err != nil {
		log.Error("alloc: no control link", "err", err)
		ln.Close()
		return
	}
	defer os.Remove(file)
	alloc.Serve(ctx, ln, secret, rec.Host, a, log)
}
