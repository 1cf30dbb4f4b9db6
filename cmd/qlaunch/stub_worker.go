package main

import "context"

// cmdWorker is a stub until its owner replaces this file by worker.go.
func cmdWorker(ctx context.Context, e *env, args []string) error { return errNotBuilt }
