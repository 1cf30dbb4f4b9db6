package launcher

import (
	"testing"
	"unsafe"
)

// TestTaskSize pins the size of a task: a kernel's Map allocates one per
// child, so on the tiny workload (nested submits from a running kernel)
// each byte is paid per task. 272 bytes, with a cancelCtx in every task
// and an int helping depth, ran tiny at 0.8–0.9× of the build at 232.
func TestTaskSize(t *testing.T) {
	const limit = 224
	if got := unsafe.Sizeof(task{}); got > limit {
		t.Errorf("task is %d bytes, want at most %d: a child of a Map pays for each", got, limit)
	}
}
