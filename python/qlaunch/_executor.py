"""A warm Python interpreter of a worker rank (run as python3 -m
qlaunch._executor by the Go kernel kernels/python).

It reads messages on fd 3 and writes on fd 4 (see kernels/python/doc.go):
runs tasks (functions, or coroutine functions whose awaits of child futures
suspend them), relays their child submissions and waits to the Go kernel,
and forwards their logging records. One task's code runs at a time; tasks
suspended in an await wait in the Go runtime, which has given their slot
back.
"""

import collections
import logging
import os
import pickle
import signal
import struct
import sys
import time
import traceback
import types

from . import _task
from . import runtime as _rt
from .errors import CancelledError

VERSION = b"qlaunch-executor 2"

HELLO, RUN, PATH, RESUME, CANCEL_TASK, DONE, MAP, WAIT, NEXT, CANCEL, LOG, SYNC = range(1, 13)
REPLY_OK, REPLY_ERROR, REPLY_CANCELLED, REPLY_NO_MORE = 0, 1, 2, 3

_HDR = struct.Struct(">IBQ")
_dumps = pickle.dumps
_HIGHEST = pickle.HIGHEST_PROTOCOL
_U32 = struct.Struct(">I")
_I32 = struct.Struct(">i")


class _Task:
    """One Go-level task: one call, or a chunk of calls of one function
    (a map's chunksize), each run as an _Item."""

    __slots__ = ("id", "name", "log_context", "level", "next_fid", "chunk", "results",
                 "pending", "waitq", "items")

    def __init__(self, tid, level):
        self.id = tid
        self.name = None
        self.log_context = None
        self.level = level
        self.next_fid = 0
        self.chunk = False
        self.results = None
        self.pending = 0
        self.waitq = collections.deque()  # (item, request): waits sent, in order
        self.items = []


class _Item:
    __slots__ = ("task", "index", "coro")

    def __init__(self, task, index, coro):
        self.task = task
        self.index = index
        self.coro = coro


class Executor:
    def __init__(self, rfd, wfd):
        self.rfd = rfd
        self.wfd = wfd
        self.tasks = {}
        self.ready = collections.deque()
        self.fns = {}
        self.cache = {}
        self.rank = int(os.environ.get("QLAUNCH_RANK", "-1") or -1)
        self.out = []

    # --- output ---------------------------------------------------------

    def send(self, typ, tid, *body):
        n = 9 + sum(len(b) for b in body)
        self.out.append(_HDR.pack(n, typ, tid))
        self.out.extend(body)

    def flush(self):
        if not self.out:
            return
        data = b"".join(self.out)
        self.out = []
        view = memoryview(data)
        while view:
            k = os.write(self.wfd, view)
            view = view[k:]

    # --- in-task API ----------------------------------------------------

    def map(self, t, payloads, single, chunks=None):
        t.next_fid += 1
        fid = t.next_fid
        parts = [_U32.pack(fid), _U32.pack(len(payloads))]
        for p in payloads:
            parts.append(_U32.pack(len(p)))
            parts.append(p)
        self.send(MAP, t.id, b"".join(parts))
        n = len(payloads) if chunks is None else sum(chunks)
        return _rt.RuntimeFuture(fid, t, single, n, chunks)

    def cancel(self, t, fut):
        if fut._task is not t:
            raise ValueError("qlaunch: a future can be cancelled only by the task that made it")
        self.send(CANCEL, t.id, _U32.pack(fut._fid))

    # --- tasks ----------------------------------------------------------

    def function(self, fb):
        fn = self.fns.get(fb)
        if fn is None:
            fn = pickle.loads(fb)
            if len(self.fns) >= 256:
                self.fns.clear()
            self.fns[fb] = fn
        return fn

    def run(self, tid, body):
        t = _Task(tid, body[0] if body[0] < 128 else body[0] - 256)
        try:
            fb, cb = _task.split(body[1:])
            fn = self.function(fb)
            calls = pickle.loads(cb)
        except BaseException:
            self.send(DONE, tid, b"\x01", ("could not unpickle the task (is its module on the "
                                            "executor's sys.path?):\n" + traceback.format_exc()).encode())
            return
        if type(calls) is tuple:
            # One call (not a chunk): the common case, on its fast path.
            args, kwargs, t.name, t.log_context = calls
            _rt._current = t
            try:
                r = fn(*args, **kwargs)
            except BaseException:
                _rt._current = None
                t.results, t.pending = [None], 1
                self.item_done(_Item(t, 0, None), False, _format_exc())
                return
            _rt._current = None
            if type(r) is not types.CoroutineType:
                try:
                    v = _dumps(r, _HIGHEST)
                except Exception:
                    t.results, t.pending = [None], 1
                    self.item_done(_Item(t, 0, None), True, r)
                    return
                out = self.out
                out.append(_HDR.pack(10 + len(v), DONE, tid))
                out.append(b"\x00")
                out.append(v)
                return
            t.results, t.pending = [None], 1
            item = _Item(t, 0, r)
            self.tasks[tid] = t
            t.items.append(item)
            self.step(item, None, None)
            return
        if isinstance(calls, list):
            t.chunk = True
        else:
            calls = [calls]
        t.results = [None] * len(calls)
        t.pending = len(calls)
        for i, (args, kwargs, name, ctx) in enumerate(calls):
            t.name, t.log_context = name, ctx
            item = _Item(t, i, None)
            _rt._current = t
            try:
                r = fn(*args, **kwargs)
            except BaseException:
                self.item_done(item, False, _format_exc())
                continue
            finally:
                _rt._current = None
            if type(r) is types.CoroutineType:
                item.coro = r
                if not t.items:
                    self.tasks[tid] = t
                t.items.append(item)
                self.step(item, None, None)
            else:
                self.item_done(item, True, r)

    def step(self, item, value, exc):
        t = item.task
        _rt._current = t
        try:
            if exc is not None:
                req = item.coro.throw(exc)
            else:
                req = item.coro.send(value)
        except StopIteration as e:
            self.item_done(item, True, e.value)
            return
        except BaseException:
            self.item_done(item, False, _format_exc())
            return
        finally:
            _rt._current = None
        if not (isinstance(req, tuple) and len(req) == 2 and isinstance(req[1], _rt.RuntimeFuture)):
            self.ready.append((item, None, RuntimeError(
                "qlaunch tasks can await only qlaunch futures (get_runtime().submit/map/next), not %r" % (req,))))
            return
        kind, fut = req
        if fut._task is not t:
            self.ready.append((item, None, ValueError("qlaunch: a future can be awaited only by the task that made it")))
            return
        t.waitq.append((item, req))
        self.send(WAIT if kind == "wait" else NEXT, t.id, _U32.pack(fut._fid))

    def item_done(self, item, ok, value):
        """Records one call's outcome; sends the task's result after its last."""
        t = item.task
        if ok:
            try:
                value = _task.dumps_result(value)
            except BaseException as e:
                ok, value = False, ("the task's result (%s) could not be pickled: %s: %s"
                                    % (type(value).__name__, type(e).__name__, e))
        if not ok:
            value = value.encode("utf-8", "replace")
        t.results[item.index] = (ok, value)
        t.pending -= 1
        if t.pending:
            return
        self.tasks.pop(t.id, None)
        if t.chunk:
            self.send(DONE, t.id, b"\x00", pickle.dumps(t.results, pickle.HIGHEST_PROTOCOL))
        else:
            ok, value = t.results[0]
            self.send(DONE, t.id, b"\x00" if ok else b"\x01", value)

    def resume(self, tid, body):
        t = self.tasks.get(tid)
        if t is None or not t.waitq:
            return
        item, (kind, fut) = t.waitq.popleft()
        status = body[0]
        if status == REPLY_CANCELLED:
            self.ready.append((item, None, CancelledError(body[1:].decode("utf-8", "replace"))))
            return
        if status == REPLY_NO_MORE:
            self.ready.append((item, None, RuntimeError(
                "qlaunch: next() on a future whose results were all taken (or awaited)")))
            return
        if status != REPLY_OK:
            self.ready.append((item, None, _child_error(body[1:].decode("utf-8", "replace"))))
            return
        try:
            if kind == "wait":
                value = fut._values(_decode_values(body, 1))
            else:
                value = fut._pairs(_decode_next(body))
        except BaseException as e:
            self.ready.append((item, None, e))
            return
        self.ready.append((item, value, None))

    def cancel_task(self, tid):
        t = self.tasks.pop(tid, None)
        if t is not None:
            _rt._current = t
            try:
                for item in t.items:
                    try:
                        item.coro.close()
                    except BaseException:
                        pass
            finally:
                _rt._current = None
        # Acknowledge: the kernel counts this executor busy until then.
        self.send(DONE, tid, b"\x01", b"cancelled")

    # --- loop -----------------------------------------------------------

    def serve(self):
        """Handles messages until fd 3 closes. All the messages one read
        brings are handled before their replies are written, in one write
        (the kernel sends a batch of tasks in one), unless handling them
        takes longer than FLUSH_AFTER: then what is ready goes at once, so
        a finished task's result does not wait for long ones behind it."""
        self.send(HELLO, 0, VERSION)
        self.flush()
        buf = bytearray()
        rfd = self.rfd
        hdr = _HDR
        clock = time.monotonic
        while True:
            chunk = os.read(rfd, 1 << 18)
            if not chunk:
                return
            buf += chunk
            i, end = 0, len(buf)
            last = clock()
            while end - i >= 13:
                n, typ, tid = hdr.unpack_from(buf, i)
                if end - i < 4 + n:
                    break
                body = bytes(buf[i + 13:i + 4 + n])
                i += 4 + n
                self.handle(typ, tid, body)
                while self.ready:
                    self.step(*self.ready.popleft())
                if self.out and clock() - last > FLUSH_AFTER:
                    self.flush()
                    last = clock()
            del buf[:i]
            self.flush()

    def handle(self, typ, tid, body):
        if typ == RUN:
            self.run(tid, body)
        elif typ == RESUME:
            self.resume(tid, body)
        elif typ == SYNC:
            self.send(SYNC, tid)
        elif typ == PATH:
            for p in body.decode("utf-8", "replace").split(os.pathsep):
                if p and p not in sys.path:
                    sys.path.append(p)
        elif typ == CANCEL_TASK:
            self.cancel_task(tid)


# FLUSH_AFTER is how long (s) replies may wait while later messages of one
# read are handled.
FLUSH_AFTER = 0.002


def _format_exc():
    et, ev, tb = sys.exc_info()
    # Drop the executor's own frame.
    if tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    return "".join(traceback.format_exception(et, ev, tb)).rstrip()


def _child_error(text):
    return _rt._error(text)


def _decode_values(body, i):
    """The pickled values of a wait reply, still pickled."""
    (n,) = _U32.unpack_from(body, i)
    i += 4
    out = []
    for _ in range(n):
        (k,) = _U32.unpack_from(body, i)
        i += 4
        out.append(body[i:i + k])
        i += k
    return out


def _decode_next(body):
    (n,) = _U32.unpack_from(body, 1)
    i = 5
    out = []
    for _ in range(n):
        idx, ok = struct.unpack_from(">IB", body, i)
        i += 5
        (k,) = _U32.unpack_from(body, i)
        i += 4
        chunk = body[i:i + k]
        i += k
        out.append((idx, ok == 0, chunk))
    return out


class _Forward(logging.Handler):
    """Sends the records of running tasks to the Go kernel, which forwards
    them to the client."""

    def __init__(self, ex):
        super().__init__(logging.DEBUG)
        self.ex = ex

    def emit(self, record):
        t = _rt._current
        if t is None or record.levelno < t.level:
            return
        try:
            msg = record.getMessage()
        except Exception:
            msg = str(record.msg)
        parts = [msg, "logger", record.name, "pylevel", str(record.levelno)]
        if t.name:
            parts += ["task_name", t.name]
        if t.log_context:
            for k, v in t.log_context.items():
                parts += ["ctx." + str(k), str(v)]
        if record.exc_info:
            parts += ["exc", "".join(traceback.format_exception(*record.exc_info))]
        enc = [_I32.pack(_task.py_to_slog(record.levelno)), _U32.pack(len(parts))]
        for p in parts:
            b = p.encode("utf-8", "replace")
            enc.append(_U32.pack(len(b)))
            enc.append(b)
        self.ex.send(LOG, t.id, b"".join(enc))


class _BqskitWorkerHook:
    """Makes bqskit.runtime.get_runtime() answer with qlaunch's handle in
    this executor: when bqskit.runtime.worker is imported (by any task, at
    any time), its worker object is set to the handle. (BQSKit's
    get_runtime returns that module's worker.)"""

    NAME = "bqskit.runtime.worker"

    def find_spec(self, name, path, target=None):
        if name != self.NAME:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(name, path, target)
            if spec is not None and spec.loader is not None:
                spec.loader = _SetWorker(spec.loader)
                return spec
        return None


class _SetWorker:
    def __init__(self, loader):
        self.loader = loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        self.loader.exec_module(module)
        module._worker = _rt.get_runtime()


def main():
    # An interrupt of the job reaches the whole process group; the worker
    # rank stops this executor (its pipe closes), as BQSKit's workers
    # leave SIGINT to their manager.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    ex = Executor(3, 4)
    _rt._executor = ex
    sys.meta_path.insert(0, _BqskitWorkerHook())
    root = logging.getLogger()
    root.addHandler(_Forward(ex))
    root.setLevel(logging.DEBUG)
    try:
        ex.serve()
    finally:
        try:
            ex.flush()
        except OSError:
            pass


if __name__ == "__main__":
    main()
