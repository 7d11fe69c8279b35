"""The process pool's crash table, after loky's (tests/test_reusable_executor.py)
and the stdlib's (test_concurrent_futures/test_deadlock.py): a worker that
exits (os._exit), segfaults, or raises, while it unpickles the call, runs it,
or pickles its result.

Expected, as a concurrent.futures user sees it:
  * exit / segfault, in any phase: the pool breaks; the call and every later
    submit fail with BrokenProcessPool, whose message (gofutures' addition)
    names the worker's pid and its exit code or signal, and whose cause (as
    3.15's stdlib's) says "Process PID terminated abruptly with exit code N";
    no worker is left.
  * raise while running the call or pickling its result: that exception,
    with the worker's traceback as its _RemoteTraceback cause.
  * raise while unpickling the call: BrokenProcessPool, as the stdlib gives.
  * a raise never breaks the pool: later calls run on the same workers. (The
    stdlib's worker dies of an unpickling error and its pool breaks; gofutures
    fails that call only, by design: see the docstring of gofutures.process.)

Everything the workers unpickle lives at module level here: workers import
this module by name (tests/ is on the sys.path they inherit).
"""

import faulthandler
import os
import re
import threading
import time
from concurrent.futures.process import BrokenProcessPool, _RemoteTraceback

import pytest

import gofutures

EXIT_CODE = 13
MAX_WORKERS = 2
TIMEOUT = 30


class CrashTableError(Exception):
    pass


# ------------------------------------------------------------ the failures


def _exit():
    os._exit(EXIT_CODE)


def _segfault():
    faulthandler._sigsegv()  # also turns core dumps off for this process


def _raise():
    raise CrashTableError("raised on purpose")


class FailAtUnpickle:
    """Pickles fine; unpickling it runs the failure (in the worker)."""

    def __init__(self, failure):
        self.failure = failure

    def __reduce__(self):
        return (self.failure, ())


class FailAtPickle:
    """Made in the worker (it is the called function), returned there, and
    pickling it as the result runs the failure."""

    def __init__(self, failure):
        self.failure = failure

    def __reduce__(self):
        self.failure()
        raise AssertionError("unreachable")  # pragma: no cover


def _call(phase, failure):
    """(fn, args) whose call fails with `failure` in `phase`."""
    if phase == "unpickling-call":
        return id, (FailAtUnpickle(failure),)
    if phase == "running-call":
        return failure, ()
    if phase == "pickling-result":
        return FailAtPickle, (failure,)
    raise ValueError(phase)


# ------------------------------------------------------------ helpers


def _pid():
    return os.getpid()


def _unpicklable_result():
    return threading.Lock()


class RaiseAtParentPickle:
    def __reduce__(self):
        raise CrashTableError("cannot pickle this here")


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True  # running, or exited and not reaped: still left behind


def _assert_all_gone(pids, seconds=10):
    deadline = time.monotonic() + seconds
    while any(_alive(p) for p in pids):
        if time.monotonic() >= deadline:
            pytest.fail("worker processes left behind: %s" % sorted(p for p in pids if _alive(p)))
        time.sleep(0.02)


@pytest.fixture
def pool():
    ex = gofutures.ProcessPoolExecutor(MAX_WORKERS)
    yield ex
    ex.shutdown(wait=False, cancel_futures=True)


def _worker_pids(ex):
    """The pool's workers, once at least one has run a task."""
    first = ex.submit(_pid).result(timeout=TIMEOUT)
    pids = set(ex._worker_pids())
    assert first in pids
    return pids


# ------------------------------------------------------------ the table

PHASES = ["unpickling-call", "running-call", "pickling-result"]
DEATHS = {
    "exit": (_exit, r"exited with code %d" % EXIT_CODE),
    "segfault": (_segfault, r"was killed by signal 11 \(segmentation fault\)"),
}


@pytest.mark.parametrize("phase", PHASES)
@pytest.mark.parametrize("death", list(DEATHS))
def test_worker_death_breaks_the_pool(pool, death, phase):
    failure, how = DEATHS[death]
    pids = _worker_pids(pool)
    fn, args = _call(phase, failure)

    fut = pool.submit(fn, *args)
    with pytest.raises(BrokenProcessPool) as info:
        fut.result(timeout=TIMEOUT)

    message = str(info.value)
    match = re.search(r"worker process (\d+) %s while running task \d+" % how, message)
    assert match, message
    died = int(match.group(1))
    # The pool started all its workers up front (the default on Linux before
    # 3.14), or one per task that found no idle worker.
    assert died in pids or len(pids) < MAX_WORKERS, (died, pids)
    assert died != os.getpid()
    # As 3.15's stdlib (gh-139462): the cause names the process and its exit code.
    cause = info.value.__cause__
    assert isinstance(cause, _RemoteTraceback)
    exitcode = EXIT_CODE if death == "exit" else -11
    assert "Process %d terminated abruptly with exit code %d" % (died, exitcode) in cause.tb

    with pytest.raises(BrokenProcessPool):
        pool.submit(pow, 2, 2)
    # The dead worker is reaped and its siblings are stopped, without shutdown();
    # the pool forgets each once its supervisor hears it was reaped.
    _assert_all_gone(pids | {died})
    deadline = time.monotonic() + TIMEOUT
    while pool._worker_pids() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert pool._worker_pids() == []
    pool.shutdown(wait=True)


@pytest.mark.parametrize("phase", PHASES)
def test_worker_raise_fails_only_that_call(pool, phase):
    pids = _worker_pids(pool)
    fn, args = _call(phase, _raise)

    fut = pool.submit(fn, *args)
    if phase == "unpickling-call":
        # As the stdlib: BrokenProcessPool (whose pool, unlike this one,
        # breaks); gofutures' message says why.
        with pytest.raises(BrokenProcessPool) as info:
            fut.result(timeout=TIMEOUT)
        assert "CrashTableError: raised on purpose" in str(info.value)
    else:
        with pytest.raises(CrashTableError, match="raised on purpose") as info:
            fut.result(timeout=TIMEOUT)
        remote = info.value.__cause__
        assert isinstance(remote, _RemoteTraceback)
        assert "in _raise" in str(remote)
        if phase == "pickling-result":
            assert "in __reduce__" in str(remote)

    # No worker died and the pool goes on, on the same workers.
    assert pool.submit(pow, 3, 4).result(timeout=TIMEOUT) == 81
    assert {pool.submit(_pid).result(timeout=TIMEOUT) for _ in range(4)} <= pids
    assert set(pool._worker_pids()) == pids
    pool.shutdown(wait=True)
    _assert_all_gone(pids)


# ------------------------------------------------------------ around the table


def test_queued_calls_fail_with_the_broken_pool():
    ex = gofutures.ProcessPoolExecutor(1)
    try:
        (pid,) = _worker_pids(ex)
        futures = [ex.submit(_exit)] + [ex.submit(pow, 2, i) for i in range(3)]
        for fut in futures:
            with pytest.raises(BrokenProcessPool, match=r"worker process %d exited with code %d" % (pid, EXIT_CODE)):
                fut.result(timeout=TIMEOUT)
        _assert_all_gone({pid})
    finally:
        ex.shutdown(wait=False, cancel_futures=True)


def test_unpicklable_result_fails_only_that_call(pool):
    # test_process_smoke covers an unpicklable argument (a Lock); this is the
    # result side: the worker's pickling error reaches result().
    pids = _worker_pids(pool)
    with pytest.raises(TypeError, match="lock") as info:
        pool.submit(_unpicklable_result).result(timeout=TIMEOUT)
    assert isinstance(info.value.__cause__, _RemoteTraceback)
    assert pool.submit(pow, 2, 5).result(timeout=TIMEOUT) == 32
    assert set(pool._worker_pids()) == pids


def test_argument_pickling_error_in_the_parent_fails_only_that_call(pool):
    # An arbitrary exception from __reduce__ (not the TypeError of a Lock,
    # which gofutures retries with cloudpickle) reaches that future only.
    pids = _worker_pids(pool)
    fut = pool.submit(id, RaiseAtParentPickle())
    with pytest.raises(CrashTableError, match="cannot pickle this here"):
        fut.result(timeout=TIMEOUT)
    assert pool.submit(pow, 2, 6).result(timeout=TIMEOUT) == 64
    assert set(pool._worker_pids()) == pids
