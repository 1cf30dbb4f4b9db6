"""A PEP 517 build backend for the qlaunch package, with no dependencies:
`pip install ./python` works offline. It builds a pure-Python wheel of
qlaunch/ and an sdist of this folder."""

import base64
import hashlib
import io
import os
import tarfile
import zipfile

NAME = "qlaunch"
VERSION = "0.1.0"
HERE = os.path.dirname(os.path.abspath(__file__))
TAG = "py3-none-any"

METADATA = """Metadata-Version: 2.1
Name: {name}
Version: {version}
Summary: Python client and in-task API of the qlaunch runtime
Requires-Python: >=3.9
Requires-Dist: cloudpickle
Requires-Dist: zstandard
Requires-Dist: cryptography
""".format(name=NAME, version=VERSION)


def _sources():
    for root, dirs, files in os.walk(os.path.join(HERE, NAME)):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for f in sorted(files):
            if f.endswith(".py"):
                full = os.path.join(root, f)
                yield full, os.path.relpath(full, HERE).replace(os.sep, "/")


def _record_line(path, data):
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return "%s,sha256=%s,%d" % (path, digest, len(data))


def get_requires_for_build_wheel(config_settings=None):
    return []


def get_requires_for_build_sdist(config_settings=None):
    return []


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    name = "%s-%s-%s.whl" % (NAME, VERSION, TAG)
    info = "%s-%s.dist-info" % (NAME, VERSION)
    records = []
    with zipfile.ZipFile(os.path.join(wheel_directory, name), "w", zipfile.ZIP_DEFLATED) as z:
        def add(arc, data):
            z.writestr(arc, data)
            records.append(_record_line(arc, data))
        for full, arc in _sources():
            with open(full, "rb") as f:
                add(arc, f.read())
        add(info + "/METADATA", METADATA.encode())
        add(info + "/WHEEL", ("Wheel-Version: 1.0\nGenerator: qlaunch _build\nRoot-Is-Purelib: true\nTag: %s\n"
                              % TAG).encode())
        records.append(info + "/RECORD,,")
        z.writestr(info + "/RECORD", "\n".join(records) + "\n")
    return name


def build_sdist(sdist_directory, config_settings=None):
    base = "%s-%s" % (NAME, VERSION)
    name = base + ".tar.gz"
    with tarfile.open(os.path.join(sdist_directory, name), "w:gz") as t:
        for arc in ["pyproject.toml", "_build.py"]:
            t.add(os.path.join(HERE, arc), base + "/" + arc)
        for full, arc in _sources():
            t.add(full, base + "/" + arc)
        data = METADATA.encode()
        ti = tarfile.TarInfo(base + "/PKG-INFO")
        ti.size = len(data)
        t.addfile(ti, io.BytesIO(data))
    return name
