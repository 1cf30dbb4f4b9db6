package main

import "context"

// cmdWait is a stub until its owner replaces this file by wait.go.
func cmdWait(ctx context.Context, e *env, args []string) error { return errNotBuilt }
