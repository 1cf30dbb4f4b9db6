"""The in-task API: qlaunch.get_runtime() inside a Python task.

The handle has the shape of BQSKit's RuntimeHandle: submit, map, cancel,
next and get_cache, with futures awaitable from ``async def`` tasks. A
task awaiting a future gives its worker slot back until the result is in,
so nested fork-join of any depth runs on any number of slots, one included.

Plain (``def``) tasks wait with ``future.result()`` (and
``get_runtime().next(future).result()``): the slot is given back too, but
the task holds its interpreter meanwhile (the worker starts another for
other tasks), so prefer ``async def`` for wide nesting. ``retry=True`` on
submit/map (or a function marked qlaunch.retryable) makes the children
retryable: placed again when the worker rank running them is lost.
"""

from . import _task

# Set by the executor: the task whose code is running, and the executor.
_current = None
_executor = None


class RuntimeFuture:
    """The result of a child submit (one value) or map (a list, in input
    order). Await it inside an async task: ``value = await future``."""

    __slots__ = ("_fid", "_task", "_single", "n", "_done", "_chunks")

    def __init__(self, fid, task, single, n, chunks=None):
        self._fid = fid
        self._task = task
        self._single = single
        self.n = n
        self._done = False
        self._chunks = chunks

    def _values(self, pickled):
        vals = _task.values(pickled, self._chunks, _error)
        return vals[0] if self._single else vals

    def _pairs(self, results):
        return _task.pairs(results, self._chunks, _error)

    def __reduce__(self):
        raise RuntimeError("qlaunch: a RuntimeFuture must be awaited in the task that created it; "
                           "it cannot be sent to another task")

    def __await__(self):
        value = yield ("wait", self)
        self._done = True
        return value

    def result(self):
        """Waits for the value (a list for a map), blocking: for plain
        (def) tasks, where await is not possible. Raises the child's error,
        or qlaunch.CancelledError. The task's slot is given back while it
        waits; its interpreter is not (see the module's doc)."""
        value = _executor.block(_running("result"), self, "wait")
        self._done = True
        return value

    def __repr__(self):
        return "<qlaunch RuntimeFuture %d of %d task(s)>" % (self._fid, self.n)


class _Next:
    __slots__ = ("future",)

    def __init__(self, future):
        self.future = future

    def __await__(self):
        return (yield ("next", self.future))

    def result(self):
        """The (index, result) pairs, waiting for at least one, blocking:
        for plain (def) tasks (see RuntimeFuture.result)."""
        return _executor.block(_running("next"), self.future, "next")


class RuntimeHandle:
    """The runtime as a running Python task sees it (get_runtime())."""

    def submit(self, fn, *args, task_name=None, log_context={}, retry=False, **kwargs):
        """Starts fn(*args, **kwargs) as a child task; returns its future
        (await it, or call its result() in a plain task). retry=True (or fn
        marked qlaunch.retryable) makes the child retryable: placed again
        when its worker rank is lost; only for functions safe to run twice."""
        t = _running("submit")
        fn, marked = _task.unwrap(fn)
        call = _task.encode_call(args, kwargs, task_name, log_context)
        return _executor.map(t, [call], True, None, retry or marked, _task.encode_fn(fn))

    def map(self, fn, *args, task_name=None, log_context={}, chunksize=None, retry=False, **kwargs):
        """Starts fn(a, b, …, **kwargs) for each a, b, … of zip(*args);
        awaiting the future (or its result() in a plain task) gives the
        results in input order. task_name and log_context are one for all
        calls, or a sequence of one per call; retry as for submit.

        chunksize k > 1 runs the calls k to a task (each chunk in one
        executor, in order): much cheaper for short functions, coarser for
        load balance and cancellation."""
        t = _running("map")
        fn, marked = _task.unwrap(fn)
        fb = _task.encode_fn(fn)
        rows = list(zip(*args))
        names = _per_call(task_name, len(rows), str)
        ctxs = _per_call(log_context, len(rows), dict)
        chunks = _task.chunk_sizes(len(rows), chunksize)
        if chunks is None:
            if task_name is None and not log_context:
                names = ctxs = None
            calls = _task.encode_calls(rows, kwargs, names, ctxs)
            return _executor.map(t, calls, False, None, retry or marked, fb)
        calls = [_task.chunk_calls(a, kwargs, names[i], ctxs[i]) for i, a in enumerate(rows)]
        return _executor.map(t, _task.chunk_payloads(calls, chunks), False, chunks, retry or marked, fb)

    def cancel(self, future):
        """Stops future's tasks and their descendants; awaiting it raises
        qlaunch.CancelledError."""
        t = _running("cancel")
        _executor.cancel(t, future)

    def next(self, future):
        """An awaitable of the (index, result) pairs of future that finished
        since the last call, waiting for at least one."""
        _running("next")
        return _Next(future)

    def get_cache(self):
        """A dict private to this executor, kept between tasks."""
        return _executor.cache

    @property
    def rank(self):
        return _executor.rank

    @property
    def task_name(self):
        t = _running("task_name")
        return t.name


_handle = RuntimeHandle()


def _per_call(v, n, one):
    """A per-call list of a map option given once or per call."""
    if v is None or isinstance(v, one):
        return [v] * n
    v = list(v)
    if len(v) != n:
        raise ValueError("qlaunch: map of %d calls given %d per-call values" % (n, len(v)))
    return v


def _error(text):
    from .errors import TaskError
    return TaskError(text, "python")


def _running(what):
    if _current is None or _executor is None:
        raise RuntimeError("qlaunch: get_runtime().%s is only available inside a qlaunch task" % what)
    return _current


def get_runtime():
    """The handle of the runtime running this task."""
    if _executor is None:
        raise RuntimeError("qlaunch.get_runtime() is only available inside a qlaunch task")
    return _handle
