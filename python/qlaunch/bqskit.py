"""Run BQSKit compilations on qlaunch (import it only when you use it: it
imports bqskit when a compilation is submitted, not before).

Switching a BQSKit script to qlaunch takes two lines:

    from qlaunch.bqskit import Compiler     # instead of: from bqskit import Compiler
    with Compiler() as compiler:            # finds the qlaunch runtime as the CLI does
        out = compiler.compile(circuit, workflow)

and running the script under the runtime (qlaunch run TOPOLOGY.toml --
python3 script.py, or srun …). Each compilation runs as one Python task;
inside it, bqskit.runtime.get_runtime() answers with qlaunch's handle, so an
unmodified pass that awaits get_runtime().map(...) runs its children as
qlaunch tasks across the job. BQSKit must be importable on the worker ranks
(installed, or on the client's sys.path, which the executors add to theirs).
"""

import logging
import uuid
from enum import IntEnum

from .client import Client
from .runtime import get_runtime
from . import _task

__all__ = ["Compiler", "CompilationStatus", "install"]


class CompilationStatus(IntEnum):
    """The status of a compilation (the values of BQSKit's)."""
    UNKNOWN = 0
    RUNNING = 1
    DONE = 2


def install():
    """Inside a qlaunch task: make bqskit.runtime.get_runtime() return
    qlaunch's handle (BQSKit's get_runtime returns its worker module's
    worker object). Executors also do this themselves whenever a task
    imports bqskit.runtime.worker, so children of a compilation that run
    in other executors see the handle too."""
    import bqskit.runtime.worker as worker
    handle = get_runtime()
    if getattr(worker, "_worker", None) is not handle:
        worker._worker = handle


async def _run(task):
    """The Python task of one compilation."""
    install()
    return await task.run()


class Compiler:
    """A BQSKit Compiler whose compilations run on a qlaunch runtime.

    ip and port name the server (default: $QLAUNCH_ADDR, else the address
    file); num_workers, runtime_log_level, worker_port and num_blas_threads
    are accepted for compatibility and ignored: the topology sets workers
    and BLAS threads (1 by default). secret_file is the job secret
    (default: $QLAUNCH_SECRET_FILE, else the user's).
    """

    def __init__(self, ip=None, port=7472, num_workers=-1, runtime_log_level=logging.WARNING,
                 worker_port=7474, num_blas_threads=1, *, secret_file=None):
        address = None if ip is None else "%s:%d" % (ip, port)
        self._client = Client(address, secret_file)
        self._tasks = {}

    def submit(self, circuit, workflow, request_data=False, logging_level=None, max_logging_depth=-1,
               data=None):
        """Starts compiling circuit with workflow; returns the task's id."""
        from bqskit.compiler.task import CompilationTask
        from bqskit.compiler.workflow import Workflow
        task = CompilationTask(circuit, Workflow(workflow))
        return self.submit_task(task, request_data, logging_level, max_logging_depth, data)

    def submit_task(self, task, request_data=False, logging_level=None, max_logging_depth=-1, data=None):
        """Starts a CompilationTask (anything with an async run() and a
        task_id); returns its id."""
        task.request_data = request_data
        if data is not None:
            task.data.update(data)
        c = self._client
        level = None if logging_level is None else _task.py_to_slog(logging_level)
        fut = c._start("python", [(c._path,)], [_task.payload(c._fn_bytes(_run), (task,), {})], True,
                       _loads, log_depth=max_logging_depth + 1 if max_logging_depth >= 0 else 0,
                       log_level=level)
        task_id = getattr(task, "task_id", None) or uuid.uuid4()
        self._tasks[task_id] = fut
        return task_id

    def status(self, task_id):
        fut = self._tasks.get(task_id)
        if fut is None:
            return CompilationStatus.UNKNOWN
        return CompilationStatus.DONE if fut.done() else CompilationStatus.RUNNING

    def result(self, task_id):
        """Blocks until the compilation is done; its circuit, or (circuit,
        data) when request_data was set. Its errors raise qlaunch.TaskError
        with the remote traceback."""
        fut = self._tasks.get(task_id)
        if fut is None:
            raise RuntimeError("qlaunch.bqskit: unknown task %s" % task_id)
        try:
            return fut.result()
        finally:
            if fut.done():
                self._tasks.pop(task_id, None)

    def cancel(self, task_id):
        fut = self._tasks.pop(task_id, None)
        if fut is not None:
            fut.cancel()
        return True

    def compile(self, circuit, workflow, request_data=False, logging_level=None, max_logging_depth=-1,
                data=None):
        """Compiles circuit with workflow and waits for the result."""
        return self.result(self.submit(circuit, workflow, request_data, logging_level,
                                       max_logging_depth, data))

    def close(self):
        self._client.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _loads(b):
    import pickle
    return pickle.loads(b)
