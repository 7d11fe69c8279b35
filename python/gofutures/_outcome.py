"""The words of a process call's outcome when it is not a plain pickled
value: the pool broke, the call failed alone (its worker died in survive
mode, or ran past its time limit), or what came back cannot be unpickled
here.

The binding builds every outcome in one place (pybind/outcome.c) and calls
build() for these; the package registers it at import
(hot.set_outcome_builder), so the exception classes and their messages stay
in the Python layer.
"""

import json
import pickle
import re
import reprlib
from concurrent.futures import process as _std_process
from concurrent.futures.process import BrokenProcessPool

from . import _bigpayload
from ._constants import DELIVER_BROKEN, DELIVER_DIED, DELIVER_TIMEOUT, DELIVER_UNREADABLE
from ._procerrors import TaskTimeoutError, WorkerDiedError


def build(kind, data, cause):
    """The exception a process call ends with. cause: the exception that
    unpickling data (a RESULT or ERROR) raised here, else None."""
    if cause is not None:
        return unpicklable(cause)
    if kind == DELIVER_BROKEN:
        return broken(data.decode("utf-8", "replace"))
    if kind in (DELIVER_DIED, DELIVER_TIMEOUT):
        return failed_alone(kind, data)
    if kind == DELIVER_UNREADABLE:
        header, _, _ = data.partition(b"\n")
        h = json.loads(header)
        if h["no_memory"]:
            return MemoryError(h["message"])
        return BrokenProcessPool(h["message"] + " (only this call failed; the pool goes on)")
    raise ValueError("gofutures: no outcome of kind %r to build" % (kind,))


def unpicklable(exc):
    """The BrokenProcessPool a call fails with when its outcome came back
    from its worker but unpickling it here raised exc: only that call
    fails, where the stdlib's pool breaks. A MemoryError is the call's
    exception itself (an outcome too big for this process)."""
    if isinstance(exc, MemoryError):
        return exc
    error = BrokenProcessPool(
        "the outcome of this call came back from its worker but could not be "
        "unpickled here: %s: %s" % (type(exc).__name__, exc)
    )
    error.__cause__ = exc
    return error


def broken(message):
    """What each pending call of a pool that broke ends with; message says
    why (gofutures/procpool.go's WorkerDied, say)."""
    error = BrokenProcessPool(
        "A process in the process pool was terminated abruptly while the future was running or pending: " + message
    )
    error.__cause__ = _died_cause(message)
    return error


# How gofutures/procpool.go's WorkerDied.Error() begins.
_WORKER_DIED = re.compile(r"worker process (\d+) (?:exited with code (-?\d+)|was killed by signal (\d+))")


def _died_cause(message):
    """The cause 3.15's stdlib gives a pool broken by a worker that died
    without a traceback (gh-139462): a _RemoteTraceback naming the process and
    its exit code (-N for signal N). None if no worker died (a pool broken by
    terminate_workers, say)."""
    died = _WORKER_DIED.match(message)
    if died is None or died.group(2) == "0":
        return None
    pid, code, signum = died.groups()
    return _std_process._RemoteTraceback(
        "\n'''\nProcess %s terminated abruptly with exit code %d'''"
        % (pid, int(code) if signum is None else -int(signum))
    )


def failed_alone(kind, data):
    """The exception of a call that failed alone: data is a JSON header
    (pybind/procpool.go's failure), a newline, then the call's pickle."""
    header, _, call = data.partition(b"\n")
    h = json.loads(header)
    task = _describe(call)
    message = "%s; the call was %s" % (h["message"], task)
    if kind == DELIVER_TIMEOUT:
        return TaskTimeoutError(
            message + " (raise the limit if such a call needs longer)", h["pid"], h["limit"], task, h["task_id"]
        )
    signum = h["signal"] or None
    if h["starting"]:
        message += " (check the initializer, and that workers can import the main module)"
    elif signum:
        message += " (a crash in native code, or a kill from outside such as the OOM killer)"
    # exitcode as multiprocessing.Process.exitcode gives it: -N for signal N.
    return WorkerDiedError(
        message, h["pid"], -signum if signum else h["exitcode"], signum, task, h["task_id"], h["starting"]
    )


def _describe(call):
    """fn(args...) of a pickled call, shortened; only read when it failed."""
    if _bigpayload.is_reference(call):  # its pickle was in shared memory, gone by now
        return "%s(<a big call's arguments>)" % _bigpayload.describe(call)
    try:
        fn, args, kwargs, chunked = pickle.loads(call)
    except BaseException as exc:
        return "<a call that cannot be unpickled here: %s>" % type(exc).__name__
    name = getattr(fn, "__qualname__", None) or repr(fn)
    short = reprlib.Repr()
    short.maxstring = short.maxother = 40
    if chunked:
        return "%s over a chunk of %d calls" % (name, len(args))
    parts = [short.repr(a) for a in args]
    parts += ["%s=%s" % (k, short.repr(v)) for k, v in (kwargs or {}).items()]
    return "%s(%s)" % (name, ", ".join(parts))
