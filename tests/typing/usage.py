"""A typed user's program: `make typecheck` runs mypy --strict on it. Each
assert_type states what a user of gofutures' API gets from the type checker
(typeshed's concurrent.futures types, and gofutures' own); a wrong or
missing annotation in python/gofutures/*.pyi fails here. Never run, only
checked (the pools are made inside functions nobody calls)."""

import concurrent.futures
import concurrent.futures.thread
import sys
from collections.abc import Iterator
from typing import Any, assert_type

import gofutures
from gofutures.process import BrokenProcessPool
from gofutures.thread import BrokenThreadPool


def square(x: int) -> int:
    return x * x


def describe(x: int, unit: str = "s") -> str:
    return "%d %s" % (x, unit)


def threads() -> None:
    with gofutures.ThreadPoolExecutor(max_workers=4, grow_on_block=True) as ex:
        assert_type(ex, gofutures.ThreadPoolExecutor)
        f = ex.submit(square, 3)
        assert_type(f, gofutures.Future[int])
        assert_type(f.result(timeout=1.0), int)
        assert_type(ex.submit(describe, 3, unit="ms"), gofutures.Future[str])
        assert_type(ex.map(square, range(10), buffersize=4, progress=True), Iterator[int])
        assert_type(ex.map(describe, [1], ["s"], timeout=5, progress={"desc": "work"}), Iterator[str])
        done, _not_done = gofutures.wait([f], timeout=1, return_when=gofutures.FIRST_COMPLETED)
        assert_type(done, set[concurrent.futures.Future[int]])
        assert_type(gofutures.wait([f]).not_done, set[concurrent.futures.Future[int]])
        for g in gofutures.as_completed([f], timeout=2, progress=False):
            assert_type(g, gofutures.Future[int])
        for h in gofutures.progress([f, f], desc="squares"):
            assert_type(h, gofutures.Future[int])
        for r in gofutures.progress(ex.map(square, [1, 2])):
            assert_type(r, int)
        stats = ex.stats()
        assert_type(stats["queued"], int)
        assert_type(stats["broken"], bool)
    # A gofutures pool is the stdlib's, where the stdlib's type is asked for.
    std: concurrent.futures.Executor = gofutures.ThreadPoolExecutor()
    std_future: concurrent.futures.Future[int] = std.submit(square, 2)
    std.shutdown(wait=True, cancel_futures=True)
    del std_future


def processes() -> None:
    with gofutures.ProcessPoolExecutor(2, survive=True, task_timeout=60, max_worker_memory=2 << 30) as ex:
        f = ex.submit(square, 3)
        assert_type(f, gofutures.Future[int])
        assert_type(ex.submit_with_timeout(1.5, describe, 2), gofutures.Future[str])
        assert_type(ex.map(square, range(100), chunksize=16, buffersize=8), Iterator[int])
        assert_type(ex.kill_task(f), bool)
        assert_type(ex.stats()["died"], int)
        try:
            f.result()
        except gofutures.WorkerDiedError as e:
            assert_type(e.pid, int | None)
            assert_type(e.signal, int | None)
        except gofutures.TaskTimeoutError as e:
            assert_type(e.timeout, float | None)
        except BrokenProcessPool:
            pass
        ex.terminate_workers()
        ex.kill_workers()


def errors(exc: BaseException) -> None:
    if isinstance(exc, gofutures.DeadlockError):
        assert_type(exc.futures, tuple[concurrent.futures.Future[Any], ...])
    assert issubclass(gofutures.DeadlockError, RuntimeError)
    assert issubclass(gofutures.WorkerDiedError, gofutures.BrokenExecutor)
    assert issubclass(BrokenThreadPool, gofutures.BrokenExecutor)
    assert_type(gofutures.__version__, str)


class DaskLike:
    """A foreign future: only done() and add_done_callback()."""

    def done(self) -> bool:
        return True

    def add_done_callback(self, fn: Any) -> None:
        fn(self)


def foreign() -> None:
    futures = [DaskLike(), DaskLike()]
    assert_type(gofutures.wait(futures).done, set[DaskLike])
    for f in gofutures.as_completed(futures):
        assert_type(f, DaskLike)


if sys.version_info >= (3, 14):
    from gofutures.interpreter import BrokenInterpreterPool, ExecutionFailed

    def interpreters() -> None:
        with gofutures.InterpreterPoolExecutor(2, initializer=square, initargs=(1,)) as ex:
            assert_type(ex, gofutures.InterpreterPoolExecutor)
            assert isinstance(ex, concurrent.futures.InterpreterPoolExecutor)
            assert_type(ex.submit(square, 3), gofutures.Future[int])
            assert_type(ex.map(square, range(10), buffersize=4), Iterator[int])
            assert_type(ex.stats()["workers"], int)
        broken: type[concurrent.futures.thread.BrokenThreadPool] = BrokenInterpreterPool
        failed: type[Exception] = ExecutionFailed
        del broken, failed
