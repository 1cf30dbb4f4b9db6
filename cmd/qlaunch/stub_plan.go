package main

import "context"

// cmdPlan is a stub until its owner replaces this file by plan.go.
func cmdPlan(ctx context.Context, e *env, args []string) error { return errNotBuilt }
