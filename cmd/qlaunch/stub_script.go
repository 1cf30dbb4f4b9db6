package main

import "context"

// cmdScript is a stub until its owner replaces this file by script.go.
func cmdScript(ctx context.Context, e *env, args []string) error { return errNotBuilt }
