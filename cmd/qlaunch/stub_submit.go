package main

import "context"

// cmdSubmit is a stub until its owner replaces this file by submit.go.
func cmdSubmit(ctx context.Context, e *env, args []string) error { return errNotBuilt }
