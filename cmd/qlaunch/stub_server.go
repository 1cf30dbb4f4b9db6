package main

import "context"

// cmdServer is a stub until its owner replaces this file by server.go.
func cmdServer(ctx context.Context, e *env, args []string) error { return errNotBuilt }
