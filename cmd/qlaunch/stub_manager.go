package main

import "context"

// cmdManager is a stub until its owner replaces this file by manager.go.
func cmdManager(ctx context.Context, e *env, args []string) error { return errNotBuilt }
