package main

import "context"

// cmdBoot is a stub until its owner replaces this file by boot.go.
func cmdBoot(ctx context.Context, e *env, args []string) error { return errNotBuilt }
