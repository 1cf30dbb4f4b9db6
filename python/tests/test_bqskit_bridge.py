"""qlaunch.bqskit: BQSKit-style passes, which call bqskit.runtime's
get_runtime(), run distributed on qlaunch through the Compiler-compatible
class. BQSKit is the stand-in package in fakebqskit/, or the source tree
named by $QLAUNCH_BQSKIT_SRC (its runtime modules import without numpy)."""

import logging
import os
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
REAL = os.environ.get("QLAUNCH_BQSKIT_SRC")
sys.path.insert(0, REAL or os.path.join(HERE, "fakebqskit"))

import qlaunch  # noqa: E402
from bqskit.runtime import get_runtime  # noqa: E402  (as a pass module imports it)


def double(x):
    return 2 * x


async def count_down(n):
    if n == 0:
        return 0
    return 1 + await get_runtime().submit(count_down, n - 1)


class DoublePass:
    """A pass in BQSKit's style: awaits get_runtime().map."""

    async def run(self, circuit, data):
        logging.getLogger("bqskit.test").info("doubling %d", len(circuit))
        circuit[:] = await get_runtime().map(double, circuit)
        fut = get_runtime().map(double, circuit)
        got = []
        while len(got) < len(circuit):
            got.extend(await get_runtime().next(fut))
        data["next"] = sorted(got)
        data["depth"] = await get_runtime().submit(count_down, 5)
        get_runtime().get_cache()["seen"] = True


class FailPass:
    async def run(self, circuit, data):
        await get_runtime().submit(int, "x")


class Task:
    """A task with CompilationTask's shape, for BQSKit's real runtime
    modules (whose CompilationTask needs numpy)."""

    def __init__(self, circuit, passes):
        self.circuit, self.passes, self.data, self.request_data = circuit, passes, {}, False

    async def run(self):
        for p in self.passes:
            await p.run(self.circuit, self.data)
        return (self.circuit, self.data) if self.request_data else self.circuit


class BridgeTest(unittest.TestCase):
    def setUp(self):
        from qlaunch.bqskit import Compiler
        self.compiler = Compiler()

    def tearDown(self):
        self.compiler.close()

    def test_package_import_does_not_import_bqskit(self):
        import subprocess
        code = "import sys, qlaunch; assert 'bqskit' not in sys.modules and 'qlaunch.bqskit' not in sys.modules"
        subprocess.run([sys.executable, "-c", code], check=True, env=dict(os.environ, PYTHONPATH=os.path.dirname(HERE)))

    def test_task(self):
        tid = self.compiler.submit_task(Task([1, 2, 3], [DoublePass()]), request_data=True)
        circuit, data = self.compiler.result(tid)
        self.assertEqual(circuit, [2, 4, 6])
        self.assertEqual(data["next"], [(0, 4), (1, 8), (2, 12)])
        self.assertEqual(data["depth"], 5)

    def test_status_and_cancel(self):
        from qlaunch.bqskit import CompilationStatus
        tid = self.compiler.submit_task(Task([1], [DoublePass()]))
        self.assertIn(self.compiler.status(tid), (CompilationStatus.RUNNING, CompilationStatus.DONE))
        self.assertEqual(self.compiler.result(tid), [2])
        self.assertEqual(self.compiler.status(tid), CompilationStatus.UNKNOWN)
        tid = self.compiler.submit_task(Task([1], [DoublePass()]))
        self.assertTrue(self.compiler.cancel(tid))

    def test_errors(self):
        with self.assertRaises(qlaunch.TaskError) as cm:
            self.compiler.result(self.compiler.submit_task(Task([1], [FailPass()])))
        self.assertIn("ValueError: invalid literal", cm.exception.message)

    @unittest.skipIf(REAL, "BQSKit's CompilationTask needs numpy")
    def test_compile(self):
        out, data = self.compiler.compile([5, 6], [DoublePass()], request_data=True)
        self.assertEqual(out, [10, 12])
        self.assertEqual(data["depth"], 5)
        self.assertEqual(self.compiler.compile([1], [DoublePass()]), [2])

    def test_logging(self):
        records = []
        h = logging.Handler()
        h.emit = records.append
        lg = logging.getLogger("bqskit.test")
        lg.addHandler(h)
        lg.setLevel(logging.INFO)
        try:
            self.compiler.result(self.compiler.submit_task(Task([1, 2], [DoublePass()])))
        finally:
            lg.removeHandler(h)
            lg.setLevel(logging.NOTSET)
        self.assertIn("doubling 2", [r.getMessage() for r in records])


if __name__ == "__main__":
    unittest.main()


async def fresh_executor_child():
    """Runs in whatever executor takes it, importing bqskit lazily."""
    from bqskit.runtime import get_runtime as bqskit_get_runtime
    return await bqskit_get_runtime().submit(double, 21)


class ChildrenTest(unittest.TestCase):
    def test_every_executor_answers(self):
        # Plain qlaunch tasks (no Compiler): each executor that imports
        # bqskit.runtime.worker gets qlaunch's handle, however it imports it.
        with qlaunch.Client() as c:
            self.assertEqual(c.map(_sync_fresh, range(8)).result(60), [42] * 8)
            self.assertEqual(c.submit(fresh_executor_child).result(60), 42)


def _sync_fresh(_):
    import bqskit.runtime.worker as w
    return 42 if w.get_worker() is qlaunch.get_runtime() else -1
