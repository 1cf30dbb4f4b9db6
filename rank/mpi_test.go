//go:build mpi && cgo

package rank

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"testing"
)

// TestMPI runs under a launcher (mpirun -n 4, srun --mpi=pmix, srun
// --mpi=pmi2; the lab's end-to-end tests start it so) or alone as a
// singleton. Every rank checks MPI against what Detect found and gathers
// every rank's fixed-size record. With QLAUNCH_TEST_EXPECT_MISMATCH=1 the
// launcher and MPI must disagree on the size (MPICH under srun --mpi=pmix).
func TestMPI(t *testing.T) {
	info, err := Detect(os.Getenv)
	if err != nil {
		t.Fatalf("Detect: %v", err)
	}
	m, err := StartMPI()
	if err != nil {
		t.Fatalf("StartMPI: %v", err)
	}
	defer func() {
		if err := m.Finalize(); err != nil {
			t.Errorf("Finalize: %v", err)
		}
	}()
	err = CheckMPISize(info, m.Size(), m.Library())
	if os.Getenv("QLAUNCH_TEST_EXPECT_MISMATCH") == "1" {
		var sm *SizeMismatchError
		if !errors.As(err, &sm) {
			t.Fatalf("CheckMPISize = %v, want a size mismatch (launcher %s size %d, MPI size %d)", err, info.Launcher, info.Size, m.Size())
		}
		fmt.Printf("refused: %v\n", err)
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	if m.Rank() != info.Rank {
		t.Fatalf("MPI rank %d, launcher (%s) rank %d", m.Rank(), info.Launcher, info.Rank)
	}
	const recSize = 64
	rec := make([]byte, recSize)
	copy(rec, fmt.Sprintf("%d %s", m.Rank(), info.Node))
	all, err := m.Allgather(rec)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != recSize*m.Size() {
		t.Fatalf("Allgather returned %d bytes, want %d", len(all), recSize*m.Size())
	}
	for r := range m.Size() {
		got := string(bytes.TrimRight(all[r*recSize:(r+1)*recSize], "\x00"))
		var gotRank int
		var node string
		if _, err := fmt.Sscanf(got, "%d %s", &gotRank, &node); err != nil || gotRank != r {
			t.Fatalf("record %d is %q", r, got)
		}
	}
	if _, err := m.Allgather(nil); err == nil {
		t.Error("Allgather(nil) succeeded")
	}
	fmt.Printf("mpi ok: rank %d of %d on %s via %s (%s)\n", m.Rank(), m.Size(), info.Node, info.Launcher, m.Library())
}

// TestMPIAbort runs under a launcher with QLAUNCH_TEST_ABORT=1: the last
// rank calls Abort while the others wait in Allgather; the launcher must end
// the whole job (the lab's TestMPIAbort checks it ends, and fails).
func TestMPIAbort(t *testing.T) {
	if os.Getenv("QLAUNCH_TEST_ABORT") != "1" {
		t.Skip("QLAUNCH_TEST_ABORT=1 runs it under an MPI launcher")
	}
	m, err := StartMPI()
	if err != nil {
		t.Fatalf("StartMPI: %v", err)
	}
	if m.Rank() == m.Size()-1 {
		fmt.Printf("rank %d aborting\n", m.Rank())
		m.Abort(3)
	}
	if _, err := m.Allgather(make([]byte, 8)); err == nil {
		t.Errorf("rank %d: Allgather returned after a rank aborted", m.Rank())
	}
}
