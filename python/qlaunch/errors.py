"""Errors raised by qlaunch."""


class QlaunchError(RuntimeError):
    """Base of qlaunch's errors (a RuntimeError, as BQSKit's runtime raises)."""


class ConnectionLost(QlaunchError):
    """The connection to the runtime ended; every waiting call gets this."""


class TaskError(QlaunchError):
    """A task failed in the runtime.

    message is what the task reported: for a Python task, the remote
    traceback text ending with the exception's type and text. kernel, rank
    and host name what ran it. lost is True when its rank was lost,
    cancelled when it was cancelled.
    """

    def __init__(self, message, kernel="", rank=-1, host="", lost=False, cancelled=False):
        self.message = message
        self.kernel = kernel
        self.rank = rank
        self.host = host
        self.lost = lost
        self.cancelled = cancelled
        super().__init__(self._text())

    def _text(self):
        if self.cancelled:
            return "task cancelled" + (": " + self.message if self.message else "")
        if self.lost:
            return "rank %d on %s lost: %s" % (self.rank, self.host, self.message)
        where = " on rank %d (%s)" % (self.rank, self.host) if self.host else ""
        return "%s task failed%s:\n%s" % (self.kernel or "the", where, self.message)

    def __reduce__(self):
        return (TaskError, (self.message, self.kernel, self.rank, self.host, self.lost, self.cancelled))


class CancelledError(TaskError):
    """The task was cancelled."""

    def __init__(self, message="", kernel="", rank=-1, host="", lost=False, cancelled=True):
        super().__init__(message, kernel, rank, host, lost, True)

    def __reduce__(self):
        return (CancelledError, (self.message, self.kernel, self.rank, self.host))
