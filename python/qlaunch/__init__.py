"""qlaunch for Python: a client of the qlaunch runtime, and the in-task API
of Python tasks running on its worker ranks.

    import qlaunch

    def square(x):
        return x * x

    with qlaunch.Client() as client:          # finds the runtime like the CLI
        print(client.map(square, range(10)).result())

Inside a task, qlaunch.get_runtime() returns a handle with the shape of
BQSKit's RuntimeHandle (submit, map, next, cancel, get_cache), whose futures
are awaited from ``async def`` tasks.
"""

from .errors import CancelledError, ConnectionLost, QlaunchError, TaskError
from .runtime import RuntimeFuture, RuntimeHandle, get_runtime
from ._task import retryable

# The client (sockets, hashing, logging) is imported on first use of one of
# its names, so that an executor, which imports this package for the
# in-task API, and a script's start-up pay for it only when it is used.
_CLIENT_NAMES = ("Client", "Future", "as_completed", "find_address", "find_secret_file")


def __getattr__(name):
    if name in _CLIENT_NAMES:
        from . import client
        return getattr(client, name)
    raise AttributeError("module 'qlaunch' has no attribute %r" % name)


__version__ = "0.1.0"

__all__ = [
    "Client", "Future", "as_completed", "find_address", "find_secret_file",
    "CancelledError", "ConnectionLost", "QlaunchError", "TaskError",
    "RuntimeFuture", "RuntimeHandle", "get_runtime", "retryable",
]
