"""How a Python task travels: the payload of a "python" kernel task, and
its result. Shared by the client and the executors."""

import os
import pickle
import struct
import sys

import cloudpickle

_U32 = struct.Struct(">I")

# An empty call (no arguments, no options), pickled once.
_EMPTY_CALL = None


def dumps(obj):
    """Pickles obj; functions, closures and lambdas by value where needed."""
    return cloudpickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)


def encode_fn(fn):
    b = dumps(fn)
    return _U32.pack(len(b)) + b


def encode_call(args, kwargs, task_name=None, log_context=None):
    """The part of a payload after the function."""
    global _EMPTY_CALL
    if not args and not kwargs and task_name is None and not log_context:
        if _EMPTY_CALL is None:
            _EMPTY_CALL = dumps(((), {}, None, None))
        return _EMPTY_CALL
    return dumps((tuple(args), kwargs, task_name, log_context or None))


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
    entry (the current directory) is made absolute."""
    seen = []
    for p in sys.path:
        p = os.path.abspath(p) if p == "" else p
        if p and p not in seen:
            seen.append(p)
    return os.pathsep.join(seen)


def py_to_slog(level):
    """Python logging level → slog level (DEBUG -4, INFO 0, WARNING 4, ERROR 8)."""
    return (level - 20) * 4 // 10


def slog_to_py(level):
    return level * 10 // 4 + 20
