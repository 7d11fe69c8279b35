import concurrent.futures
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures.process import BrokenProcessPool as BrokenProcessPool
from multiprocessing.context import BaseContext
from typing import Any, ParamSpec, Self, TypeVar

from . import Future, _Progress
from .thread import _ThreadPoolStats

__all__ = ["ProcessPoolExecutor", "BrokenProcessPool"]

_T = TypeVar("_T")
_P = ParamSpec("_P")

class _ProcessPoolStats(_ThreadPoolStats):
    killed: int
    died: int
    recycled: int
    replaced: int

class ProcessPoolExecutor(concurrent.futures.ProcessPoolExecutor):
    # In a forked child of a process that loaded gofutures, an instance of a
    # subclass running the stdlib's pool (gofutures._fork).
    def __new__(cls, *args: Any, **kwargs: Any) -> Self: ...
    def __init__(
        self,
        max_workers: int | None = None,
        mp_context: BaseContext | None = None,
        initializer: Callable[..., object] | None = None,
        initargs: tuple[Any, ...] = (),
        *,
        max_tasks_per_child: int | None = None,
        survive: bool = False,
        task_timeout: float | None = None,
        max_worker_memory: int | None = None,
    ) -> None: ...
    def submit(self, fn: Callable[_P, _T], /, *args: _P.args, **kwargs: _P.kwargs) -> Future[_T]: ...
    def submit_with_timeout(
        self, timeout: float, fn: Callable[_P, _T], /, *args: _P.args, **kwargs: _P.kwargs
    ) -> Future[_T]: ...
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
    def kill_task(self, future: concurrent.futures.Future[Any]) -> bool: ...
    def stats(self) -> _ProcessPoolStats: ...
    def terminate_workers(self) -> None: ...
    def kill_workers(self) -> None: ...
