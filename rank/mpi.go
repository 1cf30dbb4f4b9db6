//go:build mpi && cgo

package rank

/*
#include <mpi.h>
#include <stdlib.h>

// MPI_COMM_WORLD, MPI_BYTE and MPI_THREAD_FUNNELED are macros (pointer casts
// in Open MPI, integers in MPICH) that cgo cannot use: wrap every call.
static int q_init_thread(int *provided) { return MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, provided); }
static int q_funneled(void) { return MPI_THREAD_FUNNELED; }
static int q_rank(int *r) { return MPI_Comm_rank(MPI_COMM_WORLD, r); }
static int q_size(int *s) { return MPI_Comm_size(MPI_COMM_WORLD, s); }
static int q_allgather(void *send, int n, void *recv) {
	return MPI_Allgather(send, n, MPI_BYTE, recv, n, MPI_BYTE, MPI_COMM_WORLD);
}
static int q_finalize(void) { return MPI_Finalize(); }
static int q_abort(int code) { return MPI_Abort(MPI_COMM_WORLD, code); }
static int q_version(char *buf, int *len) { return MPI_Get_library_version(buf, len); }
static int q_max_version(void) { return MPI_MAX_LIBRARY_VERSION_STRING; }
*/
import "C"

import (
	"fmt"
	"math"
	"os"
	"runtime"
	"strings"
	"unsafe"
)

// HaveMPI reports whether this binary was built with the MPI bootstrap.
const HaveMPI = true

// MPI is an initialised MPI library (MPI_THREAD_FUNNELED). Every method must
// be called from the goroutine that called StartMPI, which stays locked to
// its OS thread until Finalize.
type MPI struct {
	rank, size int
	done       bool
}

// StartMPI locks the calling goroutine to its OS thread and initialises MPI
// with MPI_THREAD_FUNNELED: only this goroutine may make MPI calls.
func StartMPI() (*MPI, error) {
	runtime.LockOSThread()
	var provided, r, s C.int
	if rc := C.q_init_thread(&provided); rc != 0 {
		runtime.UnlockOSThread()
		return nil, fmt.Errorf("%w: MPI_Init_thread returned %d", ErrMPI, int(rc))
	}
	// MPI is initialised from here on: a failure finalises it and unlocks
	// the thread, since the caller gets no *MPI to do so.
	fail := func(err error) (*MPI, error) {
		C.q_finalize()
		runtime.UnlockOSThread()
		return nil, err
	}
	if provided < C.q_funneled() {
		return fail(fmt.Errorf("%w: MPI_Init_thread provides thread level %d, below MPI_THREAD_FUNNELED", ErrMPI, int(provided)))
	}
	if rc := C.q_rank(&r); rc != 0 {
		return fail(fmt.Errorf("%w: MPI_Comm_rank returned %d", ErrMPI, int(rc)))
	}
	if rc := C.q_size(&s); rc != 0 {
		return fail(fmt.Errorf("%w: MPI_Comm_size returned %d", ErrMPI, int(rc)))
	}
	return &MPI{rank: int(r), size: int(s)}, nil
}

// Rank is this process's rank in MPI_COMM_WORLD.
func (m *MPI) Rank() int { return m.rank }

// Size is the size of MPI_COMM_WORLD.
func (m *MPI) Size() int { return m.size }

// Library returns MPI_Get_library_version's first line, e.g. "Open MPI v4.1.4, ...".
func (m *MPI) Library() string {
	n := C.q_max_version()
	buf := (*C.char)(C.malloc(C.size_t(n)))
	defer C.free(unsafe.Pointer(buf))
	var l C.int
	if C.q_version(buf, &l) != 0 {
		return "unknown MPI"
	}
	v, _, _ := strings.Cut(C.GoStringN(buf, l), "\n")
	v, _, _ = strings.Cut(v, ",")
	v = strings.Join(strings.Fields(v), " ")
	return strings.TrimSpace(v)
}

// Allgather sends rec, which must have the same length on every rank, and
// returns the records of all ranks concatenated in rank order.
func (m *MPI) Allgather(rec []byte) ([]byte, error) {
	if m.done {
		return nil, fmt.Errorf("%w: allgather after finalize", ErrMPI)
	}
	if len(rec) == 0 {
		return nil, fmt.Errorf("%w: allgather of an empty record", ErrMPI)
	}
	total := len(rec) * m.size
	if total/m.size != len(rec) || total > math.MaxInt32 {
		return nil, fmt.Errorf("%w: allgather of %d ranks × %d bytes: more than MPI's int count", ErrMPI, m.size, len(rec))
	}
	send := C.CBytes(rec)
	defer C.free(send)
	recv := C.malloc(C.size_t(total))
	defer C.free(recv)
	if rc := C.q_allgather(send, C.int(len(rec)), recv); rc != 0 {
		return nil, fmt.Errorf("%w: MPI_Allgather returned %d", ErrMPI, int(rc))
	}
	return C.GoBytes(recv, C.int(total)), nil
}

// Finalize shuts MPI down and unlocks the OS thread. Later calls do nothing.
func (m *MPI) Finalize() error {
	if m.done {
		return nil
	}
	m.done = true
	rc := C.q_finalize()
	runtime.UnlockOSThread()
	if rc != 0 {
		return fmt.Errorf("%w: MPI_Finalize returned %d", ErrMPI, int(rc))
	}
	return nil
}

// Abort ends every rank of MPI_COMM_WORLD with exit status code
// (MPI_Abort): a rank that fails before the address exchange calls it so
// that the others, waiting in MPI_Allgather, do not wait forever (srun does
// not end a step when one task fails unless --kill-on-bad-exit). It does
// not return.
func (m *MPI) Abort(code int) {
	C.q_abort(C.int(code))
	// MPI_Abort may return in a world that is already gone.
	os.Exit(code)
}
