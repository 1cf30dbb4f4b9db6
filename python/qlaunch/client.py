"""The Python client of a qlaunch runtime."""

import logging
import os
import pickle
import socket
import struct
import threading
import time

from . import _task
from . import _wire as wire
from .errors import CancelledError, ConnectionLost, TaskError

DEFAULT_PORT = 7472
DEFAULT_ADDRESS_FILE = os.path.join(".qlaunch", "addr")
_INDEX_BITS = 32
_PYTHON = "python"
_PYTHON_RETRY = "python-retry"  # the same kernel, retryable (qlaunch.retryable)
# The most parts one sendmsg takes (Linux's IOV_MAX).
_IOV_MAX = 1024

_PENDING = object()


def find_address(address=None, address_file=None):
    """The server's HOST:PORT as the CLI finds it: address, else
    $QLAUNCH_ADDR, else the address file (address_file,
    $QLAUNCH_ADDRESS_FILE, or .qlaunch/addr)."""
    a = address or os.environ.get("QLAUNCH_ADDR")
    if not a:
        path = address_file or os.environ.get("QLAUNCH_ADDRESS_FILE") or DEFAULT_ADDRESS_FILE
        try:
            with open(path) as f:
                a = f.read().strip()
        except OSError as e:
            raise ConnectionError("no runtime found: no address given, no QLAUNCH_ADDR, and the "
                                  "address file %s: %s (start one with: qlaunch run TOPOLOGY.toml -- CMD)"
                                  % (path, e.strerror)) from None
        if not a:
            raise ConnectionError("no runtime found: the address file %s is empty" % path)
    if ":" not in a:
        a = "%s:%d" % (a, DEFAULT_PORT)
    return a


def find_secret_file(secret_file=None):
    """The job secret file as the CLI finds it: secret_file, else
    $QLAUNCH_SECRET_FILE, else qlaunch/secret in the user's configuration
    directory."""
    if secret_file:
        return secret_file
    p = os.environ.get("QLAUNCH_SECRET_FILE")
    if p:
        return p
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return os.path.join(base, "qlaunch", "secret")


class Future:
    """The result of one submit (one value) or map (a list in input order).

    result(timeout=None) waits for it; done() says whether it is in;
    cancel() stops its tasks."""

    def __init__(self, client, fid, n, single, decode, chunks=None):
        self._client = client
        self._fid = fid
        self._chunks = chunks
        self.n = n  # tasks in the runtime (chunks of a chunked map)
        self._single = single
        self._decode = decode
        self._vals = [_PENDING] * n
        self._errs = None
        self._arrived = []
        self._taken = 0
        self._done = 0
        self._cancelled = False

    def done(self):
        return self._done == self.n or self._cancelled or self._client._err is not None

    def result(self, timeout=None):
        """The value (submit) or list of values (map); raises the first
        task's error by index (TaskError with the remote traceback, rank and
        host), CancelledError, or ConnectionLost."""
        c = self._client
        with c._cv:
            if not c._cv.wait_for(self.done, timeout):
                raise TimeoutError("qlaunch: %d of %d results in after %s s" % (self._done, self.n, timeout))
            self._check()
            if self._errs:
                for e in self._errs:
                    if e is not None:
                        raise e
        if self._decode is pickle.loads:
            vals = _task.values(self._vals, self._chunks, self._item_error)
        else:
            vals = [self._decode(v) for v in self._vals]
        return vals[0] if self._single else vals

    def _item_error(self, text):
        return TaskError(text, _PYTHON)

    def _check(self):
        if self._cancelled:
            raise CancelledError("cancelled by the client")
        if self._done < self.n and self._client._err is not None:
            raise self._client._err

    def exception(self, timeout=None):
        try:
            self.result(timeout)
        except TimeoutError:
            raise
        except Exception as e:
            return e
        return None

    def cancel(self):
        """Stops this future's tasks (and their descendants) in the runtime."""
        self._client.cancel(self)

    def __repr__(self):
        return "<qlaunch Future %d: %d/%d done>" % (self._fid, self._done, self.n)


class Client:
    """A connection to a qlaunch runtime.

    address is HOST[:PORT] (default: $QLAUNCH_ADDR, else the address file);
    secret_file the job secret (default: $QLAUNCH_SECRET_FILE, else the
    user's). compression is what this end sends ("none" or "zstd"); what the
    server sends is decoded whatever it is. log_level is the lowest level of
    Python logging records tasks forward (default: the lowest level this
    process's loggers are configured at when a task is submitted); records
    reach the loggers of this process of the same name, which filter them as
    configured. log_depth > 0 forwards the records of that many levels of
    tasks only (1: the client's tasks, not their children); 0 all.

    Use it as a context manager, or call close(): the runtime cancels the
    tasks of a client that goes away.
    """

    def __init__(self, address=None, secret_file=None, *, address_file=None, compression="none",
                 timeout=10.0, log_level=None, log_depth=0, tls_ca=None, tls_cert=None, tls_key=None,
                 tls_server_name=None):
        self.address = find_address(address, address_file)
        key = wire.load_secret(find_secret_file(secret_file))
        self._codec = wire.Codec(compression)
        host, _, port = self.address.rpartition(":")
        tls = _tls_context(tls_ca, tls_cert, tls_key, tls_server_name)
        if tls is None:
            wire.aesgcm()  # the frame MAC's import, before the server's heartbeats start
        self._tls = tls is not None
        self._sock = socket.create_connection((host.strip("[]"), int(port)), timeout=timeout)
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            if tls is not None:
                self._sock = tls.wrap_socket(self._sock, server_hostname=tls_server_name)
        except BaseException:
            self._sock.close()
            raise
        try:
            self.server = self._handshake(key, tls is None)
        except BaseException:
            self._sock.close()
            raise
        self._sock.settimeout(None)
        self._rf = self._sock.makefile("rb", buffering=1 << 16)
        self._wlock = threading.Lock()
        self._cv = threading.Condition(threading.Lock())
        self._futures = {}
        self._partial_waiters = 0  # next() calls waiting: woken on every result batch
        self._next_fid = 0
        self._status = {}
        self._next_status = 0
        self._slots = None
        self._err = None
        self._path = _task.client_path()
        self._fn_cache = {}
        self._fixed_level = None if log_level is None else _task.py_to_slog(log_level)
        self.log_depth = log_depth
        self._reader = threading.Thread(target=self._read_loop, name="qlaunch-client-reader", daemon=True)
        self._reader.start()

    # --- connection -----------------------------------------------------

    def _handshake(self, key, mac):
        mine = wire.hello(os.urandom(wire.NONCE_SIZE), "client", -1, socket.gethostname())
        self._sock.sendall(wire.HEADER.pack(len(mine), wire.HELLO, 0) + mine)
        kind, theirs = self._read_handshake()
        if kind == wire.ERROR:
            raise wire.AuthError("server refused the connection: %s" % wire.decode_text(theirs))
        if kind != wire.HELLO:
            raise wire.ProtocolError("handshake: got %s, want hello" % wire.KIND_NAMES.get(kind, kind))
        _, nonce, role, rank, host = wire.decode_hello(theirs)
        if nonce == mine[2:2 + wire.NONCE_SIZE]:
            raise wire.AuthError("server echoed our nonce")
        p = wire.proof(key, wire.LABEL_CLIENT, mine, theirs)
        self._sock.sendall(wire.HEADER.pack(len(p), wire.AUTH, 0) + p)
        kind, sp = self._read_handshake()
        if kind == wire.ERROR:
            raise wire.AuthError("server %s refused our proof: is the job secret the same on both ends?" % host)
        if kind != wire.AUTH:
            raise wire.ProtocolError("handshake: got %s, want auth" % wire.KIND_NAMES.get(kind, kind))
        import hmac
        if not hmac.compare_digest(sp, wire.proof(key, wire.LABEL_SERVER, mine, theirs)):
            raise wire.AuthError("server %s did not prove the job secret" % host)
        if mac:  # without TLS, every later frame carries a MAC
            send_key, recv_key = wire.frame_keys(key, mine, theirs)
            self._codec.start_mac(send_key, recv_key)
        return {"role": role, "rank": rank, "host": host}

    def _recv_exact(self, n):
        buf = bytearray()
        while len(buf) < n:
            b = self._sock.recv(n - len(buf))
            if not b:
                raise ConnectionLost("qlaunch: the server closed the connection during the handshake")
            buf += b
        return bytes(buf)

    def _read_handshake(self):
        n, kind, flags = wire.HEADER.unpack(self._recv_exact(6))
        if n > wire.HANDSHAKE_MAX_FRAME or flags:
            raise wire.ProtocolError("handshake frame of %d bytes, flags %d" % (n, flags))
        return kind, self._recv_exact(n)

    def _send(self, frames):
        with self._wlock:
            if self._err is not None:
                raise self._err
            # Encoded under the lock: frame MACs count frames in the order
            # they are sent.
            parts = []
            for k, p in frames:
                parts.extend(self._codec.encode_parts(k, p))
            try:
                self._sendmsg(parts)
            except OSError as e:
                self._fail(ConnectionLost("qlaunch: connection lost: %s" % e))
                raise self._err from None

    def _sendmsg(self, parts):
        """Sends the byte strings parts in order: with sendmsg, the parts as
        they are (a map's frames are megabytes: joining them, and each
        frame's header, payload and MAC, copied them twice more), or joined
        on a TLS socket, which has no sendmsg."""
        sock = self._sock
        if self._tls:
            sock.sendall(b"".join(parts))
            return
        i = 0
        while i < len(parts):
            batch = parts[i:i + _IOV_MAX]
            n = sock.sendmsg(batch)
            for b in batch:
                if n < len(b):
                    break
                n -= len(b)
                i += 1
            if n:  # a part sent in part: its rest goes as the first of the next
                parts[i] = memoryview(parts[i])[n:]

    def _heartbeat(self):
        """Answers a heartbeat, unless a send is under way: any frame is a
        sign of life, and the reader must never wait behind a writer."""
        if not self._wlock.acquire(blocking=False):
            return
        try:
            if self._err is None:
                self._sendmsg(self._codec.encode_parts(wire.HEARTBEAT, b""))
        except OSError as e:
            self._wlock.release()
            self._fail(ConnectionLost("qlaunch: connection lost: %s" % e))
            return
        self._wlock.release()

    def _read_loop(self):
        rf = self._rf
        try:
            while True:
                h = rf.read(6)
                if len(h) < 6:
                    raise ConnectionLost("qlaunch: the server closed the connection")
                n, kind, flags = wire.HEADER.unpack(h)
                if n > self._codec.max_frame:
                    raise wire.ProtocolError("frame of %d bytes, limit %d" % (n, self._codec.max_frame))
                p = rf.read(n + self._codec.tag_size())
                if len(p) < n + self._codec.tag_size():
                    raise ConnectionLost("qlaunch: the server closed the connection")
                if self._codec.mac_recv is not None:
                    self._codec.verify(h, p[:n], p[n:])
                    p = p[:n]
                p = self._codec.decode(kind, flags, p)
                if kind == wire.RESULT:
                    self._on_results(p)
                elif kind == wire.HEARTBEAT:
                    self._heartbeat()
                elif kind == wire.LOG:
                    self._on_logs(p)
                elif kind in (wire.SHUTDOWN, wire.ERROR):
                    raise ConnectionLost("qlaunch: server: %s" % wire.decode_text(p))
                elif kind == wire.STATUS:
                    sid, ranks = wire.decode_status(p)
                    with self._cv:
                        if sid in self._status:
                            self._status[sid] = ranks
                            self._cv.notify_all()
                else:
                    raise wire.ProtocolError("unexpected %s message" % wire.KIND_NAMES.get(kind, kind))
        except ConnectionLost as e:
            self._fail(e)
        except (OSError, ValueError, wire.ProtocolError) as e:
            self._fail(ConnectionLost("qlaunch: connection lost: %s" % e))

    def _fail(self, err):
        with self._cv:
            if self._err is None:
                self._err = err
            self._cv.notify_all()
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _on_results(self, batch):
        decode = wire.decode_result
        finished = False
        with self._cv:
            for rid, body in wire.records(batch):
                f = self._futures.get(rid >> _INDEX_BITS)
                idx = rid & 0xFFFFFFFF
                if f is None or idx >= f.n or f._cancelled or f._vals[idx] is not _PENDING:
                    continue
                if body[0] == wire.RESULT_OK and len(body) > 1 and body[1] < 0x80:
                    # Fast path: a value shorter than 128 bytes.
                    f._vals[idx] = body[2:2 + body[1]]
                else:
                    status, value, msg, kernel, rank, host = decode(body)
                    if status == wire.RESULT_OK:
                        f._vals[idx] = value
                    else:
                        f._vals[idx] = None
                        if f._errs is None:
                            f._errs = [None] * f.n
                        cls = CancelledError if status == wire.RESULT_CANCELLED else TaskError
                        f._errs[idx] = cls(msg, kernel, rank, host, status == wire.RESULT_LOST,
                                           status == wire.RESULT_CANCELLED)
                f._arrived.append(idx)
                f._done += 1
                if f._done == f.n:
                    del self._futures[f._fid]
                    finished = True
            # Waiters of whole futures (result, as_completed) wake when one
            # finishes; waiters of partial results (next) on every batch.
            if finished or self._partial_waiters:
                self._cv.notify_all()

    def _on_logs(self, b):
        i = 0
        while i < len(b):
            rec, i = wire.decode_log(b, i)
            attrs = dict(zip(rec["attrs"][::2], rec["attrs"][1::2]))
            name = attrs.pop("logger", "qlaunch.task")
            level = int(attrs.pop("pylevel", _task.slog_to_py(rec["level"])))
            logger = logging.getLogger(name)
            if not logger.isEnabledFor(level):
                continue
            r = logging.makeLogRecord({
                "name": name, "levelno": level, "levelname": logging.getLevelName(level),
                "msg": rec["msg"], "args": None, "created": rec["time"] / 1e9,
                "rank": rec["rank"], "host": rec["host"],
                "task_name": attrs.pop("task_name", None),
            })
            r.msecs = (r.created - int(r.created)) * 1000
            ctx = {k[4:]: v for k, v in attrs.items() if k.startswith("ctx.")}
            r.log_context = ctx
            for k, v in ctx.items():
                if not hasattr(r, k):
                    setattr(r, k, v)
            logger.handle(r)

    # --- tasks ------------------------------------------------------------

    def _start(self, kernel, argsets, payloads, single, decode, chunks=None, log_depth=None,
               log_level=None, fn_bytes=None):
        """Submits a task of kernel per payload (argsets: the arguments of
        each, a _Repeat of one for all, or None for none); with fn_bytes,
        each task's payload is fn_bytes + payloads[i]. Returns the Future."""
        with self._cv:
            if self._err is not None:
                raise self._err
            self._next_fid += 1
            fid = self._next_fid
            f = Future(self, fid, len(payloads), single, decode, chunks)
            self._futures[fid] = f
        if not payloads:
            with self._cv:
                del self._futures[fid]
            return f
        frames = []
        batch = []
        size = 0
        base = fid << _INDEX_BITS
        level = self._fixed_level if log_level is None else log_level
        if level is None:
            level = _task.py_to_slog(_lowest_level())
        depth = self.log_depth if log_depth is None else log_depth
        head = wire.varint(level) + wire.varint(depth if depth > 0 else -1) + wire.string(kernel)
        uvarint = wire.uvarint
        same = isinstance(argsets, _Repeat)  # one argument list for every task: encoded once
        if same or argsets is None:
            args = argsets[0] if same else ()
            head += uvarint(len(args)) + b"".join(wire.string(a) for a in args)
        if same and fn_bytes is not None and len(payloads) < 1 << 28:
            self._send(_map_frames(base, head, fn_bytes, payloads))
            return f
        for i, p in enumerate(payloads):
            if same or argsets is None:
                body = head + uvarint(len(p)) + p
            else:
                args = argsets[i]
                body = head + uvarint(len(args)) + b"".join(wire.string(a) for a in args) \
                    + uvarint(len(p)) + p
            rec = uvarint(base | i) + uvarint(len(body)) + body
            if batch and size + len(rec) > wire.MAX_BATCH:
                frames.append((wire.SUBMIT, b"".join(batch)))
                batch, size = [], 0
            batch.append(rec)
            size += len(rec)
        frames.append((wire.SUBMIT, b"".join(batch)))
        self._send(frames)
        return f

    def _fn_bytes(self, fn):
        try:
            fb = self._fn_cache.get(fn)
        except TypeError:
            fb = None
        if fb is None:
            fb = _task.encode_fn(fn)
            try:
                if len(self._fn_cache) > 64:
                    self._fn_cache.clear()
                self._fn_cache[fn] = fb
            except TypeError:
                pass
        return fb

    def submit(self, fn, *args, **kwargs):
        """Runs fn(*args, **kwargs) on a worker rank; returns its Future."""
        fn, retry = _task.unwrap(fn)
        p = _task.payload(self._fn_bytes(fn), args, kwargs)
        return self._start(_PYTHON_RETRY if retry else _PYTHON, [(self._path,)], [p], True, pickle.loads)

    def map(self, fn, *iterables, chunksize=None, **kwargs):
        """Runs fn(a, b, …, **kwargs) for each a, b, … of zip(*iterables);
        the Future's result is the list of values in input order.

        chunksize k > 1 runs the calls k to a task (each chunk in one
        executor, in order): much cheaper for short functions, coarser for
        load balance and cancellation. chunksize="auto" chooses, as
        multiprocessing's Pool.map does, about four chunks per worker slot
        of the runtime."""
        fn, retry = _task.unwrap(fn)
        fb = self._fn_bytes(fn)
        rows = list(zip(*iterables))
        if chunksize == "auto":
            chunksize = -(-len(rows) // (4 * self.slots()))
        chunks = _task.chunk_sizes(len(rows), chunksize)
        kernel = _PYTHON_RETRY if retry else _PYTHON
        if chunks is None:
            calls = _task.encode_calls(rows, kwargs)
            return self._start(kernel, _Repeat((self._path,), len(calls)), calls, False, pickle.loads,
                               fn_bytes=fb)
        ps = _task.map_payloads(fb, [_task.chunk_calls(a, kwargs) for a in rows], chunks)
        return self._start(kernel, _Repeat((self._path,), len(ps)), ps, False, pickle.loads, chunks)

    def status(self, timeout=30):
        """One dict per rank of the tree: rank, parent, depth, role, host,
        slots, busy, queued, done."""
        with self._cv:
            if self._err is not None:
                raise self._err
            self._next_status += 1
            sid = self._next_status
            self._status[sid] = None
        self._send([(wire.STATUS, wire.status_request(sid))])
        with self._cv:
            try:
                ok = self._cv.wait_for(lambda: self._status[sid] is not None or self._err is not None, timeout)
                if self._status[sid] is None:
                    raise self._err if self._err is not None else TimeoutError(
                        "qlaunch: no status reply within %s s" % timeout) if not ok else ConnectionLost("qlaunch: no status")
                return self._status[sid]
            finally:
                self._status.pop(sid, None)

    def slots(self):
        """The worker slots of the runtime (asked once, then remembered)."""
        if self._slots is None:
            self._slots = sum(r["slots"] for r in self.status() if "worker" in r["role"]) or 1
        return self._slots

    def kernel(self, name, *args, payload=b""):
        """Runs the Go kernel name (e.g. "fanout", "synth") with string
        arguments and a bytes payload; the Future's result is its bytes."""
        args = tuple(str(a) for a in args)
        return self._start(name, [args], [bytes(payload)], True, bytes)

    def kernel_map(self, name, argsets, payloads=None):
        """Runs the Go kernel name once per element of argsets (each a
        sequence of strings), with payloads[i] (default empty)."""
        argsets = [tuple(str(a) for a in s) for s in argsets]
        payloads = [bytes(p) for p in payloads] if payloads is not None else [b""] * len(argsets)
        if len(payloads) != len(argsets):
            raise ValueError("kernel_map: %d argument sets and %d payloads" % (len(argsets), len(payloads)))
        return self._start(name, argsets, payloads, False, bytes)

    def next(self, future, timeout=None):
        """The (index, value) pairs of future that finished since the last
        call, waiting for at least one; [] once all were taken. A failed
        task raises its error."""
        with self._cv:
            if future._taken == future.n:
                return []
            self._partial_waiters += 1
            try:
                ok = self._cv.wait_for(lambda: future._taken < len(future._arrived) or future.done(), timeout)
            finally:
                self._partial_waiters -= 1
            if not ok:
                raise TimeoutError("qlaunch: no new result within %s s" % timeout)
            if future._taken == len(future._arrived):
                future._check()
            idxs = future._arrived[future._taken:]
            future._taken = len(future._arrived)
            errs = future._errs
        if future._decode is pickle.loads:
            res = [(i, errs is None or errs[i] is None, future._vals[i]) for i in idxs]
            for i in idxs:
                if errs is not None and errs[i] is not None:
                    raise errs[i]
            return _task.pairs(res, future._chunks, future._item_error)
        out = []
        for i in idxs:
            if errs is not None and errs[i] is not None:
                raise errs[i]
            out.append((i, future._decode(future._vals[i])))
        return out

    def cancel(self, future):
        """Stops future's tasks and their descendants in the runtime."""
        with self._cv:
            if future._cancelled or future._done == future.n:
                return
            future._cancelled = True
            got = set(future._arrived)
            ids = [(future._fid << _INDEX_BITS) | i for i in range(future.n) if i not in got]
            self._futures.pop(future._fid, None)
            self._cv.notify_all()
        frames = []
        for k in range(0, len(ids), 100000):
            frames.append((wire.CANCEL, wire.cancel(ids[k:k + 100000])))
        if frames and self._err is None:
            self._send(frames)

    def close(self):
        """Closes the connection; the runtime cancels this client's tasks."""
        self._fail(ConnectionLost("qlaunch: client closed"))
        try:
            self._sock.close()
        except OSError:
            pass
        if self._reader is not threading.current_thread():
            self._reader.join(timeout=10)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _tls_context(ca, cert, key, server_name):
    ca = ca or os.environ.get("QLAUNCH_TLS_CA")
    cert = cert or os.environ.get("QLAUNCH_TLS_CERT")
    key = key or os.environ.get("QLAUNCH_TLS_KEY")
    if not ca:
        if cert:
            raise ValueError("qlaunch: TLS needs a CA file to verify the server (tls_ca or QLAUNCH_TLS_CA)")
        return None
    import ssl
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    # The chain is verified; names only on request: the address dialled
    # rarely names the server, and the job secret authenticates it.
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.load_verify_locations(ca)
    ctx.check_hostname = bool(server_name)
    if cert:
        ctx.load_cert_chain(cert, key)
    return ctx


_U32LE = struct.Struct("<I")


def _map_frames(base, head, fn_bytes, calls):
    """The submit frames of a map's tasks base | i (i < 2**28), each of the
    same head (levels, kernel, arguments) and payload fn_bytes + calls[i]:
    the records of encode_task, built with the shared parts once."""
    uvarint = wire.uvarint
    # A record's id, base | i, in LEB128: i's 28 low bits make the first
    # four bytes (each with its continuation bit, as base > 2**28), then
    # base >> 28 follows.
    tail = uvarint(base >> 28)
    pack = _U32LE.pack
    k = len(fn_bytes)
    # What follows a record's id up to its call depends on the call's
    # length alone (the lengths of body and payload, then head and
    # function): built once per length, it makes a record three parts
    # instead of seven and spares two uvarints (a map's calls take a
    # few lengths; half the time of framing a 10,000-call map).
    middles = {}
    frames = []
    parts = []
    append = parts.append
    size = 0
    limit = wire.MAX_BATCH
    for i, c in enumerate(calls):
        middle = middles.get(len(c))
        if middle is None:
            lp = k + len(c)
            lenp = uvarint(lp)
            middle = tail + uvarint(len(head) + len(lenp) + lp) + head + lenp + fn_bytes
            middles[len(c)] = middle
        rec = 4 + len(middle) + len(c)
        if size and size + rec > limit:
            frames.append((wire.SUBMIT, b"".join(parts)))
            parts = []
            append = parts.append
            size = 0
        append(pack(0x80808080 | (i & 0x7F) | (i & 0x3F80) << 1 | (i & 0x1FC000) << 2 | (i & 0xFE00000) << 3))
        append(middle)
        append(c)
        size += rec
    frames.append((wire.SUBMIT, b"".join(parts)))
    return frames


class _Repeat:
    """A sequence of n times the same item."""

    def __init__(self, item, n):
        self.item, self.n = item, n

    def __getitem__(self, i):
        return self.item

    def __len__(self):
        return self.n


def as_completed(futures, timeout=None):
    """Yields futures as they finish (of one or several clients)."""
    pending = list(futures)
    deadline = None if timeout is None else time.monotonic() + timeout
    while pending:
        left = None if deadline is None else max(0.0, deadline - time.monotonic())
        c = pending[0]._client
        if any(f._client is not c for f in pending):
            # Futures of several clients: no one condition covers them all,
            # so wait on the first client's in short steps.
            left = 0.005 if left is None else min(left, 0.005)
        with c._cv:
            ok = c._cv.wait_for(lambda: any(f.done() for f in pending), left)
        if not ok and (deadline is None or time.monotonic() < deadline):
            continue
        if not ok:
            raise TimeoutError("qlaunch: %d futures unfinished after %s s" % (len(pending), timeout))
        still = []
        for f in pending:
            if f.done():
                yield f
            else:
                still.append(f)
        pending = still


def _lowest_level():
    levels = [logging.getLogger().getEffectiveLevel()]
    for lg in logging.root.manager.loggerDict.values():
        if isinstance(lg, logging.Logger) and lg.level:
            levels.append(lg.level)
    return max(min(levels), logging.DEBUG)
