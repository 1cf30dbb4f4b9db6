package main

import "context"

// cmdBench is a stub until its owner replaces this file by bench.go.
func cmdBench(ctx context.Context, e *env, args []string) error { return errNotBuilt }
