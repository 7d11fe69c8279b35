"""gofutures: a drop-in replacement for concurrent.futures on a Go core.

Swap `concurrent.futures` for `gofutures` in an import and the program runs
unchanged: same names, signatures and behaviour, the exception classes are
the stdlib's own, and the futures are concurrent.futures.Future instances.
"""

from concurrent.futures._base import (  # the stdlib's own objects, re-exported
    ALL_COMPLETED,
    FIRST_COMPLETED,
    FIRST_EXCEPTION,
    BrokenExecutor,
    CancelledError,
    Executor,
    InvalidStateError,
    TimeoutError,
)

from ._deadlock import DeadlockError
from ._procerrors import TaskTimeoutError, WorkerDiedError

# The names backed by the native library (the Go runtime) load on first
# use. Why: a process-pool worker re-imports the parent's main script, and a
# script that merely does `import gofutures` must not make every worker load
# a Go runtime it never uses (60 ms of each worker's start, measured).
_LAZY = {
    "Future": "._base",
    "wait": "._base",
    "as_completed": "._base",
    "progress": "._progress",  # pure Python, but tqdm is imported only when a bar is made
    "ThreadPoolExecutor": ".thread",
    "ProcessPoolExecutor": ".process",
}
_SUBMODULES = ("thread", "process")  # gofutures.thread.BrokenThreadPool, as in the stdlib

# 3.14+: the stdlib's InterpreterPoolExecutor, where its concurrent.futures
# offers it (not where the interpreter lacks subinterpreters).
import concurrent.futures as _std_futures  # noqa: E402  (already loaded by the imports above)

_INTERPRETERS = "InterpreterPoolExecutor" in _std_futures.__all__
if _INTERPRETERS:
    _LAZY["InterpreterPoolExecutor"] = ".interpreter"
    _SUBMODULES += ("interpreter",)
del _std_futures


def _in_subinterpreter():
    try:
        import _interpreters  # concurrent.futures has loaded it where it exists
    except ImportError:
        return False
    return _interpreters.get_current()[0] != _interpreters.get_main()[0]


# The Go core loads in the main interpreter only. In another (a worker of an
# InterpreterPoolExecutor runs the main script and its callers' modules
# again), gofutures' pools and their modules are the stdlib's.
_STDLIB_HERE = _in_subinterpreter()
if _STDLIB_HERE:
    import importlib as _importlib
    import sys as _sys

    for _name in _SUBMODULES:
        _sys.modules[__name__ + "." + _name] = _importlib.import_module("concurrent.futures." + _name)
    del _importlib, _sys, _name


def __getattr__(name):
    import importlib

    if name in _SUBMODULES:
        return importlib.import_module("." + name, __name__)
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError("module 'gofutures' has no attribute %r" % name)
    if _STDLIB_HERE and module != "._progress":
        import concurrent.futures

        value = getattr(concurrent.futures, name)
    else:
        value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY) | set(_SUBMODULES))


__version__ = "0.1.0"

__all__ = (
    "FIRST_COMPLETED",
    "FIRST_EXCEPTION",
    "ALL_COMPLETED",
    "CancelledError",
    "TimeoutError",
    "InvalidStateError",
    "BrokenExecutor",
    "DeadlockError",
    "WorkerDiedError",
    "TaskTimeoutError",
    "Future",
    "Executor",
    "wait",
    "as_completed",
    "ThreadPoolExecutor",
    "ProcessPoolExecutor",
    "progress",
) + (("InterpreterPoolExecutor",) if _INTERPRETERS else ())
