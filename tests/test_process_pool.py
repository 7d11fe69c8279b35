"""gofutures.ProcessPoolExecutor: when workers start, what initargs may
carry, how initializer failures and unloadable calls are reported, and the
handles in _processes."""

import logging
import logging.handlers
import multiprocessing
import os
import queue
import time
from concurrent.futures.process import BrokenProcessPool

import pytest

import gofutures

TIMEOUT = 30


def _pid(_=None):
    return os.getpid()


def _remember(q, lock):
    global _QUEUE, _LOCK
    _QUEUE, _LOCK = q, lock


def _put_twice(x):
    with _LOCK:
        _QUEUE.put(x * 2)
    return x


def _log_then_fail(q):
    logging.getLogger("concurrent.futures").addHandler(logging.handlers.QueueHandler(q))
    raise ValueError("error in initializer")


class _FailsToLoad:
    """Pickles fine; raises when unpickled (in the worker, or here when a
    worker returns it)."""

    def __reduce__(self):
        return (_refuse, ())


def _refuse():
    raise RuntimeError("refusing to be unpickled")


def _return_unloadable():
    return _FailsToLoad()


def _wait_until(cond, seconds=10):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.01)
    return cond()


SPAWN = multiprocessing.get_context("spawn")


def test_workers_start_on_demand_and_idle_ones_are_reused():
    # With spawn and forkserver (not fork, the default on Linux before 3.14)
    # the stdlib's pools start workers on demand, and so do gofutures'.
    with gofutures.ProcessPoolExecutor(4, mp_context=SPAWN) as ex:
        assert ex._processes == {}, "workers started before any task"
        pids = {ex.submit(_pid).result(timeout=TIMEOUT) for _ in range(4)}
        assert len(pids) == 1, "sequential tasks should reuse the idle worker"
        assert list(ex._processes) == list(pids)


def test_overlapping_tasks_start_workers_up_to_max_workers():
    with gofutures.ProcessPoolExecutor(2, mp_context=SPAWN) as ex:
        futures = [ex.submit(time.sleep, 0.2) for _ in range(5)]
        assert len(ex._processes) == 2
        assert [f.result(timeout=TIMEOUT) for f in futures] == [None] * 5


def test_fork_context_starts_every_worker_at_the_first_submit():
    # As the stdlib's fork pools: none before (a pool of 10**6 costs nothing
    # until used), all of them at the first task, forks of this process.
    with gofutures.ProcessPoolExecutor(3, mp_context=multiprocessing.get_context("fork")) as ex:
        assert len(ex._processes) == 0
        assert ex.submit(_pid).result(timeout=TIMEOUT) in ex._processes
        assert len(ex._processes) == 3
        assert ex.submit(os.getppid).result(timeout=TIMEOUT) == os.getpid()


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_absurd_worker_counts_are_refused_before_anything_starts(method):
    ctx = multiprocessing.get_context(method)
    with pytest.raises(ValueError, match="more worker processes than this system allows"):
        gofutures.ProcessPoolExecutor(10**9, mp_context=ctx)
    with pytest.raises(TypeError, match="max_workers must be an integer"):
        gofutures.ProcessPoolExecutor(2.5, mp_context=ctx)
    ex = gofutures.ProcessPoolExecutor(64, mp_context=ctx)
    assert ex._processes == {}  # none before the first task, as in the stdlib
    ex.shutdown()


def test_processes_handles_join_after_shutdown():
    ex = gofutures.ProcessPoolExecutor(2)
    futures = [ex.submit(time.sleep, 0.2) for _ in range(2)]
    processes = ex._processes
    assert len(processes) == 2 and all(p.is_alive() for p in processes.values())
    ex.shutdown(wait=False)
    for p in processes.values():
        p.join(timeout=TIMEOUT)
        assert not p.is_alive()
        with pytest.raises(ProcessLookupError):
            os.kill(p.pid, 0)  # exited and reaped: no zombie either
    assert all(f.done() for f in futures)


def test_spawn_context_queue_and_lock_in_initargs():
    ctx = multiprocessing.get_context("spawn")
    q, lock = ctx.Queue(), ctx.Lock()
    # max_tasks_per_child: replacement workers get the queue too.
    with gofutures.ProcessPoolExecutor(
        2, mp_context=ctx, initializer=_remember, initargs=(q, lock), max_tasks_per_child=1
    ) as ex:
        assert list(ex.map(_put_twice, range(5))) == list(range(5))
    assert sorted(q.get(timeout=TIMEOUT) for _ in range(5)) == [0, 2, 4, 6, 8]


def test_fork_context_queue_in_a_spawn_pools_initargs_is_refused_clearly():
    # A fork pool's workers inherit it (test_fork.py); a spawned one cannot.
    q = multiprocessing.get_context("fork").Queue()
    with pytest.raises(RuntimeError, match="fork context"):
        gofutures.ProcessPoolExecutor(
            1, mp_context=multiprocessing.get_context("spawn"), initializer=_remember, initargs=(q, None)
        )


def test_failing_initializer_is_logged_in_the_worker_and_breaks_the_pool():
    q = multiprocessing.get_context("spawn").Queue()
    ex = gofutures.ProcessPoolExecutor(1, initializer=_log_then_fail, initargs=(q,))
    try:
        future = ex.submit(_pid)
        with pytest.raises(BrokenProcessPool, match="initializer failed"):
            future.result(timeout=TIMEOUT)
        assert _wait_until(lambda: ex._broken)
        with pytest.raises(BrokenProcessPool):
            ex.submit(_pid)
    finally:
        ex.shutdown()
    record = q.get(timeout=TIMEOUT)
    assert "Exception in initializer:" in record.getMessage()
    assert "ValueError: error in initializer" in record.getMessage()
    with pytest.raises(queue.Empty):
        q.get(timeout=0.1)  # logged once per worker that started: one


def test_call_that_cannot_be_unpickled_in_the_worker_fails_only_itself():
    with gofutures.ProcessPoolExecutor(1) as ex:
        bad = ex.submit(id, _FailsToLoad())
        with pytest.raises(BrokenProcessPool, match="could not unpickle this call") as info:
            bad.result(timeout=TIMEOUT)
        assert "refusing to be unpickled" in str(info.value.__cause__)
        assert not ex._broken
        assert ex.submit(pow, 2, 5).result(timeout=TIMEOUT) == 32


def test_result_that_cannot_be_unpickled_here_fails_only_itself():
    with gofutures.ProcessPoolExecutor(1) as ex:
        bad = ex.submit(_return_unloadable)
        with pytest.raises(BrokenProcessPool, match="could not be unpickled here") as info:
            bad.result(timeout=TIMEOUT)
        assert isinstance(info.value.__cause__, RuntimeError)
        assert ex.submit(pow, 3, 3).result(timeout=TIMEOUT) == 27


_LOADS_HERE = []


def _count_then_refuse():
    _LOADS_HERE.append(1)
    raise RuntimeError("refusing to be unpickled")


class _CountsLoads:
    def __reduce__(self):
        return (_count_then_refuse, ())


def _return_counted():
    return _CountsLoads()


def test_result_that_cannot_be_unpickled_here_is_unpickled_once():
    # Unpickling may have side effects: a failure is reported, not retried.
    _LOADS_HERE.clear()
    with gofutures.ProcessPoolExecutor(1) as ex:
        bad = ex.submit(_return_counted)
        with pytest.raises(BrokenProcessPool, match="could not be unpickled here"):
            bad.result(timeout=TIMEOUT)
    assert _LOADS_HERE == [1]


@pytest.mark.parametrize("max_workers", [0, -1])
def test_max_workers_must_be_positive(max_workers):
    with pytest.raises(ValueError, match="max_workers must be greater than 0"):
        gofutures.ProcessPoolExecutor(max_workers)


def test_max_tasks_per_child_with_fork_context_is_refused():
    with pytest.raises(ValueError, match="incompatible with the 'fork'"):
        gofutures.ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("fork"), max_tasks_per_child=2)


def test_import_alone_does_not_load_the_go_runtime():
    # Workers re-import the main script; a script's bare `import gofutures`
    # must not cost each of them a Go runtime. Names still resolve on use.
    import subprocess
    import sys

    code = (
        "import sys, gofutures\n"
        "print('gofutures._core' in sys.modules)\n"
        "print(gofutures.thread.BrokenThreadPool.__name__, gofutures.ProcessPoolExecutor.__name__)\n"
        "print('gofutures._core' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=TIMEOUT, check=True
    ).stdout
    assert out.split("\n") == ["False", "BrokenThreadPool ProcessPoolExecutor", "True", ""]


def _environ(name):
    return os.environ.get(name)


@pytest.mark.parametrize("zygote", ["1", "0"])
def test_workers_see_os_environ_as_it_is_when_the_pool_starts(monkeypatch, zygote):
    # The Go runtime is loaded by the first pool; what the program sets in
    # os.environ after that must still reach the next pool's workers, as a
    # stdlib worker sees it.
    with gofutures.ProcessPoolExecutor(1) as ex:
        ex.submit(_pid).result(timeout=TIMEOUT)
    monkeypatch.setenv("GOFUTURES_ZYGOTE", zygote)
    monkeypatch.setenv("GOFUTURES_TEST_SET_LATER", "set later")
    monkeypatch.delenv("GOFUTURES_TEST_REMOVED", raising=False)
    os.environ["GOFUTURES_TEST_REMOVED"] = "present"
    with gofutures.ProcessPoolExecutor(1) as ex:
        assert ex.submit(_environ, "GOFUTURES_TEST_REMOVED").result(timeout=TIMEOUT) == "present"
    del os.environ["GOFUTURES_TEST_REMOVED"]
    with gofutures.ProcessPoolExecutor(1) as ex:
        assert ex.submit(_environ, "GOFUTURES_TEST_SET_LATER").result(timeout=TIMEOUT) == "set later"
        assert ex.submit(_environ, "GOFUTURES_TEST_REMOVED").result(timeout=TIMEOUT) is None


def _live_hooks():
    import gc

    from gofutures.process import _Hooks

    gc.collect()
    return sum(1 for o in gc.get_objects() if type(o) is _Hooks)


@pytest.mark.parametrize("work", ["none", "parked"])
def test_dropped_pools_release_their_hooks(work):
    # Every pool's results worker holds a hooks object; a pool whose worker
    # never started (no task, or only futures nobody observed) must free it
    # too once the pool is gone.
    spawn = multiprocessing.get_context("spawn")
    before = _live_hooks()
    for _ in range(10):
        ex = gofutures.ProcessPoolExecutor(1, mp_context=spawn)
        if work == "parked":
            assert ex.submit(pow, 2, 5).result(timeout=30) == 32
        ex.shutdown(wait=True)
        del ex
    deadline = time.monotonic() + 30
    while _live_hooks() > before and time.monotonic() < deadline:
        gofutures.ThreadPoolExecutor(1).submit(int).result()  # any result read drains
        time.sleep(0.05)
    assert _live_hooks() <= before
