"""A warm Python interpreter of a worker rank (run as python3 -m
qlaunch._executor by the Go kernel kernels/python).

It reads messages on fd 3 and writes on fd 4 (see kernels/python/doc.go):
runs tasks (functions, or coroutine functions whose awaits of child futures
suspend them), relays their child submissions and waits to the Go kernel,
and forwards their logging records. One task's code runs at a time; tasks
suspended in an await wait in the Go runtime, which has given their slot
back. A plain task that calls a future's result() blocks the interpreter
(see Executor.block): the kernel gives its slot back and gives the
interpreter no other task until the reply.
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

VERSION = b"qlaunch-executor 4"

(HELLO, RUN, PATH, RESUME, CANCEL_TASK, DONE, MAP, WAIT, NEXT, CANCEL, LOG, SYNC, MAP_RETRY,
 RUN_SAME, MAP_FN, MAP_FN_RETRY) = range(1, 17)
REPLY_OK, REPLY_ERROR, REPLY_CANCELLED, REPLY_NO_MORE = 0, 1, 2, 3

_HDR = struct.Struct(">IBQ")
_dumps = pickle.dumps
_HIGHEST = pickle.HIGHEST_PROTOCOL
_U32 = struct.Struct(">I")
_I32 = struct.Struct(">i")
# The head of a successful done message: header and status byte.
_DONE_OK = struct.Struct(">IBQB")
# None, the result of most short tasks, pickled once.
_NONE = pickle.dumps(None, pickle.HIGHEST_PROTOCOL)
# READ_SIZE is what one read of fd 3 takes at most (the pipe's buffer is
# 64 KiB; a batch of tasks comes in one write).
READ_SIZE = 1 << 18


class _Task:
    """One Go-level task: one call, or a chunk of calls of one function
    (a map's chunksize), each run as an _Item."""

    __slots__ = ("id", "name", "log_context", "level", "next_fid", "chunk", "results",
                 "pending", "waitq", "items", "cancelled")

    def __init__(self, tid, level):
        self.id = tid
        self.name = None
        self.log_context = None
        self.level = level
        self.next_fid = 0
        self.chunk = False
        self.results = None
        self.pending = 0
        self.waitq = collections.deque()  # (item or _Block, request): waits sent, in order
        self.items = []
        self.cancelled = False  # cancelled while blocked: its outcome is not sent


class _Item:
    __slots__ = ("task", "index", "coro")

    def __init__(self, task, index, coro):
        self.task = task
        self.index = index
        self.coro = coro


class _Block:
    """A blocking wait of a plain task (Executor.block): where resume puts
    its reply, (value, exception)."""

    __slots__ = ("reply",)

    def __init__(self):
        self.reply = None


class Executor:
    def __init__(self, rfd, wfd):
        self.rfd = rfd
        self.wfd = wfd
        # rbuf holds what fd 3 gave, read in place (os.readv): rbuf[:rlen]
        # is a message's first part, not yet whole (see receive).
        self.rbuf = bytearray(READ_SIZE)
        self.rlen = 0
        self.recv_run = None  # the body of the last run read: a run-same's function
        self.same_src = None  # the run body whose function same_fn is
        self.same_fn = None   # (function, None) or (None, the error text)
        self.inbox = collections.deque()   # messages read, not yet handled
        self.deferred = collections.deque()  # runs received while a task blocked
        self.stepping = False  # a coroutine step runs
        self.blocking = False  # a task blocks in result()
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

    def map(self, t, payloads, single, chunks=None, retry=False, fn_bytes=None):
        """Sends a map of t's children: one task per payload, or, when
        fn_bytes is given, per call (payloads are then the calls alone):
        a map-function message carries the function once, and the kernel
        makes each child's payload fn_bytes + call."""
        t.next_fid += 1
        fid = t.next_fid
        pack = _U32.pack
        if fn_bytes is None:
            parts = [pack(fid), pack(len(payloads))]
            typ = MAP_RETRY if retry else MAP
        else:
            parts = [pack(fid), pack(len(fn_bytes)), fn_bytes, pack(len(payloads))]
            typ = MAP_FN_RETRY if retry else MAP_FN
        append = parts.append
        for p in payloads:
            append(pack(len(p)))
            append(p)
        self.send(typ, t.id, b"".join(parts))
        n = len(payloads) if chunks is None else sum(chunks)
        return _rt.RuntimeFuture(fid, t, single, n, chunks)

    def cancel(self, t, fut):
        if fut._task is not t:
            raise ValueError("qlaunch: a future can be cancelled only by the task that made it")
        self.send(CANCEL, t.id, _U32.pack(fut._fid))

    def block(self, t, fut, kind):
        """Waits for fut's reply ("wait": its values; "next": the pairs
        that finished) with the interpreter blocked: a plain task's
        result(). The kernel serves the wait as an await's, giving the
        slot back, and gives this interpreter no other task meanwhile (the
        pool starts another), so nested blocking waits of any depth never
        deadlock: each holds an interpreter, not a slot. Meanwhile the
        runs of the blocked task's batch behind it are held until it ends,
        and the other messages are handled: resumes of suspended async
        tasks step them here, above the blocked frame (they cannot block:
        an await never blocks, and result() in a coroutine is refused)."""
        if self.stepping or self.blocking:
            raise RuntimeError("qlaunch: result() blocks the interpreter and is for plain (def) "
                               "tasks; in an async def task, await the future instead")
        if fut._task is not t:
            raise ValueError("qlaunch: a future can be waited on only by the task that made it")
        blk = _Block()
        t.waitq.append((blk, (kind, fut)))
        self.send(WAIT if kind == "wait" else NEXT, t.id, _U32.pack(fut._fid), b"\x01")
        current = _rt._current
        registered = t.id not in self.tasks
        if registered:
            self.tasks[t.id] = t  # where resume finds it
        self.blocking = True
        try:
            while blk.reply is None:
                if not self.inbox:
                    self.flush()
                    while not self.inbox:  # a read may bring part of a message
                        if not self.receive():
                            os._exit(0)  # the kernel closed the pipe: the rank is gone
                typ, tid, body = self.inbox.popleft()
                if typ == RUN or typ == RUN_SAME:
                    self.deferred.append((typ, tid, body))
                elif typ == CANCEL_TASK and tid == t.id:
                    t.cancelled = True
                    self.cancel_task(tid)
                    raise CancelledError("qlaunch: the task was cancelled while it waited")
                elif typ == CANCEL_TASK and any(m[1] == tid for m in self.deferred):
                    # A held run cancelled before it started: drop it (acknowledged once).
                    keep = [m for m in self.deferred if m[1] != tid]
                    self.deferred.clear()
                    self.deferred.extend(keep)
                    self.cancel_task(tid)
                else:
                    self.handle(typ, tid, body)
                    while self.ready:
                        self.step(*self.ready.popleft())
        finally:
            self.blocking = False
            _rt._current = current
            if registered and self.tasks.get(t.id) is t:
                del self.tasks[t.id]
        value, exc = blk.reply
        if exc is not None:
            raise exc
        return value

    # --- tasks ----------------------------------------------------------

    def function(self, fb):
        fn = self.fns.get(fb)
        if fn is None:
            fn = pickle.loads(fb)
            if len(self.fns) >= 256:
                self.fns.clear()
            self.fns[fb] = fn
        return fn

    def fn_of(self, body):
        """The function of a run's body (level byte | payload, see
        _task.split), unpickled once per distinct function bytes; raises
        when it cannot be had."""
        if len(body) < 5:
            raise ValueError("python task payload of %d bytes" % (len(body) - 1))
        (n,) = _U32.unpack_from(body, 1)
        if n > len(body) - 5:
            raise ValueError("python task payload: function past the end")
        fb = body[5:5 + n]
        fn = self.fns.get(fb)
        if fn is None:
            fn = self.function(fb)
        return fn, 5 + n

    def run(self, tid, body):
        """A run message: body is level byte | payload."""
        try:
            fn, k = self.fn_of(body)
        except BaseException:
            self.unpickle_failed(tid)
            return
        self.call(tid, body[0], fn, memoryview(body)[k:])

    def run_same(self, tid, pair):
        """A run-same message: the function of the run before it on the
        pipe (src, as receive paired them), the call of its own body, level
        byte | call bytes. The function is looked up once per run it
        follows, not once per task: a map's tasks reach an executor as one
        run and run-same messages of the calls alone (the kernel sends the
        pickled function once per batch)."""
        src, body = pair
        if src is None:
            self.send(DONE, tid, b"\x01", b"python executor: a run-same message before any run")
            return
        if src is not self.same_src:
            try:
                self.same_fn = self.fn_of(src)[0], None
            except BaseException:
                self.same_fn = None, _unpickle_error()
            self.same_src = src
        fn, err = self.same_fn
        if fn is None:
            self.send(DONE, tid, b"\x01", err)
            return
        if not body:
            self.send(DONE, tid, b"\x01", b"python executor: a run-same message without its level")
            return
        self.call(tid, body[0], fn, memoryview(body)[1:])

    def unpickle_failed(self, tid):
        self.send(DONE, tid, b"\x01", _unpickle_error())

    def call(self, tid, level, fn, call_bytes):
        """Runs the call (or chunk of calls) call_bytes of fn as task tid."""
        t = _Task(tid, level if level < 128 else level - 256)
        try:
            calls = pickle.loads(call_bytes)
        except BaseException:
            self.unpickle_failed(tid)
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
            if t.cancelled:
                return
            if type(r) is not types.CoroutineType:
                try:
                    v = _NONE if r is None else _dumps(r, _HIGHEST)
                except Exception:
                    t.results, t.pending = [None], 1
                    self.item_done(_Item(t, 0, None), True, r)
                    return
                out = self.out
                out.append(_DONE_OK.pack(10 + len(v), DONE, tid, 0))
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
        self.stepping = True
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
            self.stepping = False
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
        if t.cancelled:
            return
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
        reply = _reply(kind, fut, body)
        if type(item) is _Block:
            item.reply = reply
        else:
            self.ready.append((item,) + reply)

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

    def receive(self):
        """Reads what fd 3 has into the inbox; False when it closed. The
        read goes into rbuf in place (os.readv) and each message is copied
        out of it once: a read into a new bytes object and the joining of
        a kept bytearray cost several copies of every run's bytes (a
        profile of a 10,000-task map). A run-same message is given the body
        of the run before it on the pipe, whose function it calls (see
        run_same): that is its meaning in the order the kernel wrote it,
        whatever order runs are later handled in (held, dropped)."""
        buf = self.rbuf
        end = self.rlen
        k = os.readv(self.rfd, [memoryview(buf)[end:]])
        if not k:
            return False
        end += k
        mv = memoryview(buf)
        i = 0
        hdr = _HDR
        inbox = self.inbox
        append = inbox.append
        last = self.recv_run
        need = 0
        while end - i >= 13:
            n, typ, tid = hdr.unpack_from(buf, i)
            if end - i < 4 + n:
                need = 4 + n
                break
            body = mv[i + 13:i + 4 + n].tobytes()
            if typ == RUN:
                last = body
            elif typ == RUN_SAME:
                body = (last, body)
            append((typ, tid, body))
            i += 4 + n
        mv.release()
        self.recv_run = last
        if i and i < end:
            buf[:end - i] = buf[i:end]  # the start of the next message
        if need > len(buf):
            buf.extend(bytes(need - len(buf)))
        self.rlen = end - i
        return True

    def serve(self):
        """Handles messages until fd 3 closes. All the messages one read
        brings are handled before their replies are written, in one write
        (the kernel sends a batch of tasks in one), unless handling them
        takes longer than FLUSH_AFTER: then what is ready goes at once, so
        a finished task's result does not wait for long ones behind it.
        Runs held while a task blocked (deferred) go first, in order."""
        self.send(HELLO, 0, VERSION)
        self.flush()
        inbox, deferred = self.inbox, self.deferred
        clock = time.monotonic
        last = clock()
        while True:
            if deferred:
                typ, tid, body = deferred.popleft()
            else:
                if not inbox:
                    self.flush()
                    while not inbox:  # a read may bring part of a message
                        if not self.receive():
                            return
                    last = clock()
                typ, tid, body = inbox.popleft()
            if typ == RUN_SAME:
                self.run_same(tid, body)
            elif typ == RUN:
                self.run(tid, body)
            else:
                self.handle(typ, tid, body)
            while self.ready:
                self.step(*self.ready.popleft())
            if self.out and clock() - last > FLUSH_AFTER:
                self.flush()
                last = clock()

    def handle(self, typ, tid, body):
        if typ == RUN_SAME:
            self.run_same(tid, body)
        elif typ == RUN:
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


def _unpickle_error():
    return ("could not unpickle the task (is its module on the executor's sys.path?):\n"
            + traceback.format_exc()).encode()


def _format_exc():
    et, ev, tb = sys.exc_info()
    # Drop the executor's own frame.
    if tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    return "".join(traceback.format_exception(et, ev, tb)).rstrip()


def _child_error(text):
    return _rt._error(text)


def _reply(kind, fut, body):
    """(value, exception) of a resume's body for a wait or next of fut."""
    status = body[0]
    if status == REPLY_CANCELLED:
        return None, CancelledError(body[1:].decode("utf-8", "replace"))
    if status == REPLY_NO_MORE:
        return None, RuntimeError("qlaunch: next() on a future whose results were all taken (or awaited)")
    if status != REPLY_OK:
        return None, _child_error(body[1:].decode("utf-8", "replace"))
    try:
        if kind == "wait":
            return fut._values(_decode_values(body, 1)), None
        return fut._pairs(_decode_next(body)), None
    except BaseException as e:
        return None, e


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
