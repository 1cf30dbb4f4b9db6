"""How a Python task travels: the payload of a "python" kernel task, and
its result. Shared by the client and the executors."""

import functools
import os
import pickle
import struct
import sys

_U32 = struct.Struct(">I")

# An empty call (no arguments, no options), pickled once.
_EMPTY_CALL = None


def dumps(obj):
    """Pickles obj; functions, closures and lambdas by value where needed.
    cloudpickle is imported on first use: an executor that only returns
    plain values never needs it (pickles it made import it as they load)."""
    import cloudpickle
    return cloudpickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)


def dumps_data(obj):
    """Pickles a call's arguments (or its function): plain pickle when that is certain to
    load on an executor (ten times faster than cloudpickle, which builds a
    pickler per call), else cloudpickle. Plain pickle refers to functions
    and classes by name; it fails on those it cannot name (lambdas, local
    functions), and names in __main__ (the client's script) do not exist on
    an executor: both go to cloudpickle, which sends them by value, as do
    all calls once a module is registered with cloudpickle to travel by
    value."""
    if not _by_value_modules():
        try:
            b = pickle.dumps(obj, pickle.HIGHEST_PROTOCOL)
        except Exception:
            pass
        else:
            if b"__main__" not in b:
                return b
    return dumps(obj)


def _by_value_modules():
    """Whether cloudpickle, if imported, has modules registered to travel
    by value (cloudpickle.register_pickle_by_value)."""
    cp = sys.modules.get("cloudpickle.cloudpickle")
    return bool(getattr(cp, "_PICKLE_BY_VALUE_MODULES", None))


def dumps_result(value):
    """Pickles a task's result: plain pickle when it can (a few times
    faster), cloudpickle for what only it can (lambdas, classes made at run
    time). Results may reference any module the executor imported, which
    the client can import too (the executors' sys.path comes from it)."""
    try:
        return pickle.dumps(value, pickle.HIGHEST_PROTOCOL)
    except Exception:
        return dumps(value)


class Retryable:
    """A function marked retryable (qlaunch.retryable): the client sends it
    as a task that the runtime places again when the worker rank running it
    is lost. Calling it calls the function."""

    def __init__(self, fn):
        if isinstance(fn, Retryable):
            fn = fn.fn
        if not callable(fn):
            raise TypeError("qlaunch.retryable: %r is not callable" % (fn,))
        self.fn = fn
        functools.update_wrapper(self, fn)

    def __call__(self, *args, **kwargs):
        return self.fn(*args, **kwargs)

    def __repr__(self):
        return "qlaunch.retryable(%r)" % (self.fn,)


def retryable(fn):
    """Marks fn retryable: a task of it that a client submits or maps, lost
    with its worker rank (killed, its node gone), runs again on another
    rank or the rank's replacement instead of failing, up to the runtime's
    retry limit, as the Go kernels marked Retryable do. Use it only for
    functions that are safe to run twice (their effects are idempotent).
    As a call, ``client.submit(qlaunch.retryable(f), x)``, or a decorator.
    Tasks a task starts (get_runtime().submit/map) are retried when marked
    so, or given retry=True."""
    return Retryable(fn)


def unwrap(fn):
    """Returns (fn without a Retryable mark, whether it had one)."""
    if isinstance(fn, Retryable):
        return fn.fn, True
    return fn, False


def encode_fn(fn):
    """The function part of a payload: its length, then the function
    pickled as dumps_data pickles (by reference where plain pickle can,
    the bytes cloudpickle would give; so a client whose functions and
    arguments live in modules never imports cloudpickle, a tenth of a
    second of its start-up)."""
    b = dumps_data(fn)
    return _U32.pack(len(b)) + b


def encode_call(args, kwargs, task_name=None, log_context=None):
    """The part of a payload after the function."""
    global _EMPTY_CALL
    if not args and not kwargs and task_name is None and not log_context:
        if _EMPTY_CALL is None:
            _EMPTY_CALL = pickle.dumps(((), {}, None, None), pickle.HIGHEST_PROTOCOL)
        return _EMPTY_CALL
    return dumps_data((tuple(args), kwargs, task_name, log_context or None))


def encode_calls(rows, kwargs, names=None, ctxs=None):
    """The call bytes (encode_call) of fn(*row, **kwargs) for each row (a
    tuple) of a map, task name names[i] and log context ctxs[i] (None: no
    names, no contexts), in one pass: plain pickle where dumps_data would
    choose it, decided per call the same way."""
    if _by_value_modules():
        return [dumps((row, kwargs, None if names is None else names[i],
                       (ctxs[i] or None) if ctxs is not None else None)) for i, row in enumerate(rows)]
    pdumps = pickle.dumps
    highest = pickle.HIGHEST_PROTOCOL

    def one(call):
        # dumps_data, without asking _by_value_modules once per call.
        try:
            b = pdumps(call, highest)
        except Exception:
            return dumps(call)
        return dumps(call) if b"__main__" in b else b

    if names is None and ctxs is None:
        return [one((row, kwargs, None, None)) for row in rows]
    return [one((row, kwargs, None if names is None else names[i],
                 (ctxs[i] or None) if ctxs is not None else None)) for i, row in enumerate(rows)]


def payload(fn_bytes, args, kwargs, task_name=None, log_context=None):
    return fn_bytes + encode_call(args, kwargs, task_name, log_context)


def split(payload):
    """Returns (function bytes, call bytes) of a payload."""
    if len(payload) < 4:
        raise ValueError("python task payload of %d bytes" % len(payload))
    (n,) = _U32.unpack_from(payload)
    if n > len(payload) - 4:
        raise ValueError("python task payload: function past the end")
    return payload[4:4 + n], payload[4 + n:]


def client_path():
    """The client's sys.path as a task argument: what executors add to
    theirs, so functions of the client's modules unpickle there. The empty
    entry (the current directory) is made absolute. The interpreter's own
    directories (see _interpreter_dirs) are left out: every task carries
    this string, and an executor's interpreter has its own."""
    own = _interpreter_dirs()
    seen = []
    for p in sys.path:
        p = os.path.abspath(p) if p == "" else p
        if p and p not in seen and p not in own:
            seen.append(p)
    return os.pathsep.join(seen)


def _interpreter_dirs():
    """The directories of the running interpreter's installation on
    sys.path: its standard library (and lib-dynload, and the zip) and,
    outside a virtual environment, its site-packages. A virtual
    environment's site-packages is kept: executors may run the base
    interpreter and find the environment's packages only so."""
    std = os.path.dirname(os.__file__)
    dirs = {std, os.path.join(std, "lib-dynload"),
            os.path.join(sys.base_prefix, "lib", "python%d%d.zip" % sys.version_info[:2])}
    if sys.prefix == sys.base_prefix:
        import site
        try:
            dirs.update(site.getsitepackages())
        except AttributeError:  # an embedded or old site module
            pass
    return dirs


def py_to_slog(level):
    """Python logging level → slog level (DEBUG -4, INFO 0, WARNING 4, ERROR 8)."""
    return (level - 20) * 4 // 10


def slog_to_py(level):
    return level * 10 // 4 + 20


def chunk_sizes(n, chunksize):
    """The sizes of the chunks of a map of n calls; None when each call is
    a task of its own."""
    if chunksize is None or chunksize <= 1 or n <= 1:
        return None
    return [min(chunksize, n - i) for i in range(0, n, chunksize)]


def map_payloads(fn_bytes, calls, chunks):
    """The task payloads of a map: one per call, or one per chunk (the
    pickled list of its calls)."""
    if chunks is None:
        return [fn_bytes + c for c in calls]
    return [fn_bytes + c for c in chunk_payloads(calls, chunks)]


def chunk_payloads(calls, chunks):
    """The call bytes of a chunked map's tasks: each chunk's calls pickled
    as one list."""
    out = []
    i = 0
    for k in chunks:
        out.append(dumps_data(calls[i:i + k]))
        i += k
    return out


def chunk_calls(args, kwargs, task_name=None, log_context=None):
    """A call of a chunked map (not pickled: the chunk is pickled whole)."""
    return (tuple(args), kwargs, task_name, log_context or None)


def values(pickled, chunks, error):
    """The values of a map's results (each task's pickled value, in order),
    chunks expanded; error(text) makes the exception of a failed call."""
    loads = pickle.loads
    if chunks is None:
        return [loads(v) for v in pickled]
    out = []
    for v in pickled:
        for ok, b in loads(v):
            if not ok:
                raise error(b.decode("utf-8", "replace"))
            out.append(loads(b))
    return out


def pairs(results, chunks, error):
    """(index, value) pairs of finished tasks given as (task index, ok,
    pickled value or error text), chunks expanded."""
    loads = pickle.loads
    out = []
    starts = None
    if chunks is not None:
        starts = [0]
        for k in chunks:
            starts.append(starts[-1] + k)
    for idx, ok, b in results:
        if not ok:
            raise error(b.decode("utf-8", "replace"))
        if starts is None:
            out.append((idx, loads(b)))
            continue
        for j, (ok2, b2) in enumerate(loads(b)):
            if not ok2:
                raise error(b2.decode("utf-8", "replace"))
            out.append((starts[idx] + j, loads(b2)))
    return out
