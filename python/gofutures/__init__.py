"""gofutures: a drop-in replacement for concurrent.futures on a Go core.

Swap `concurrent.futures` for `gofutures` in an import and the program runs
unchanged: same names, signatures and behaviour, the exception classes are
the stdlib's own, and the futures are concurrent.futures.Future instances.
"""
from ._base import (
    ALL_COMPLETED,
    FIRST_COMPLETED,
    FIRST_EXCEPTION,
    BrokenExecutor,
    CancelledError,
    Executor,
    Future,
    InvalidStateError,
    TimeoutError,
    as_completed,
    wait,
)
from .process import ProcessPoolExecutor
from .thread import ThreadPoolExecutor

__version__ = "0.1.0"

__all__ = (
    "FIRST_COMPLETED",
    "FIRST_EXCEPTION",
    "ALL_COMPLETED",
    "CancelledError",
    "TimeoutError",
    "InvalidStateError",
    "BrokenExecutor",
    "Future",
    "Executor",
    "wait",
    "as_completed",
    "ThreadPoolExecutor",
    "ProcessPoolExecutor",
)
