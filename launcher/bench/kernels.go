package bench

import (
	"context"
	"strconv"

	"github.com/qlaunch/qlaunch/kernels"
)

// Kernels returns the kernels the workloads need besides the built-in
// ones, a new slice at each call:
//
//	len    returns the length of its payload in bytes, as decimal text
func Kernels() []kernels.Kernel {
	return []kernels.Kernel{
		{Name: "len", Func: length, Retryable: true, Doc: "return the payload's length in bytes"},
	}
}

func length(_ context.Context, _ kernels.Runtime, args []string, payload []byte) ([]byte, error) {
	if len(args) != 0 {
		return nil, &kernels.UsageError{Kernel: "len", Msg: "takes no arguments, got " + strconv.Itoa(len(args))}
	}
	return strconv.AppendInt(nil, int64(len(payload)), 10), nil
}
