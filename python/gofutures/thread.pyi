import concurrent.futures
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures.thread import BrokenThreadPool as BrokenThreadPool
from typing import Any, ParamSpec, Self, TypedDict, TypeVar

from . import Future, _Progress

__all__ = ["ThreadPoolExecutor", "BrokenThreadPool"]

_T = TypeVar("_T")
_P = ParamSpec("_P")

class _ThreadPoolStats(TypedDict):
    workers: int
    idle: int
    queued: int
    running: int
    done: int
    failed: int
    cancelled: int
    submitted: int
    shutdown: bool
    broken: bool

class ThreadPoolExecutor(concurrent.futures.ThreadPoolExecutor):
    # In a forked child of a process that loaded gofutures, an instance of a
    # subclass running the stdlib's pool (gofutures._fork).
    def __new__(cls, *args: Any, **kwargs: Any) -> Self: ...
    def __init__(
        self,
        max_workers: int | None = None,
        thread_name_prefix: str = "",
        initializer: Callable[..., object] | None = None,
        initargs: tuple[Any, ...] = (),
        *,
        grow_on_block: bool = False,
    ) -> None: ...
    def submit(self, fn: Callable[_P, _T], /, *args: _P.args, **kwargs: _P.kwargs) -> Future[_T]: ...
    def map(
        self,
        fn: Callable[..., _T],
        *iterables: Iterable[Any],
        timeout: float | None = None,
        chunksize: int = 1,
        buffersize: int | None = None,
        progress: _Progress = False,
    ) -> Iterator[_T]: ...
    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None: ...
    def stats(self) -> _ThreadPoolStats: ...
