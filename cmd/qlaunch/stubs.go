package main

// Subcommands not yet built. Each owner replaces its stub by a file of its
// own (cmd/qlaunch/NAME.go) and deletes the line here.

import (
	"context"
	"errors"
)

var errNotBuilt = errors.New("not built yet")

func cmdRun(ctx context.Context, e *env, args []string) error      { return errNotBuilt }
func cmdPlan(ctx context.Context, e *env, args []string) error     { return errNotBuilt }
func cmdServer(ctx context.Context, e *env, args []string) error   { return errNotBuilt }
func cmdManager(ctx context.Context, e *env, args []string) error  { return errNotBuilt }
func cmdWorker(ctx context.Context, e *env, args []string) error   { return errNotBuilt }
func cmdSubmit(ctx context.Context, e *env, args []string) error   { return errNotBuilt }
func cmdStatus(ctx context.Context, e *env, args []string) error   { return errNotBuilt }
func cmdWait(ctx context.Context, e *env, args []string) error     { return errNotBuilt }
func cmdWhoami(ctx context.Context, e *env, args []string) error   { return errNotBuilt }
func cmdBench(ctx context.Context, e *env, args []string) error    { return errNotBuilt }
func cmdHostlist(ctx context.Context, e *env, args []string) error { return errNotBuilt }
func cmdScript(ctx context.Context, e *env, args []string) error   { return errNotBuilt }
func cmdBoot(ctx context.Context, e *env, args []string) error     { return errNotBuilt }
