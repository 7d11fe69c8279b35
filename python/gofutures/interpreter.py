"""InterpreterPoolExecutor (Python 3.14+) on gofutures' Go thread pool.

The pool is gofutures' ThreadPoolExecutor: its workers are OS threads driven
by the Go core's queue (waits, deadlock detection, stats(), progress= and
lazy map(buffersize=) are the thread pool's). What differs is what a worker
runs: each one, when it starts, creates a subinterpreter with its own GIL
(PEP 684, pybind/subinterp.c) that it owns for its whole life and ends when
it stops; every task it takes runs in that interpreter. A task crosses as
bytes: the call pickled in the main interpreter, run and its outcome
pickled in the worker's (gofutures._interp_sub), the outcome unpickled back
here, where the future completes. While a task runs, the worker holds its
interpreter's GIL, not the main one's: pure-Python tasks run in parallel.

What can be sent, and how failures read, is the stdlib's contract: a call
that cannot be sent fails with NotShareableError; an exception raised by the
call is raised again here, chained from an ExecutionFailed describing it.
"""

import os
import sys
import threading
import types
from concurrent.futures import interpreter as _std_interpreter
from concurrent.futures._base import LOGGER
from concurrent.futures.interpreter import BrokenInterpreterPool
from concurrent.interpreters import ExecutionFailed, NotShareableError

from . import _fork, _interp_sub, thread
from ._core import hot
from ._fork import forked_child as _forked_child

__all__ = ["InterpreterPoolExecutor", "BrokenInterpreterPool", "ExecutionFailed"]

with open(_interp_sub.__file__, encoding="utf-8") as _f:
    _SUB_SOURCE = _f.read()

# The worker interpreter of each worker thread (by thread id), from its
# start to its stop; only that thread uses its entry.
_subs = {}


def _setup_payload():
    """What a new worker interpreter needs from this one: sys.path as it is
    now, and where __main__ came from (a `python -m` module or a file)."""
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    if spec is not None and spec.name and spec.name != "__main__":
        source = ("module", spec.name)
    elif getattr(main, "__file__", None):
        source = ("path", os.path.abspath(main.__file__))
    else:
        source = None  # interactive: its functions are sent only if stateless
    return _interp_sub.dumps({"path": list(sys.path), "main": source})


def _execution_failed(info):
    name, qualname, module = info["type"]
    return ExecutionFailed(
        types.SimpleNamespace(
            type=types.SimpleNamespace(__name__=name, __qualname__=qualname, __module__=module),
            msg=info["msg"],
            formatted=info["formatted"],
            errdisplay=info["errdisplay"],
        )
    )


def _not_unpickled(text):
    # As the stdlib words it: the cause carries the worker's error.
    return Exception(
        "%s\n\nThe above exception was the direct cause of the following exception:\n\n"
        "concurrent.interpreters.NotShareableError: object could not be unpickled" % text
    )


def _call(sub, fn, args, kwargs):
    """fn(*args, **kwargs) in the worker interpreter sub."""
    if type(fn) is types.FunctionType:  # sent as its code if stateless, as by the stdlib
        fn = _interp_sub.stateless_code(fn) or fn
    try:
        payload = _interp_sub.dumps((fn, args, kwargs))
    except Exception as exc:
        raise NotShareableError("args not shareable") from exc
    reply = hot.sub_call(sub, payload)
    try:
        kind, value, extra = _interp_sub.loads(reply)
    except Exception as exc:
        raise NotShareableError("result not shareable") from exc
    if kind == _interp_sub.RESULT:
        return value
    if kind == _interp_sub.FAILED:
        wrapper = _execution_failed(extra)
        try:
            exc = _interp_sub.loads(value) if value is not None else None
        except Exception:
            exc = None
        if exc is None:
            raise wrapper
        try:
            raise exc from wrapper
        finally:
            del exc, wrapper
    if kind == _interp_sub.NOT_UNPICKLED:
        raise NotShareableError("args not shareable") from _not_unpickled(value)
    raise NotShareableError("result not shareable") from Exception(value)


def _run(fn, /, *args, **kwargs):
    # What the Go pool runs for each task, on a worker thread.
    return _call(_subs[threading.get_ident()], fn, args, kwargs)


class _InterpreterHooks(thread._WorkerHooks):
    """The thread pool's worker hooks, plus the worker's interpreter: made
    when the worker starts (its initializer runs in it), ended when it
    stops, on the worker's own thread both times."""

    __slots__ = ()
    broken_type = BrokenInterpreterPool  # read by the Go pool's workers (pybind/worker.c)

    def init(self, index):
        try:
            sub = hot.sub_create(_SUB_SOURCE, _interp_sub.__name__, _setup_payload())
            _subs[threading.get_ident()] = sub
            if self.initializer is not None:
                _call(sub, self.initializer, tuple(self.initargs), {})
        except BaseException:
            LOGGER.critical("Exception in initializer:", exc_info=True)
            raise

    def stop(self, index, retired):
        sub = _subs.pop(threading.get_ident(), None)
        try:
            if sub is not None:
                hot.sub_close(sub)
        finally:
            super().stop(index, retired)


_submit = thread.ThreadPoolExecutor.submit


class InterpreterPoolExecutor(thread.ThreadPoolExecutor, _std_interpreter.InterpreterPoolExecutor):
    """An Executor that runs calls in a pool of at most max_workers
    interpreters, each with its own GIL, one per worker thread.

    Drop-in for concurrent.futures.InterpreterPoolExecutor (and an instance
    of it): the same contract for what can be sent.
    """

    _hooks_type = _InterpreterHooks
    _parallel_workers = True

    def __new__(cls, *args, **kwargs):
        if _forked_child() and not issubclass(cls, _fork.ThreadPoolInChild):
            cls = _InChild
        return super().__new__(cls)

    def __init__(self, max_workers=None, thread_name_prefix="", initializer=None, initargs=()):
        """max_workers: the most interpreters (and threads) the pool uses;
        initializer(*initargs) runs in each worker's interpreter first (a
        script string is not supported, as in the stdlib)."""
        thread_name_prefix = thread_name_prefix or ("InterpreterPoolExecutor-%d" % self._counter())
        super().__init__(max_workers, thread_name_prefix, initializer, initargs)

    def submit(self, fn, /, *args, **kwargs):
        try:
            return _submit(self, _run, fn, *args, **kwargs)
        except BrokenInterpreterPool:
            raise
        except thread.BrokenThreadPool as exc:
            raise BrokenInterpreterPool(*exc.args) from None

    submit.__doc__ = _std_interpreter.InterpreterPoolExecutor.submit.__doc__

    @property
    def _broken(self):
        broken = thread.ThreadPoolExecutor._broken.fget(self)
        return broken and "A worker's initializer failed, the interpreter pool is not usable anymore"


class _InChild(_fork.ThreadPoolInChild, InterpreterPoolExecutor):
    """InterpreterPoolExecutor in a forked child of a process that loaded
    gofutures: the stdlib's pool (see _fork)."""

    def __init__(self, max_workers=None, thread_name_prefix="", initializer=None, initargs=()):
        _std_interpreter.InterpreterPoolExecutor.__init__(self, max_workers, thread_name_prefix, initializer, initargs)
