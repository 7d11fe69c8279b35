# Types of gofutures' public API, for mypy, pyright and editors. They keep
# typeshed's types for concurrent.futures (a gofutures object is usable where
# the stdlib's is expected) and add gofutures' own keywords and classes.
# Checked by `make typecheck`: stubtest against the runtime, mypy --strict on
# tests/typing/.
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import (
    ALL_COMPLETED as ALL_COMPLETED,
    FIRST_COMPLETED as FIRST_COMPLETED,
    FIRST_EXCEPTION as FIRST_EXCEPTION,
    BrokenExecutor as BrokenExecutor,
    CancelledError as CancelledError,
    Executor as Executor,
    Future as _StdFuture,
    InvalidStateError as InvalidStateError,
    TimeoutError as TimeoutError,
)
from concurrent.futures._base import DoneAndNotDoneFutures
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Generic, NamedTuple, Protocol, TypeAlias, TypeVar, overload

from . import process as process, thread as thread
from .process import ProcessPoolExecutor as ProcessPoolExecutor
from .thread import ThreadPoolExecutor as ThreadPoolExecutor

if sys.version_info >= (3, 14):
    from . import interpreter as interpreter
    from .interpreter import InterpreterPoolExecutor as InterpreterPoolExecutor

__version__: str

__all__: tuple[str, ...] = (
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
)
if sys.version_info >= (3, 14):
    __all__ += ("InterpreterPoolExecutor",)

_T = TypeVar("_T")

class Future(_StdFuture[_T]):
    """A concurrent.futures.Future whose state lives in the Go core."""

class _Bar(Protocol):
    """What progress= accepts as a bar of its own: tqdm's interface."""
    def update(self, n: int = ..., /) -> object: ...
    def close(self) -> object: ...

# map(progress=), as_completed(progress=): False or None for no bar; True;
# tqdm keyword arguments; a tqdm-like class; a tqdm-like object.
_Progress: TypeAlias = bool | Mapping[str, Any] | type[_Bar] | _Bar | None

class _FutureLike(Protocol):
    """A future wait() and as_completed() accept besides the stdlib's: one
    with done() and add_done_callback() (dask's distributed.Future)."""
    def done(self) -> bool: ...
    def add_done_callback(self, fn: Callable[[Any], object], /) -> object: ...

_F = TypeVar("_F", bound=_FutureLike)

class _DoneAndNotDone(NamedTuple, Generic[_F]):
    done: set[_F]
    not_done: set[_F]

@overload
def wait(
    fs: Iterable[_StdFuture[_T]], timeout: float | None = None, return_when: str = "ALL_COMPLETED"
) -> DoneAndNotDoneFutures[_T]: ...
@overload
def wait(fs: Iterable[_F], timeout: float | None = None, return_when: str = "ALL_COMPLETED") -> _DoneAndNotDone[_F]: ...
def as_completed(fs: Iterable[_F], timeout: float | None = None, progress: _Progress = False) -> Iterator[_F]: ...
def progress(
    iterable_or_futures: Iterable[_T], total: float | None = None, desc: str | None = None, **tqdm_kwargs: Any
) -> Iterator[_T]: ...

class DeadlockError(RuntimeError):
    """A wait on a gofutures worker that could never end."""

    futures: tuple[_StdFuture[Any], ...]
    def __init__(self, message: str, futures: Iterable[_StdFuture[Any]] = ()) -> None: ...

class WorkerDiedError(BrokenProcessPool):
    """The worker running this call died; with survive=True only this call fails."""

    pid: int | None
    exitcode: int | None
    signal: int | None
    task: str | None
    task_id: int | None
    starting: bool
    def __init__(
        self,
        message: str,
        pid: int | None = None,
        exitcode: int | None = None,
        signal: int | None = None,
        task: str | None = None,
        task_id: int | None = None,
        starting: bool = False,
    ) -> None: ...

class TaskTimeoutError(TimeoutError):
    """This call ran past its time limit; its worker was killed and replaced."""

    pid: int | None
    timeout: float | None
    task: str | None
    task_id: int | None
    def __init__(
        self,
        message: str,
        pid: int | None = None,
        timeout: float | None = None,
        task: str | None = None,
        task_id: int | None = None,
    ) -> None: ...
