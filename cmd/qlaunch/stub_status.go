package main

import "context"

// cmdStatus is a stub until its owner replaces this file by status.go.
func cmdStatus(ctx context.Context, e *env, args []string) error { return errNotBuilt }
