"""The exceptions of a process pool's opt-in extras: WorkerDiedError
(survive=True) and TaskTimeoutError (task_timeout=).

Pure Python (no native library), so that `import gofutures` can export
them eagerly and `except gofutures.WorkerDiedError` never loads Go.
"""

from concurrent.futures.process import BrokenProcessPool

__all__ = ["WorkerDiedError", "TaskTimeoutError"]


class WorkerDiedError(BrokenProcessPool):
    """The worker process running this call died (a segfault, os._exit, the
    OOM killer, a kill from outside) in a pool created with survive=True:
    only this call fails; the worker was replaced and the pool goes on.

    A BrokenProcessPool, so code written for the stdlib's pool, where the
    same death breaks the pool, still catches it.

    Attributes: pid; exitcode (as multiprocessing.Process.exitcode: -N
    when killed by signal N); signal (the signal number, or None);
    starting (it died before it was ready: check the initializer); task (a
    short description of the call, fn(args...)); task_id (the pool's
    number for the call).
    """

    def __init__(self, message, pid=None, exitcode=None, signal=None, task=None, task_id=None, starting=False):
        super().__init__(message)
        self.pid, self.exitcode, self.signal = pid, exitcode, signal
        self.task, self.task_id, self.starting = task, task_id, starting

    def __reduce__(self):
        return type(self), (self.args[0], self.pid, self.exitcode, self.signal, self.task, self.task_id, self.starting)


class TaskTimeoutError(TimeoutError):
    """This call ran past the pool's task_timeout: its worker process was
    killed (SIGKILL) and replaced, and the pool goes on. Whatever the call
    had half done in that process (files, locks it held) is left as it was.

    Attributes: pid (the worker killed), timeout (the limit, in seconds),
    task (a short description of the call), task_id.
    """

    def __init__(self, message, pid=None, timeout=None, task=None, task_id=None):
        super().__init__(message)
        self.pid, self.timeout, self.task, self.task_id = pid, timeout, task, task_id

    def __reduce__(self):
        return type(self), (self.args[0], self.pid, self.timeout, self.task, self.task_id)
