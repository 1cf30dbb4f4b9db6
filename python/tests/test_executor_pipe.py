"""The executor's pipe protocol (kernels/python/doc.go), spoken to a real
executor process from the test: run and run-same messages, the
map-function message an in-task map sends, and messages larger than one
read. No runtime needed."""

import os
import pickle
import struct
import subprocess
import sys
import unittest

import helpers
from qlaunch import _executor as ex
from qlaunch import _task

HDR = struct.Struct(">IBQ")
U32 = struct.Struct(">I")
LEVEL = b"\x7f"  # no logging forwarded

# The executor reads fd 3 and writes fd 4: the child moves the pipes given
# as arguments there (through fresh descriptors, so that neither clobbers
# the other), then serves.
CHILD = """import os, sys
a, b = os.dup(int(sys.argv[1])), os.dup(int(sys.argv[2]))
os.dup2(a, 3)
os.dup2(b, 4)
from qlaunch import _executor
_executor.main()
"""


def msg(typ, tid, *body):
    b = b"".join(body)
    return HDR.pack(9 + len(b), typ, tid) + b


def run(tid, fn, *args):
    return msg(ex.RUN, tid, LEVEL, _task.encode_fn(fn), _task.encode_call(args, {}))


def run_same(tid, *args):
    return msg(ex.RUN_SAME, tid, LEVEL, _task.encode_call(args, {}))


class Executor:
    """A real executor process and the test's ends of its pipes."""

    def __init__(self):
        to_r, self.w = os.pipe()
        self.r, from_w = os.pipe()
        here = os.path.dirname(os.path.abspath(__file__))
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([os.path.dirname(here), here])
        self.proc = subprocess.Popen([sys.executable, "-c", CHILD, str(to_r), str(from_w)],
                                     pass_fds=(to_r, from_w), env=env)
        os.close(to_r)
        os.close(from_w)
        self.buf = b""
        typ, tid, body = self.read()
        assert (typ, body) == (ex.HELLO, ex.VERSION), (typ, body)

    def write(self, data):
        view = memoryview(data)
        while view:
            view = view[os.write(self.w, view):]

    def read(self):
        while True:
            if len(self.buf) >= 4:
                (n,) = U32.unpack_from(self.buf)
                if len(self.buf) >= 4 + n:
                    _, typ, tid = HDR.unpack_from(self.buf)
                    body, self.buf = self.buf[13:4 + n], self.buf[4 + n:]
                    return typ, tid, body
            chunk = os.read(self.r, 1 << 16)
            if not chunk:
                raise EOFError("the executor closed its pipe")
            self.buf += chunk

    def done(self, n):
        """The next n done messages, {task: (ok, value or error text)}."""
        out = {}
        while len(out) < n:
            typ, tid, body = self.read()
            if typ == ex.DONE:
                ok = body[0] == 0
                out[tid] = (ok, pickle.loads(body[1:]) if ok else body[1:].decode())
        return out

    def close(self):
        os.close(self.w)
        self.proc.wait(30)
        os.close(self.r)


class PipeTest(unittest.TestCase):
    def setUp(self):
        self.ex = Executor()
        self.addCleanup(self.ex.close)

    def test_run_same_calls_the_function_of_the_run_before(self):
        e = self.ex
        e.write(run(1, helpers.square, 2) + run_same(2, 3) + run(3, helpers.add, 1, 2)
                + run_same(4, 3, 4) + msg(ex.PATH, 0, b"") + run_same(5, 5, 6) + run(6, helpers.square, 7)
                + run_same(7, 8))
        self.assertEqual(e.done(7), {1: (True, 4), 2: (True, 9), 3: (True, 3), 4: (True, 7), 5: (True, 11),
                                     6: (True, 49), 7: (True, 64)})

    def test_run_same_across_reads(self):
        # Each message in a write of its own: the function is still the
        # last run's, whatever the reads bring.
        e = self.ex
        e.write(run(1, helpers.square, 4))
        self.assertEqual(e.done(1), {1: (True, 16)})
        for tid in range(2, 6):
            e.write(run_same(tid, tid))
            self.assertEqual(e.done(1), {tid: (True, tid * tid)})

    def test_run_same_before_any_run(self):
        e = self.ex
        e.write(run_same(1, 3) + run(2, helpers.square, 3))
        d = e.done(2)
        self.assertFalse(d[1][0])
        self.assertIn("run-same message before any run", d[1][1])
        self.assertEqual(d[2], (True, 9))

    def test_run_same_of_a_function_that_does_not_unpickle(self):
        e = self.ex
        bad = msg(ex.RUN, 1, LEVEL, U32.pack(3), b"\x80\x05X", _task.encode_call((1,), {}))
        e.write(bad + run_same(2, 2) + run(3, helpers.square, 5) + run_same(4, 6))
        d = e.done(4)
        for tid in (1, 2):
            self.assertFalse(d[tid][0])
            self.assertIn("could not unpickle the task", d[tid][1])
        self.assertEqual((d[3], d[4]), ((True, 25), (True, 36)))

    def test_message_larger_than_a_read(self):
        e = self.ex
        big = "x" * (3 * ex.READ_SIZE)
        data = run(1, len, big) + run(2, helpers.square, 9)
        for i in range(0, len(data), 5000):  # in pieces, as a pipe may give them
            e.write(data[i:i + 5000])
        self.assertEqual(e.done(2), {1: (True, len(big)), 2: (True, 81)})

    def test_in_task_map_sends_the_function_once(self):
        e = self.ex
        e.write(msg(ex.RUN, 1, LEVEL, _task.encode_fn(helpers.map_retry), _task.encode_call((3,), {})))
        typ, tid, body = e.read()
        self.assertEqual((typ, tid), (ex.MAP_FN_RETRY, 1))
        (fid,) = U32.unpack_from(body)
        (k,) = U32.unpack_from(body, 4)
        self.assertEqual(body[8:8 + k], _task.encode_fn(helpers.square))
        i = 8 + k
        (n,) = U32.unpack_from(body, i)
        i += 4
        calls = []
        for _ in range(n):
            (m,) = U32.unpack_from(body, i)
            calls.append(pickle.loads(body[i + 4:i + 4 + m]))
            i += 4 + m
        self.assertEqual(i, len(body))
        self.assertEqual(calls, [((j,), {}, None, None) for j in range(3)])
        typ, tid, body = e.read()
        self.assertEqual((typ, tid, body), (ex.WAIT, 1, U32.pack(fid)))
        vals = [pickle.dumps(j * j) for j in range(3)]
        reply = bytes([ex.REPLY_OK]) + U32.pack(3) + b"".join(U32.pack(len(v)) + v for v in vals)
        e.write(msg(ex.RESUME, 1, reply))
        self.assertEqual(e.done(1), {1: (True, [0, 1, 4])})

    def test_in_task_submit_sends_a_map_of_one(self):
        e = self.ex
        e.write(msg(ex.RUN, 1, LEVEL, _task.encode_fn(helpers.submit_one), _task.encode_call((5,), {})))
        typ, tid, body = e.read()
        self.assertEqual((typ, tid), (ex.MAP_FN, 1))
        (k,) = U32.unpack_from(body, 4)
        self.assertEqual(U32.unpack_from(body, 8 + k), (1,))


if __name__ == "__main__":
    unittest.main()
