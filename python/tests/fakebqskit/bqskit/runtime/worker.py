"""The worker module: the process's worker object, or None outside one."""

_worker = None


def get_worker():
    if _worker is None:
        raise RuntimeError("Worker has not been started.")
    return _worker
