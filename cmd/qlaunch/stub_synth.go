package main

import "context"

// cmdSynth is a stub until its owner replaces this file by synth.go.
func cmdSynth(ctx context.Context, e *env, args []string) error { return errNotBuilt }
