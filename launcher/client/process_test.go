package client_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/qlaunch/qlaunch/kernels"
	"github.com/qlaunch/qlaunch/launcher/client"
	"github.com/qlaunch/qlaunch/launcher/wire"
)

// helperEnv makes this test binary, started by qlaunch run, the client of
// TestProcessLoneWaiterReadsItsOwnResults.
const helperEnv = "QLAUNCH_CLIENT_TURN_HELPER"

// processRounds is the helper's number of round trips.
const processRounds = 300

// TestProcessLoneWaiterReadsItsOwnResults runs a real tree (qlaunch run
// configs/local.toml: a server process and a worker rank process) and,
// under it, this test binary as the client: submitting and waiting in a
// loop, it reads its results itself, not through its background reader.
func TestProcessLoneWaiterReadsItsOwnResults(t *testing.T) {
	if os.Getenv(helperEnv) != "" {
		if err := turnHelper(); err != nil {
			fmt.Println("helper:", err)
			os.Exit(1)
		}
		return
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "qlaunch")
	if out, err := exec.Command("go", "build", "-o", bin, "../../cmd/qlaunch").CombinedOutput(); err != nil {
		t.Fatalf("building qlaunch: %v\n%s", err, out)
	}
	config, err := filepath.Abs("../../configs/local.toml")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "run", config, "--", os.Args[0], "-test.run=^TestProcessLoneWaiterReadsItsOwnResults$")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), helperEnv+"=1")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("qlaunch run: %v\nstdout:\n%s\nstderr:\n%s", err, out, stderr.String())
	}
	var own, bg uint64
	for line := range strings.Lines(string(out)) {
		if _, err := fmt.Sscanf(line, "reads own=%d background=%d", &own, &bg); err == nil {
			break
		}
	}
	t.Logf("%d round trips: the caller read %d frames, the background reader %d", processRounds, own, bg)
	// Each round's result is one frame. The background reader takes the
	// turn only when the caller leaves it for the idle hand-off (a
	// descheduled process on a loaded machine), and the caller takes it
	// back.
	if own < processRounds/2 || bg >= processRounds/2 {
		t.Fatalf("%d round trips: the caller read %d frames, the background reader %d\n%s", processRounds, own, bg, out)
	}
}

// turnHelper is the client process: it dials the tree qlaunch run gives
// it, runs the round trips and prints who read the frames.
func turnHelper() error {
	sec, err := wire.LoadSecretFile(os.Getenv("QLAUNCH_SECRET_FILE"))
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := client.Dial(ctx, os.Getenv("QLAUNCH_ADDR"), client.Options{Secret: sec})
	if err != nil {
		return err
	}
	defer c.Close()
	own0, bg0 := client.ReadCounts(c)
	for i := range processRounds {
		f, err := c.Submit(ctx, kernels.Task{Kernel: "echo", Args: []string{strconv.Itoa(i)}})
		if err != nil {
			return err
		}
		v, err := c.Wait(ctx, f)
		if err != nil {
			return err
		}
		if string(v[0]) != strconv.Itoa(i) {
			return fmt.Errorf("round %d: %q", i, v[0])
		}
	}
	own, bg := client.ReadCounts(c)
	fmt.Printf("reads own=%d background=%d\n", own-own0, bg-bg0)
	return nil
}
