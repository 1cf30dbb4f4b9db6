// Package python is the kernel that runs Python functions on worker ranks.
//
// A task of the "python" kernel carries a pickled function and its
// arguments (built by the Python package qlaunch, in python/ at the
// repository root); its result is the pickled return value. The kernel
// keeps warm Python interpreters ("executors"), children of the worker
// rank: in a Python job (qlaunch run of a Python command, or a topology
// with a [python] table) one starts with the rank (Pool.Warm, the kernel's
// Warm hook) where qlaunch imports without a client's sys.path, the others
// on first use.
// They inherit its CPU pinning and environment (GPU variables included); OMP_NUM_THREADS, MKL_NUM_THREADS
// and OPENBLAS_NUM_THREADS are set to 1 unless the rank's environment sets
// them. The topology's [python] table reaches the kernel through the rank's
// environment (topology.Python.PythonEnv): $QLAUNCH_PYTHON is the
// interpreter, $QLAUNCH_PYTHON_PATH (':'-separated) goes first on the
// executors' PYTHONPATH, and $QLAUNCH_PYTHON_THREADS sets those thread
// variables, NUMEXPR_NUM_THREADS and VECLIB_MAXIMUM_THREADS over the
// rank's. An executor that dies is replaced by the next task that needs one;
// the tasks it was running fail with an error naming its process and the
// signal or status it died of (the launcher adds the rank and host).
//
// # Executors and slots
//
// An executor runs one task's Python code at a time, and any number of
// suspended async tasks: a task that awaits a child future (qlaunch's
// in-task API, with the shape of BQSKit's RuntimeHandle) sends its request
// to the kernel goroutine that started it (its batch's), which calls the Go runtime
// (kernels.Runtime: Map, Wait, Next, Cancel). While the goroutine waits,
// the runtime gives its slot back, and the executor, whose task is
// suspended, takes other tasks. So nested fork-join of any depth runs on
// one slot, as for Go kernels. A task is given to an executor none of whose
// tasks is running; since running tasks hold slots, a rank needs one
// executor per slot (more only while a cancelled task's Python code still
// runs, or a dead executor is being replaced).
//
// # Batches
//
// Tasks of the kernel that a worker rank takes from its queue together (a
// map's children, a client's map) reach the kernel's Batch function at
// once (kernels.Kernel.Batch): one goroutine sends them all to one
// executor in one write, followed by a sync message, and the executor
// runs them in order and writes their results in one write (or as they
// come when they take longer than a few milliseconds). A no-op task then
// costs a share of one round trip between the processes, not one each.
// The executor echoes the sync once it has handled every message before
// it: until then its Python code runs, and requests to wait on child
// futures are held; after it, they are served one at a time (the slot
// given back while the runtime waits), each resume followed by a sync
// again. So an executor whose tasks all wait is idle, and one that runs
// code is counted running, as with one task at a time. A task cancelled
// while its code runs is reported at once (while another task's wait is
// served too); the executor stays counted running until it acknowledges,
// and the tasks of the batch behind it wait for that code to end (a
// Python call cannot be interrupted).
//
// A map's chunk (chunksize in the Python API) is one task of many calls: the
// executor runs them in order, and the coroutines among them as suspended
// tasks whose waits the kernel goroutine serves one after another (their
// children were all submitted before the first wait, so the waits overlap).
//
// # Blocking waits
//
// A plain (def) task cannot await: it calls a future's result(), and the
// executor blocks in it. Its wait request carries a blocking flag; the
// kernel serves it as any wait (once the executor's sync is echoed, the
// slot given back), and also counts the executor blocked meanwhile, so
// that no other task is given to it: the pool starts another executor.
// Nested blocking waits thus hold one interpreter per blocked task, never
// a slot, and fork-join of plain tasks of any depth runs on one slot. While
// blocked, the executor holds the runs of its batch that come after the
// task (they run, in order, once it ends; one cancelled meanwhile is
// dropped and acknowledged), echoes syncs, and steps resumed async tasks
// above the blocked frame: they cannot block, since an await never does
// and result() inside a coroutine is refused (it would stack a block on a
// block, the outer one's resume waiting behind the inner one's children).
// A cancel of the blocked task raises qlaunch.CancelledError in it.
//
// # Retryable children
//
// A task's map message of type msgMapRetry (submit/map with retry=True, or
// a function marked qlaunch.retryable) makes its children tasks of the
// retryable twin (RetryName): placed again when their rank is lost.
//
// A task cancelled while its Python code runs keeps its executor counted
// as running until the executor acknowledges (it cannot be interrupted
// between bytecodes), so no other task queues behind it; a suspended
// cancelled task is dropped at once.
//
// # The pipe protocol
//
// The kernel and an executor talk over two pipes (the executor's file
// descriptors 3, to Python, and 4, from Python), in messages
//
//	length uint32 BE (of what follows) | type uint8 | task uint64 BE | body
//
// The kernel first sends a path message (the sys.path entries of the task
// that started the executor: the executor adds them before it imports
// qlaunch, so the package need not be installed where the client found it
// on its path), and the executor answers with a hello (task 0, body: the
// protocol version as text, "qlaunch-executor 4"); see msg.go for the
// types and bodies. A run whose function (the payload's function part) is
// that of the last run written to the executor goes as a run-same message,
// the call alone: the executor calls the function of the run before it on
// the pipe, so a batch of a map's children carries its function once. An
// in-task map sends its function once too (a map-function message); the
// kernel makes each child's payload of it and the child's call. A sync
// message (type 12, the batch's sync id) is echoed by the executor when it
// reaches it. The executor handles every message one read brings before it
// writes its replies. Values cross the pipe as
// the bytes the wire carries (pickles); the kernel never unpickles.
package python
