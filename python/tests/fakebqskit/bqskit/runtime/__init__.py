"""bqskit.runtime as passes see it: get_runtime() returns the worker
module's current worker."""


def get_runtime():
    from bqskit.runtime import worker
    return worker.get_worker()
