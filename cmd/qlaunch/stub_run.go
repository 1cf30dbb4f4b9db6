package main

import "context"

// cmdRun is a stub until its owner replaces this file by run.go.
func cmdRun(ctx context.Context, e *env, args []string) error { return errNotBuilt }
