// Package kernels defines what a qlaunch kernel is and what it may do.
//
// A kernel is a named Go function (or, through the built-in exec kernel, an
// external command) that takes string arguments and a byte payload and
// returns bytes or an error. Kernels are collected in a Registry value that
// the launcher is given; there is no global registry.
//
// While it runs, a kernel sees the runtime through the Runtime interface:
// it can submit child tasks (Submit, Map), wait for them (Wait), take their
// results as they complete (Next), cancel them (Cancel), keep values in a
// cache private to its worker rank (Cache) and log records that reach the
// client (Logger). A kernel blocked in Wait or Next gives its worker slot
// back, so fork-join of any depth runs on any number of slots without
// deadlock. The launcher package implements Runtime; this package does not
// import it.
package kernels
