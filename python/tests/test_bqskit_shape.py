"""BQSKit's runtime test-suite (tests/runtime in BQSKit's repository), the
behaviours it checks written again against qlaunch's in-task API and run on
real processes: futures, next, cancellation, the cache, errors, execution
(maps two levels deep, reuse, parallel submissions), logging levels, depth,
specific and external loggers, task names and log context."""

import io
import logging
import unittest

import qlaunch
import helpers


class Runtime(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.c = qlaunch.Client()

    @classmethod
    def tearDownClass(cls):
        cls.c.close()

    def run_task(self, fn, *args):
        return self.c.submit(fn, *args).result(60)

    # test_next.py
    def test_next_no_duplicates(self):
        self.assertEqual(self.run_task(helpers.next_no_duplicates),
                         list(enumerate([0.3, 0.4, 0.1, 0.2, 0.5])))

    def test_await_after_next_gives_all(self):
        self.assertEqual(self.run_task(helpers.await_after_next), (True, [0.3, 0.4, 0.1, 0.2]))

    def test_next_after_await_raises(self):
        self.assertTrue(self.run_task(helpers.next_after_await).startswith("RuntimeError"))

    def test_next_never_loses_results(self):
        self.assertEqual(self.run_task(helpers.next_never_loses), [(0, 0.1)])

    # test_future.py
    def test_future_done(self):
        self.assertEqual(self.run_task(helpers.future_done), (False, True))

    def test_future_cannot_be_sent(self):
        with self.assertRaises(RuntimeError) as cm:
            self.run_task(helpers.send_future)
        self.assertIn("cannot be sent to another task", str(cm.exception))

    # test_cancel.py
    def test_cancel(self):
        self.assertEqual(self.run_task(helpers.cancel_without_await), "ok")

    def test_cant_await_cancelled(self):
        with self.assertRaises(RuntimeError):
            self.run_task(helpers.await_cancelled)

    # test_execution.py
    def test_simple_map(self):
        self.assertEqual(self.c.map(helpers.iden, range(10)).result(30), list(range(10)))

    def test_two_level_map(self):
        r = self.run_task(helpers.two_level_map, 1000)
        self.assertEqual(r, [[2 * i, 2 * i + 1] for i in range(1000)])

    def test_reuse_and_parallel(self):
        a = self.c.submit(helpers.two_level_map, 10)
        b = self.c.submit(helpers.two_level_map, 20)
        self.assertEqual(len(b.result(60)), 20)
        self.assertEqual(len(a.result(60)), 10)
        self.assertEqual(len(self.run_task(helpers.two_level_map, 10)), 10)

    # test_cache.py
    def test_cache_put_get(self):
        pids = {}
        for i in range(8):
            pids[self.run_task(helpers.cache_put, "k", i)] = i
        for _ in range(8):
            pid, v = self.run_task(helpers.cache_get, "k")
            if pid in pids:
                self.assertEqual(v, pids[pid])


class Logging(unittest.TestCase):
    """test_logging.py: records reach the client's loggers by name, at the
    levels configured there, whatever was configured when."""

    def setUp(self):
        self.c = qlaunch.Client()
        self.stream = io.StringIO()
        self.handler = logging.StreamHandler(self.stream)
        self.handler.setLevel(logging.DEBUG)
        self.loggers = []

    def tearDown(self):
        self.c.close()
        for lg in self.loggers:
            lg.removeHandler(self.handler)
            lg.setLevel(logging.NOTSET)

    def use(self, name, level):
        lg = logging.getLogger(name)
        lg.setLevel(level)
        lg.addHandler(self.handler)
        self.loggers.append(lg)

    def log(self, *tasks, depth=None):
        for fn, *args in tasks:
            f = self.c._start("python", [(self.c._path,)],
                              [qlaunch._task.payload(self.c._fn_bytes(fn), args, {})], True,
                              __import__("pickle").loads, log_depth=depth)
            f.result(60)
        return self.stream.getvalue()

    def check(self, text, present, absent):
        for s in present:
            self.assertIn(s, text)
        for s in absent:
            self.assertNotIn(s, text)

    def test_standard(self):
        self.use("bqskit", logging.DEBUG)
        self.check(self.log((helpers.log_pass,)),
                   ["bqskit_info", "bqskit_dummy_info", "bqskit_debug", "bqskit_dummy_debug"],
                   ["dummy2_info", "dummy2_debug"])

    def test_info_only(self):
        self.use("bqskit", logging.INFO)
        self.check(self.log((helpers.log_pass,)),
                   ["bqskit_info", "bqskit_dummy_info"],
                   ["dummy2_info", "bqskit_debug", "bqskit_dummy_debug", "dummy2_debug"])

    def test_specific(self):
        self.use("bqskit.dummy", logging.DEBUG)
        self.check(self.log((helpers.log_pass,)),
                   ["bqskit_dummy_info", "bqskit_dummy_debug"],
                   ["bqskit_info", "dummy2_info", "bqskit_debug", "dummy2_debug"])

    def test_external_with_args(self):
        self.use("dummy2", logging.DEBUG)
        self.check(self.log((helpers.log_pass,)),
                   ["dummy2_info", "dummy2_debug", "int 1", "NonSerializable NonSerializable"],
                   ["bqskit_info", "bqskit_dummy_info", "bqskit_debug"])

    def test_depth(self):
        for depth in (-1, 0, 1, 2, 3, 4):
            with self.subTest(max_logging_depth=depth):
                self.stream.seek(0)
                self.stream.truncate()
                if not self.loggers:
                    self.use("bqskit", logging.INFO)
                # BQSKit's max_logging_depth d is qlaunch's log_depth d+1.
                text = self.log((helpers.log_nested,), depth=depth + 1 if depth >= 0 else 0)
                want = range(4) if depth == -1 else range(min(4, depth + 1))
                self.check(text, ["bqskit_level%d" % i for i in want],
                           ["bqskit_level%d" % i for i in range(4) if i not in want] +
                           ["dummy2_level%d" % i for i in range(4)])

    def test_names_and_context(self):
        cap = []
        h = logging.Handler()
        h.emit = cap.append
        lg = logging.getLogger("dummy2")
        lg.setLevel(logging.INFO)
        lg.addHandler(h)
        try:
            self.c.submit(helpers.named_children).result(60)
        finally:
            lg.removeHandler(h)
            lg.setLevel(logging.NOTSET)
        got = sorted((r.getMessage(), r.task_name, r.log_context) for r in cap)
        self.assertEqual(got, [("child 0", "first", {"k": "a"}), ("child 1", "second", {"k": "b"})])


if __name__ == "__main__":
    unittest.main()
