"""The process pool's opt-in extras: survive=True, task_timeout=,
kill_task(), max_worker_memory=, stats(); and that without them a dead
worker still breaks the pool as the stdlib's does.

Everything the workers unpickle lives at module level here: workers import
this module by name (tests/ is on the sys.path they inherit).
"""

import multiprocessing
import os
import signal
import threading
import time
from concurrent.futures import CancelledError
from concurrent.futures.process import BrokenProcessPool

import pytest

import gofutures
from gofutures import TaskTimeoutError, WorkerDiedError

TIMEOUT = 30
_hoard = []  # what _grow keeps alive in its worker


def _square(x):
    return x * x


def _square_or_segfault(x):
    if x == 42:
        os.kill(os.getpid(), signal.SIGSEGV)
        time.sleep(10)  # the signal is on its way
    return x * x


def _exit(code):
    os._exit(code)


def _pid():
    return os.getpid()


def _sleep(seconds):
    time.sleep(seconds)
    return seconds


def _grow(megabytes):
    # Touch every page so that it counts in the resident set.
    _hoard.append(bytearray(b"x" * (megabytes << 20)))
    return os.getpid()


@pytest.fixture
def pools():
    made = []

    def make(*args, **kwargs):
        pool = gofutures.ProcessPoolExecutor(*args, **kwargs)
        made.append(pool)
        return pool

    yield make
    for pool in made:
        pool.kill_workers()
        pool.shutdown(wait=True)


def test_survive_fails_only_the_segfaulting_call(pools):
    pool = pools(4, survive=True)
    futures = [pool.submit(_square_or_segfault, i) for i in range(100)]
    for i, f in enumerate(futures):
        if i == 42:
            continue
        assert f.result(timeout=TIMEOUT) == i * i
    exc = futures[42].exception(timeout=TIMEOUT)
    assert isinstance(exc, WorkerDiedError) and isinstance(exc, BrokenProcessPool)
    assert exc.signal == signal.SIGSEGV and exc.exitcode == -signal.SIGSEGV
    assert exc.pid > 0 and exc.task_id > 0 and not exc.starting
    assert exc.task == "_square_or_segfault(42)"
    assert "worker process %d was killed by signal %d" % (exc.pid, signal.SIGSEGV) in str(exc)
    assert "_square_or_segfault(42)" in str(exc)
    # The pool goes on, with the dead worker replaced.
    assert pool.submit(_square, 7).result(timeout=TIMEOUT) == 49
    assert exc.pid not in pool._worker_pids()
    s = pool.stats()
    assert s["died"] == 1 and s["failed"] == 1 and s["done"] == 101 and not s["broken"]


def test_survive_exit_code_and_crash_loop_guard(pools):
    pool = pools(1, survive=True)
    exc = pool.submit(_exit, 7).exception(timeout=TIMEOUT)
    assert isinstance(exc, WorkerDiedError) and exc.exitcode == 7 and exc.signal is None
    assert pool.submit(_square, 3).result(timeout=TIMEOUT) == 9
    # Workers whose initializer kills them keep dying while starting: after
    # a few, the pool breaks as without survive instead of looping.
    looping = pools(1, initializer=_exit, initargs=(3,), survive=True)
    outcomes = [looping.submit(_square, i) for i in range(10)]
    errors = [f.exception(timeout=TIMEOUT) for f in outcomes]
    assert all(isinstance(e, BrokenProcessPool) for e in errors)
    assert sum(type(e) is WorkerDiedError and e.starting for e in errors) == 2
    with pytest.raises(BrokenProcessPool):
        looping.submit(_square, 1)


def test_survive_keeps_an_eager_pool_full(pools):
    # With 'fork' every worker starts at once (as the stdlib's fork pools);
    # a dead one is replaced at once too, not on demand.
    pool = pools(2, mp_context=multiprocessing.get_context("fork"), survive=True)
    assert isinstance(pool.submit(_exit, 9).exception(timeout=TIMEOUT), WorkerDiedError)
    deadline = time.monotonic() + TIMEOUT
    while len(pool._worker_pids()) != 2:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert pool.submit(_square, 6).result(timeout=TIMEOUT) == 36


def test_default_mode_still_breaks(pools):
    pool = pools(2)
    f = pool.submit(_exit, 7)
    exc = f.exception(timeout=TIMEOUT)
    assert type(exc) is BrokenProcessPool
    with pytest.raises(BrokenProcessPool):
        pool.submit(_square, 1)
    assert pool.stats()["broken"]


def test_task_timeout_kills_the_worker_and_goes_on(pools):
    # The initializer (any function of this module) makes each worker, the
    # replacement too, import this module and pytest while starting, which
    # the limit does not count; unpickling a call would, and that took more
    # than the 1 s limit under python3.14-dbg on a busy machine.
    pool = pools(1, task_timeout=1.0, initializer=_pid)
    pid = pool.submit(_pid).result(timeout=TIMEOUT)
    start = time.monotonic()
    hung = pool.submit(_sleep, 3600)
    with pytest.raises(TaskTimeoutError) as info:
        hung.result(timeout=TIMEOUT)
    assert time.monotonic() - start < 5
    exc = info.value
    assert isinstance(exc, TimeoutError)
    assert exc.pid == pid and exc.timeout == 1.0 and exc.task == "_sleep(3600)"
    assert "time limit of 1s" in str(exc) and "worker process %d was killed" % pid in str(exc)
    assert [f.result(timeout=TIMEOUT) for f in [pool.submit(_square, i) for i in range(5)]] == [0, 1, 4, 9, 16]
    assert pool.submit(_pid).result(timeout=TIMEOUT) != pid
    s = pool.stats()
    assert s["killed"] == 1 and s["failed"] == 1 and not s["broken"]


def test_task_timeout_does_not_count_the_worker_start(pools):
    # The limit is the call's: a slow initializer does not eat into it. The
    # initializer is this module's (_sleep), so that the worker imports this
    # module (and pytest, ~0.2 s, more on a loaded machine) while starting,
    # not while unpickling the call, which would count.
    pool = pools(1, initializer=_sleep, initargs=(1.0,), task_timeout=0.5)
    assert pool.submit(_square, 4).result(timeout=TIMEOUT) == 16
    assert pool.stats()["killed"] == 0


def test_submit_with_timeout(pools):
    pool = pools(1)  # no pool-wide limit: only the call that asks for one has it
    hung = pool.submit_with_timeout(0.5, _sleep, 3600)
    slow = pool.submit(_sleep, 1.0)
    with pytest.raises(TaskTimeoutError) as info:
        hung.result(timeout=TIMEOUT)
    assert info.value.timeout == 0.5
    assert slow.result(timeout=TIMEOUT) == 1.0
    with pytest.raises(ValueError, match="timeout must be a positive"):
        pool.submit_with_timeout(0, _square, 1)
    with pytest.raises(TypeError, match="timeout must be a number of seconds"):
        pool.submit_with_timeout(None, _square, 1)


def test_kill_task(pools):
    pool = pools(1)
    running = pool.submit(_sleep, 3600)
    queued = pool.submit(_square, 5)
    deadline = time.monotonic() + TIMEOUT
    while not running.running():
        assert time.monotonic() < deadline
        time.sleep(0.01)
    pid = pool._worker_pids()[0]
    waited, called = [], []
    waiter = threading.Thread(target=lambda: waited.append(gofutures.wait([running], timeout=TIMEOUT)))
    waiter.start()
    time.sleep(0.1)  # let it register as a waiter
    running.add_done_callback(called.append)
    assert pool.kill_task(running) is True
    assert running.cancelled() and called == [running]
    waiter.join(TIMEOUT)
    assert waited[0].done == {running}  # a waiting wait() hears of it
    with pytest.raises(CancelledError):
        running.result(timeout=TIMEOUT)
    assert queued.result(timeout=TIMEOUT) == 25
    assert pool.submit(_pid).result(timeout=TIMEOUT) != pid
    assert pool.kill_task(queued) is False  # already done
    later = [pool.submit(_sleep, 3600), pool.submit(_square, 2)]
    assert pool.kill_task(later[1]) is True and later[1].cancelled()  # queued: a plain cancel
    assert pool.kill_task(later[0]) is True
    s = pool.stats()
    assert s["killed"] == 2 and s["cancelled"] >= 2 and not s["broken"]
    with pytest.raises(TypeError):
        pool.kill_task("not a future")


def test_max_worker_memory_recycles_the_big_worker(pools):
    # spawn: a forked worker's resident set includes what it shares with
    # this process, whose size depends on the tests that ran before.
    pool = pools(1, mp_context=multiprocessing.get_context("spawn"), max_worker_memory=150 << 20)
    small = [pool.submit(_pid).result(timeout=TIMEOUT) for _ in range(3)]
    assert len(set(small)) == 1  # a small worker is kept
    big = pool.submit(_grow, 200).result(timeout=TIMEOUT)
    assert big == small[0]
    after = pool.submit(_pid).result(timeout=TIMEOUT)
    assert after != big
    assert pool.submit(_pid).result(timeout=TIMEOUT) == after
    assert pool.stats()["recycled"] == 1


def test_stats(pools):
    pool = pools(2)
    s = pool.stats()
    assert set(s) >= {
        "workers",
        "idle",
        "queued",
        "running",
        "done",
        "failed",
        "cancelled",
        "submitted",
        "shutdown",
        "broken",
        "replaced",
        "killed",
    }
    assert s["submitted"] == 0 and s["done"] == 0 and not s["shutdown"]
    for f in [pool.submit(_square, i) for i in range(10)] + [pool.submit(_exit_raise)]:
        f.exception(timeout=TIMEOUT)
    s = pool.stats()
    assert (s["submitted"], s["done"], s["failed"], s["running"], s["queued"]) == (11, 11, 1, 0, 0)
    assert 1 <= s["workers"] <= 2 and s["replaced"] == 0
    pool.shutdown()
    assert pool.stats()["shutdown"]


def _exit_raise():
    raise ValueError("on purpose")


@pytest.mark.parametrize(
    "kwargs, error, words",
    [
        ({"survive": "yes"}, TypeError, "survive must be True or False"),
        ({"survive": 1}, TypeError, "survive must be True or False"),
        ({"task_timeout": "1"}, TypeError, "task_timeout must be a number of seconds"),
        ({"task_timeout": True}, TypeError, "task_timeout must be a number of seconds"),
        ({"task_timeout": 0}, ValueError, "task_timeout must be a positive, finite number"),
        ({"task_timeout": -1.5}, ValueError, "task_timeout must be a positive, finite number"),
        ({"task_timeout": float("nan")}, ValueError, "task_timeout must be a positive, finite number"),
        ({"task_timeout": float("inf")}, ValueError, "task_timeout must be a positive, finite number"),
        ({"max_worker_memory": 1.5}, TypeError, "max_worker_memory must be a number of bytes"),
        ({"max_worker_memory": 0}, ValueError, "max_worker_memory must be a positive number"),
    ],
)
def test_bad_arguments_are_rejected(kwargs, error, words):
    with pytest.raises(error, match=words):
        gofutures.ProcessPoolExecutor(1, **kwargs)


def test_exceptions_import_without_the_native_library(run_script):
    done = run_script("""
        import sys, pickle, concurrent.futures.process as p
        import gofutures
        assert "gofutures._core" not in sys.modules
        e = pickle.loads(pickle.dumps(gofutures.WorkerDiedError("m", 5, None, 11, "f(1)", 3)))
        assert isinstance(e, p.BrokenProcessPool) and (e.pid, e.signal, e.task) == (5, 11, "f(1)")
        t = gofutures.TaskTimeoutError("m", 5, 1.0, "f()", 2)
        assert isinstance(t, TimeoutError) and t.timeout == 1.0
        print("ok")
    """)
    assert done.returncode == 0 and "ok" in done.stdout, done.stderr
