"""A first line of process-pool tests: the behaviours the landed
ProcessPoolExecutor already promises (the fuller suite comes with its issue)."""

import os
import time
from concurrent.futures.process import BrokenProcessPool, _RemoteTraceback

import pytest

import gofutures


def _boom(x):
    raise ValueError("bad %d" % x)


def _pid(_=None):
    return os.getpid()


def _gone(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def _wait_gone(pids, seconds=5):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if all(_gone(p) for p in pids):
            return True
        time.sleep(0.05)
    return False


def test_submit_map_and_chunks():
    with gofutures.ProcessPoolExecutor(2) as ex:
        assert ex.submit(pow, 2, 10).result(timeout=30) == 1024
        assert list(ex.map(abs, range(-6, 6))) == [abs(i) for i in range(-6, 6)]
        assert list(ex.map(pow, range(7), [2] * 7, chunksize=3)) == [i * i for i in range(7)]


def test_lambda_and_closure_go_by_value():
    k = 5
    with gofutures.ProcessPoolExecutor(1) as ex:
        assert ex.submit(lambda x: x * 2, 3).result(timeout=30) == 6
        assert ex.submit(lambda: k + 1).result(timeout=30) == 6


def test_worker_exception_has_remote_traceback():
    with gofutures.ProcessPoolExecutor(1) as ex:
        fut = ex.submit(_boom, 7)
        with pytest.raises(ValueError, match="bad 7") as info:
            fut.result(timeout=30)
        assert isinstance(info.value.__cause__, _RemoteTraceback)
        assert "_boom" in str(info.value.__cause__)
        assert ex.submit(pow, 3, 2).result(timeout=30) == 9  # the pool still works


def test_unpicklable_argument_fails_only_that_future():
    import threading

    with gofutures.ProcessPoolExecutor(1) as ex:
        bad = ex.submit(id, threading.Lock())
        with pytest.raises(TypeError):
            bad.result(timeout=30)
        assert ex.submit(pow, 2, 3).result(timeout=30) == 8


def test_worker_death_breaks_pool_and_says_which():
    ex = gofutures.ProcessPoolExecutor(2)
    # Start the workers and note them before one dies: once it has, the
    # broken pool may already have reaped them all.
    assert ex.submit(pow, 2, 2).result(timeout=30) == 4
    pids = ex._worker_pids()
    assert pids
    fut = ex.submit(os._exit, 3)
    with pytest.raises(BrokenProcessPool) as info:
        fut.result(timeout=30)
    message = str(info.value)
    assert "exited with code 3" in message and "worker process" in message
    with pytest.raises(BrokenProcessPool):
        ex.submit(pow, 2, 2)
    ex.shutdown()
    assert _wait_gone(pids), "worker processes left behind"


def test_max_tasks_per_child_replaces_workers():
    with gofutures.ProcessPoolExecutor(1, max_tasks_per_child=1) as ex:
        first = ex.submit(_pid).result(timeout=30)
        second = ex.submit(_pid).result(timeout=30)
    assert first != second


def test_shutdown_leaves_no_workers():
    ex = gofutures.ProcessPoolExecutor(2)
    busy = [ex.submit(time.sleep, 0.3) for _ in range(2)]
    pids = ex._worker_pids()
    assert len(pids) == 2
    assert ex.submit(_pid).result(timeout=30) in pids
    assert all(f.result(timeout=30) is None for f in busy)
    ex.shutdown(wait=True)
    assert _wait_gone(pids)


def test_terminate_workers_fails_running_tasks():
    ex = gofutures.ProcessPoolExecutor(1)
    fut = ex.submit(time.sleep, 30)
    # Running, i.e. sent to its worker: a call still queued would be
    # cancelled instead (a fixed sleep here was too short on a busy machine).
    deadline = time.monotonic() + 30
    while not fut.running():
        assert time.monotonic() < deadline
        time.sleep(0.01)
    ex.terminate_workers()
    with pytest.raises(BrokenProcessPool):
        fut.result(timeout=10)
