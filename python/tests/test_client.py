"""Tests of the client and Python tasks against a running runtime (run
under: qlaunch run configs/local.toml -- python3 -m unittest …)."""

import logging
import os
import time
import unittest

import qlaunch
import helpers


class ClientTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.client = qlaunch.Client()

    @classmethod
    def tearDownClass(cls):
        cls.client.close()

    def test_submit(self):
        self.assertEqual(self.client.submit(helpers.square, 7).result(30), 49)

    def test_submit_kwargs_and_lambda(self):
        self.assertEqual(self.client.submit(helpers.add, 1, 2, scale=10).result(30), 30)
        k = 5
        self.assertEqual(self.client.submit(lambda x: x + k, 1).result(30), 6)

    def test_lambda_result(self):
        # Plain pickle cannot send a lambda back; the executor falls back to
        # cloudpickle.
        self.assertEqual(self.client.submit(helpers.make_adder, 3).result(30)(1), 4)

    def test_arguments_by_value(self):
        # Arguments go by plain pickle when it loads anywhere; what only
        # cloudpickle sends by value (a lambda, a class of the client's
        # __main__, which executors do not have) goes by cloudpickle.
        self.assertEqual(self.client.submit(helpers.apply, lambda x: x * 3, 4).result(30), 12)
        import __main__

        class Point:
            def __init__(self, x, y):
                self.x, self.y = x, y

        Point.__module__, Point.__qualname__ = "__main__", "QlaunchTestPoint"
        setattr(__main__, "QlaunchTestPoint", Point)
        try:
            self.assertEqual(self.client.map(helpers.coordinates, [Point(1, 2), Point(3, 4)]).result(30),
                             [(1, 2), (3, 4)])
        finally:
            delattr(__main__, "QlaunchTestPoint")

    def test_map(self):
        self.assertEqual(self.client.map(helpers.square, range(100)).result(30),
                         [i * i for i in range(100)])
        self.assertEqual(self.client.map(helpers.add, [1, 2], [3, 4], scale=2).result(30), [8, 12])
        self.assertEqual(self.client.map(helpers.square, []).result(1), [])

    def test_map_chunks(self):
        want = [i * i for i in range(103)]
        self.assertEqual(self.client.map(helpers.square, range(103), chunksize=10).result(30), want)
        f = self.client.map(helpers.square, range(103), chunksize=7)
        got = []
        for _ in range(200):
            batch = self.client.next(f, timeout=30)
            if not batch:
                break
            got.extend(batch)
        self.assertEqual(sorted(got), list(enumerate(want)))
        with self.assertRaises(qlaunch.TaskError) as cm:
            self.client.map(helpers.fail_odd, range(10), chunksize=4).result(30)
        self.assertIn("ValueError: odd 1", cm.exception.message)

    def test_status_and_auto_chunks(self):
        ranks = self.client.status()
        self.assertTrue(any("server" in r["role"] for r in ranks))
        self.assertGreaterEqual(self.client.slots(), 1)
        self.assertEqual(self.client.map(helpers.square, range(1000), chunksize="auto").result(60),
                         [i * i for i in range(1000)])

    def test_next(self):
        f = self.client.map(helpers.square, range(50))
        got = []
        for _ in range(100):
            batch = self.client.next(f, timeout=30)
            if not batch:
                break
            got.extend(batch)
        self.assertEqual(sorted(got), [(i, i * i) for i in range(50)])
        self.assertEqual(self.client.next(f), [])

    def test_as_completed(self):
        fs = [self.client.submit(helpers.square, i) for i in range(10)]
        done = list(qlaunch.as_completed(fs, timeout=30))
        self.assertEqual(sorted(f.result() for f in done), [i * i for i in range(10)])

    def test_as_completed_two_clients(self):
        with qlaunch.Client() as other:
            fs = [self.client.submit(helpers.sleep_then, 0.2), other.submit(helpers.square, 4)]
            done = list(qlaunch.as_completed(fs, timeout=30))
        self.assertEqual(sorted(f.result() for f in done), [0.2, 16])

    def test_go_kernels(self):
        self.assertEqual(self.client.kernel("fanout", 10, 2).result(30), b"100")
        self.assertEqual(self.client.kernel("echo", payload=b"abc").result(30), b"abc")
        self.assertEqual(self.client.kernel_map("echo", [["a"], ["b", "c"]]).result(30), [b"a", b"b c"])
        with self.assertRaises(qlaunch.TaskError) as cm:
            self.client.kernel("fail", "boom").result(30)
        self.assertIn("boom", str(cm.exception))

    def test_error_has_traceback_rank_host(self):
        with self.assertRaises(qlaunch.TaskError) as cm:
            self.client.submit(helpers.fail, "kaboom").result(30)
        e = cm.exception
        self.assertIn("ValueError: kaboom", e.message)
        self.assertIn("Traceback", e.message)
        self.assertIn("helpers.py", e.message)
        self.assertGreaterEqual(e.rank, 1)
        self.assertTrue(e.host)
        self.assertIn("rank %d" % e.rank, str(e))

    def test_unpicklable_result(self):
        with self.assertRaises(qlaunch.TaskError) as cm:
            self.client.submit(helpers.unpicklable).result(30)
        self.assertIn("could not be pickled", cm.exception.message)
        # The connection and executors are fine afterwards.
        self.assertEqual(self.client.submit(helpers.square, 3).result(30), 9)

    def test_executor_env(self):
        pid, omp = self.client.submit(helpers.where).result(30)
        self.assertNotEqual(pid, os.getpid())
        self.assertEqual(omp, "1")

    def test_killed_executor_is_replaced(self):
        with self.assertRaises(qlaunch.TaskError) as cm:
            self.client.submit(helpers.die).result(60)
        e = cm.exception
        self.assertIn("killed by signal 9", e.message)
        self.assertGreaterEqual(e.rank, 1)
        self.assertTrue(e.host)
        self.assertEqual(self.client.map(helpers.square, range(20)).result(60), [i * i for i in range(20)])

    def _kill_child_executor(self, parent):
        """Submits parent (a task whose child, submitted with retry=True,
        writes its executor's pid to a file and sleeps), kills that
        executor with -9 and returns the parent's outcome and the pid."""
        import tempfile
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "pid")
            f = self.client.submit(parent, path)
            deadline = time.monotonic() + 60
            while not os.path.exists(path):
                self.assertLess(time.monotonic(), deadline, "the child did not start within 60 s")
                if f.done():
                    self.fail("the parent ended before its child started: %r" % (f.exception(),))
                time.sleep(0.01)
            with open(path) as fp:
                pid = int(fp.read())
            os.kill(pid, 9)
            try:
                return f.result(60), pid
            except qlaunch.TaskError as e:
                return ("parent error", e), pid

    def _check_killed_child(self, outcome, pid):
        kind, v = outcome
        if kind == "value":  # retried: the child ran again
            self.assertEqual(v, "second run")
        elif kind == "error":  # the child failed: its error names rank, host and signal
            self.assertIn("killed by signal 9", v)
            self.assertRegex(v, r"on rank \d+ \(\S+\)")
        else:  # the parent ran in the killed executor too
            self.assertIn("killed by signal 9", v.message)
            self.assertGreaterEqual(v.rank, 1)
            self.assertTrue(v.host)
        # The killed executor was reaped, another replaces it, and the job goes on.
        with self.assertRaises(ProcessLookupError):
            os.kill(pid, 0)
        self.assertEqual(self.client.map(helpers.square, range(20)).result(60), [i * i for i in range(20)])
        pids = set(self.client.map(helpers.pid, range(8)).result(60))
        self.assertNotIn(pid, pids)

    def test_killed_executor_of_a_retry_child(self):
        # A plain parent blocks its interpreter: the child runs in another.
        outcome, pid = self._kill_child_executor(helpers.child_retry_outcome)
        self._check_killed_child(outcome, pid)

    def test_killed_executor_of_a_retry_child_async(self):
        outcome, pid = self._kill_child_executor(helpers.child_retry_outcome_async)
        self._check_killed_child(outcome, pid)

    def test_retryable(self):
        # A retryable function runs like any other (the runtime's retry on
        # a lost rank is tested on real processes in kernels/python), from
        # a call, a decorator and a map, and stays callable locally.
        sq = qlaunch.retryable(helpers.square)
        self.assertEqual(sq(3), 9)
        self.assertEqual(self.client.submit(sq, 4).result(30), 16)
        self.assertEqual(self.client.map(sq, range(5), chunksize=2).result(30), [0, 1, 4, 9, 16])
        self.assertEqual(self.client.submit(helpers.retryable_add, 1, 2).result(30), 3)
        self.assertEqual(self.client.submit(helpers.submit_retryable, 5).result(30), 25)
        with self.assertRaises(TypeError):
            qlaunch.retryable(3)

    def test_cancel(self):
        f = self.client.map(helpers.sleep_then, [30.0] * 3)
        t0 = time.monotonic()
        f.cancel()
        with self.assertRaises(qlaunch.CancelledError):
            f.result(10)
        self.assertLess(time.monotonic() - t0, 10)

    def test_result_timeout(self):
        f = self.client.submit(helpers.sleep_then, 0.5)
        with self.assertRaises(TimeoutError):
            f.result(0.01)
        self.assertEqual(f.result(30), 0.5)


class InTaskTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.client = qlaunch.Client()

    @classmethod
    def tearDownClass(cls):
        cls.client.close()

    def test_submit_in_task(self):
        self.assertEqual(self.client.submit(helpers.submit_one, 6).result(30), 36)

    def test_nested_fork_join(self):
        self.assertEqual(self.client.submit(helpers.nested, 10, 3).result(120), 1000)

    def test_nested_100x100(self):
        t0 = time.monotonic()
        self.assertEqual(self.client.submit(helpers.nested, 100, 2).result(120), 10000)
        print("\nnested 100x100: %.3f s" % (time.monotonic() - t0))

    def test_nested_chunks(self):
        self.assertEqual(self.client.submit(helpers.nested_chunked, 10, 3, 3).result(120), 1000)

    def test_map_chunks_in_task(self):
        seen, whole = self.client.submit(helpers.map_chunked, 50, 8).result(30)
        self.assertEqual(seen, [(i, i * i) for i in range(50)])
        self.assertEqual(whole, [i * i for i in range(50)])

    def test_next_in_task(self):
        self.assertEqual(self.client.submit(helpers.collect_next, 20).result(30),
                         [(i, i * i) for i in range(20)])

    def test_cancel_in_task(self):
        self.assertEqual(self.client.submit(helpers.cancel_children).result(30), "CancelledError")

    def test_child_error_reaches_parent(self):
        msg = self.client.submit(helpers.child_fails).result(30)
        self.assertIn("ValueError: deep", msg)

    def test_cache_lives_with_the_executor(self):
        seen = {}
        for _ in range(6):
            n, pid = self.client.submit(helpers.cache_count).result(30)
            self.assertGreater(n, seen.get(pid, 0))
            seen[pid] = n
        self.assertTrue(any(n > 1 for n in seen.values()))

    def test_foreign_await_is_an_error(self):
        with self.assertRaises(qlaunch.TaskError) as cm:
            self.client.submit(helpers.awaits_asyncio).result(30)
        self.assertIn("can await only qlaunch futures", cm.exception.message)

    def test_plain_task_waits_blocking(self):
        self.assertEqual(self.client.submit(helpers.plain_map, 10).result(60), sum(i * i for i in range(10)))

    def test_plain_nested_fork_join(self):
        # Every level blocks its interpreter in result(); on one slot too.
        self.assertEqual(self.client.submit(helpers.plain_nested, 3, 2).result(120), 9)

    def test_async_over_plain(self):
        self.assertEqual(self.client.submit(helpers.async_over_plain, 3, 4).result(120), 3 * 14)

    def test_plain_next(self):
        self.assertEqual(self.client.submit(helpers.plain_next, 6).result(60), [(i, i * i) for i in range(6)])

    def test_plain_child_error(self):
        self.assertIn("child failed", self.client.submit(helpers.plain_child_error).result(60))

    def test_result_in_async_task_is_refused(self):
        refused, value = self.client.submit(helpers.result_in_async_task).result(60)
        self.assertIn("await the future instead", refused)
        self.assertEqual(value, 9)

    def test_retry_children(self):
        self.assertEqual(self.client.submit(helpers.plain_submit_retry, 7).result(60), 49)
        self.assertEqual(self.client.submit(helpers.map_retry, 5).result(60), [0, 1, 4, 9, 16])

    def test_messages_longer_than_a_read(self):
        # The executor reads at most 256 KiB at a time: a task and a resume
        # reply longer than that arrive in parts.
        self.assertEqual(self.client.submit(len, b"x" * (1 << 20)).result(60), 1 << 20)
        self.assertEqual(self.client.submit(helpers.map_noops, 30000).result(120), 30000)

    def test_random_frames_through_a_relay(self):
        # Random bytes do not compress, so the task and its result travel as
        # frames of about 300 KiB that the server forwards as a relay does:
        # it MACs the record header and the body apart (wire's sumParts),
        # and the Python client checks the result's MAC.
        data = os.urandom(300 << 10)
        self.assertEqual(self.client.submit(helpers.iden, data).result(60), data)

    def test_get_runtime_outside_a_task(self):
        with self.assertRaises(RuntimeError):
            qlaunch.get_runtime()


class Capture(logging.Handler):
    def __init__(self):
        super().__init__()
        self.records = []

    def emit(self, record):
        self.records.append(record)


class LoggingTest(unittest.TestCase):
    def setUp(self):
        self.cap = Capture()
        self.logger = logging.getLogger("qlaunch.test.task")
        self.logger.addHandler(self.cap)
        self.logger.setLevel(logging.INFO)
        self.logger.propagate = False

    def tearDown(self):
        self.logger.removeHandler(self.cap)

    def test_records_reach_the_client(self):
        with qlaunch.Client() as c:
            c.submit(helpers.logs, logging.WARNING, "hello").result(30)
            c.submit(helpers.logs, logging.DEBUG, "hidden").result(30)
            c.submit(helpers.logs_nested, "x").result(30)
        msgs = [r.getMessage() for r in self.cap.records]
        self.assertIn("hello", msgs)
        self.assertNotIn("hidden", msgs)
        self.assertIn("parent x", msgs)
        self.assertIn("child x", msgs)
        child = [r for r in self.cap.records if r.getMessage() == "child x"][0]
        self.assertEqual(child.task_name, "kid")
        self.assertEqual(child.log_context, {"who": "child"})
        self.assertGreaterEqual(child.rank, 1)

    def test_depth_limits_forwarding(self):
        with qlaunch.Client(log_depth=1) as c:
            c.submit(helpers.logs_nested, "y").result(30)
        msgs = [r.getMessage() for r in self.cap.records]
        self.assertIn("parent y", msgs)
        self.assertNotIn("child y", msgs)


if __name__ == "__main__":
    unittest.main()
