package kernels_test

import (
	"errors"
	"testing"

	"github.com/qlaunch/qlaunch/kernels"
)

func TestTaskError(t *testing.T) {
	for _, c := range []struct {
		name           string
		err            kernels.TaskError
		msg            string
		lost, canceled bool
	}{
		{"failed", kernels.TaskError{Kernel: "fail", Rank: 3, Host: "n1", Message: "Boo!"}, "fail failed on rank 3 (n1): Boo!", false, false},
		{"failed-no-kernel", kernels.TaskError{Rank: 3, Host: "n1", Message: "Boo!"}, "task failed on rank 3 (n1): Boo!", false, false},
		{"lost", kernels.TaskError{Kernel: "sleep", Rank: 2, Host: "n2", Message: "connection reset", Lost: true}, "rank 2 on n2 lost: connection reset", true, false},
		{"cancelled", kernels.TaskError{Kernel: "sleep", Rank: 2, Host: "n2", Cancelled: true}, "task cancelled", false, true},
		{"cancelled-why", kernels.TaskError{Kernel: "sleep", Rank: 2, Host: "n2", Message: "deadline", Cancelled: true}, "sleep on rank 2 (n2): deadline", false, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			var err error = &c.err
			if err.Error() != c.msg {
				t.Errorf("Error() = %q, want %q", err, c.msg)
			}
			if got := errors.Is(err, kernels.ErrRankLost); got != c.lost {
				t.Errorf("errors.Is(ErrRankLost) = %v, want %v", got, c.lost)
			}
			if got := errors.Is(err, kernels.ErrCancelled); got != c.canceled {
				t.Errorf("errors.Is(ErrCancelled) = %v, want %v", got, c.canceled)
			}
		})
	}
}
