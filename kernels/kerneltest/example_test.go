package kerneltest_test

import (
	"context"
	"fmt"

	"github.com/qlaunch/qlaunch/kernels"
	"github.com/qlaunch/qlaunch/kernels/kerneltest"
)

func Example() {
	// A kernel that squares each of its arguments in a child task.
	square := kernels.Kernel{Name: "square", Func: func(ctx context.Context, rt kernels.Runtime, args []string, _ []byte) ([]byte, error) {
		if len(args) == 1 {
			var n int
			fmt.Sscan(args[0], &n)
			return fmt.Append(nil, n*n), nil
		}
		ts := make([]kernels.Task, len(args))
		for i, a := range args {
			ts[i] = kernels.Task{Kernel: "square", Args: []string{a}}
		}
		f, err := rt.Map(ctx, ts)
		if err != nil {
			return nil, err
		}
		vals, err := rt.Wait(ctx, f)
		if err != nil {
			return nil, err
		}
		return fmt.Appendf(nil, "%s", vals), nil
	}}
	reg, err := kernels.NewRegistry(append(kernels.Builtin(), square)...)
	if err != nil {
		panic(err)
	}
	rt := kerneltest.New(reg, 1)
	out, err := rt.Run(context.Background(), kernels.Task{Kernel: "square", Args: []string{"1", "2", "3"}})
	fmt.Println(string(out), err)
	out, err = rt.Run(context.Background(), kernels.Task{Kernel: "fanout", Args: []string{"10", "2"}})
	fmt.Println(string(out), err, rt.Stats().MaxRunning)
	// Output:
	// [1 4 9] <nil>
	// 100 <nil> 1
}
