package main

import "context"

// cmdCompile is a stub until its owner replaces this file by compile.go.
func cmdCompile(ctx context.Context, e *env, args []string) error { return errNotBuilt }
