package cli

// roleGCPercent is the garbage collector's target in a process that runs
// a role (server, manager, worker rank) when GOGC does not set one. A
// role's heap is mostly task payloads in flight, each freed milliseconds
// after it arrived: at Go's default of 100 the collector ran every few
// MiB of payload and the scavenger handed the freed pages back to the
// kernel, which then faulted and cleared them again for the next frame
// (page faults and clear_page were a tenth of the CPU of the payload
// workload under perf). 400 lets the heap reach five times what is live
// before a cycle: memory traded for CPU where the live heap is small, and
// the same factor where it is large. GOGC, when set, is used instead;
// GOMEMLIMIT still caps the heap as it always does. The setting is this
// process's own: processes it starts do not inherit it (a worker rank it
// spawns runs a role and sets it itself).
const roleGCPercent = 400

// tuneRoleGC sets roleGCPercent unless GOGC is set.
func tuneRoleGC(e *env) {
	if e.getenv("GOGC") == "" && e.setGCPercent != nil {
		e.setGCPercent(roleGCPercent)
	}
}
