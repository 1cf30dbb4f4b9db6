package main

import "errors"

// errNotBuilt is returned by subcommands that are not built yet.
var errNotBuilt = errors.New("not built yet")
