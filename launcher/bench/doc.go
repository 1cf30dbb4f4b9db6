// Package bench holds the workloads that `qlaunch bench` runs against a
// qlaunch runtime, as a library: the command, the Go benchmarks and the
// scale simulation all run the same code.
//
// # Workloads
//
//	loopback    the same-run baseline, in this process: a 64-byte TCP echo
//	            round trip over 127.0.0.1 (median_us, p99_us), pipelined
//	            64-byte messages (msgs_per_s) and 1 MiB writes (MB_per_s)
//	chain       the same-run baseline of the runtime's shape: the round
//	            trip and bulk writes of loopback, but through three
//	            processes, as a task travels from a client through the
//	            server to a worker rank: this one, a relay process and an
//	            echo process (Options.Hop, ServeHop), raw TCP with nothing
//	            of the runtime in the way (median_us, p99_us; MB_per_s)
//	tiny        one task maps N noop children inside the runtime
//	            (fanout N 1) → tasks_per_s, and which path the children
//	            took: children_local (run on the rank of the kernel
//	            that mapped them) and children_via_server (handed back
//	            up by a steal and placed again by the relays), from the
//	            worker ranks' status (wire.RankStatus Kept, HandedUp)
//	client-map  the client maps N noop tasks → tasks_per_s
//	latency     N sequential submit → result round trips of noop
//	            → median_us, p99_us
//	payload     N tasks carrying Options.Payload bytes to the len kernel,
//	            random (incompressible) and repetitive (compressible)
//	            → MB_per_s each
//	nested      a task maps 100 children, each mapping 100 noop
//	            grandchildren (fanout 100 2, 10,100 tasks) → tasks_per_s,
//	            children_local, children_via_server (as tiny)
//	startup     runs Options.Launch (qlaunch run TOPOLOGY -- qlaunch submit
//	            echo ready) as a child process: launch to its first output
//	            byte (the first result) and from there to its exit
//	            (shutdown) → ms each
//
// Every workload runs once unmeasured (warm-up), then Options.Repeat times;
// a Result gives the minimum, median and maximum over the repeats of its
// wall time and of each figure (taken one by one, so the fastest rate and
// the shortest time may come from different repeats).
//
// # Kernels
//
// The payload workload needs the len kernel (Kernels), which returns the
// length of its payload as decimal text. A runtime's worker ranks must
// register it next to the built-in kernels: the qlaunch binary does.
//
// # Output
//
// WriteJSON prints one JSON object per line: workload, variant (when the
// workload has several), tasks, repeat, seconds (the median), seconds_min,
// seconds_max, then each figure F as F (the median), F_min and F_max.
// TableWriter prints the same as an aligned table. Ratios compares the
// medians of a run's figures with the baselines of the same run (latency
// against the chain and loopback round trips, payload against their bulk
// writes, …); WriteRatios prints them after the table, WriteRatiosJSON as
// objects with workload "ratio". Header describes the
// machine, the tree and the build; WriteJSON prints it first as an object
// with workload "header", tasks 0 and seconds 0.
package bench
