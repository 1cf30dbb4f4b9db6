"""The in-tree build backend (python/_build.py) makes a wheel pip can
install offline (no runtime needed)."""

import importlib.util
import os
import tempfile
import unittest
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))


def backend():
    spec = importlib.util.spec_from_file_location("_build", os.path.join(HERE, "..", "_build.py"))
    m = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(m)
    return m


class BuildTest(unittest.TestCase):
    def test_wheel(self):
        b = backend()
        self.assertEqual(b.get_requires_for_build_wheel(), [])
        with tempfile.TemporaryDirectory() as d:
            name = b.build_wheel(d)
            with zipfile.ZipFile(os.path.join(d, name)) as z:
                names = set(z.namelist())
                record = z.read("qlaunch-0.1.0.dist-info/RECORD").decode()
        for want in ("qlaunch/__init__.py", "qlaunch/client.py", "qlaunch/_executor.py",
                     "qlaunch-0.1.0.dist-info/METADATA", "qlaunch-0.1.0.dist-info/WHEEL"):
            self.assertIn(want, names)
            self.assertIn(want, record)

    def test_sdist(self):
        b = backend()
        with tempfile.TemporaryDirectory() as d:
            self.assertTrue(os.path.exists(os.path.join(d, b.build_sdist(d))))


if __name__ == "__main__":
    unittest.main()
