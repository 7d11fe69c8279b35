"""gofutures.ThreadPoolExecutor: submit, map, shutdown and the pool's options."""

import itertools
import logging
import operator
import re
import sys
import threading
import time

import pytest

import gofutures
import gofutures.thread
from gofutures.thread import BrokenThreadPool

TIMEOUT = 10


def _call_with_timeout(fn, timeout=TIMEOUT):
    """Run fn() in a helper thread; fail (instead of hanging) if it does not
    return within timeout. Returns fn's result."""
    box = {}

    def run():
        try:
            box["result"] = fn()
        except BaseException as e:
            box["error"] = e

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(timeout)
    assert not t.is_alive(), "call did not return within %ss" % timeout
    if "error" in box:
        raise box["error"]
    return box.get("result")


# ------------------------------------------------------------ construction


@pytest.mark.parametrize("n", [0, -1])
def test_max_workers_must_be_positive(n):
    with pytest.raises(ValueError, match="max_workers must be greater than 0"):
        gofutures.ThreadPoolExecutor(max_workers=n)


def test_initializer_must_be_callable():
    with pytest.raises(TypeError, match="initializer must be a callable"):
        gofutures.ThreadPoolExecutor(max_workers=1, initializer=42)


def test_default_max_workers():
    with gofutures.ThreadPoolExecutor() as ex:
        assert ex.submit(pow, 2, 8).result(timeout=TIMEOUT) == 256


def test_context_manager_returns_executor_and_waits():
    results = []
    with gofutures.ThreadPoolExecutor(max_workers=3) as ex:
        assert isinstance(ex, gofutures.ThreadPoolExecutor)
        futures = [ex.submit(lambda i=i: (time.sleep(0.01), results.append(i))) for i in range(9)]
    # Leaving the block waited for every task.
    assert all(f.done() for f in futures)
    assert sorted(results) == list(range(9))


# ------------------------------------------------------------ submit


def test_submit_args_and_kwargs():
    def f(a, b=0, *, c=1):
        return (a, b, c)

    with gofutures.ThreadPoolExecutor(max_workers=2) as ex:
        assert ex.submit(f, 1).result(timeout=TIMEOUT) == (1, 0, 1)
        assert ex.submit(f, 1, 2, c=3).result(timeout=TIMEOUT) == (1, 2, 3)
        assert ex.submit(f, a=4, b=5).result(timeout=TIMEOUT) == (4, 5, 1)


def test_submit_kwargs_named_fn_and_self():
    # submit(fn, /, *args, **kwargs): 'fn' and 'self' pass through as kwargs.
    with gofutures.ThreadPoolExecutor(max_workers=1) as ex:
        assert ex.submit(dict, fn=1, self=2).result(timeout=TIMEOUT) == {"fn": 1, "self": 2}


def test_submit_returns_exception_on_future():
    with gofutures.ThreadPoolExecutor(max_workers=1) as ex:
        f = ex.submit(operator.truediv, 1, 0)
        assert isinstance(f.exception(timeout=TIMEOUT), ZeroDivisionError)
        with pytest.raises(ZeroDivisionError):
            f.result()


class CustomBaseError(BaseException):
    pass


def _raise_base():
    raise CustomBaseError("not an Exception")


def test_base_exception_subclass_is_set_on_future():
    with gofutures.ThreadPoolExecutor(max_workers=1) as ex:
        f = ex.submit(_raise_base)
        exc = f.exception(timeout=TIMEOUT)
        assert isinstance(exc, CustomBaseError)
        with pytest.raises(CustomBaseError):
            f.result()
        # The worker survived; the pool keeps running tasks.
        assert ex.submit(abs, -5).result(timeout=TIMEOUT) == 5


def test_many_trivial_tasks():
    n = 20000
    with gofutures.ThreadPoolExecutor(max_workers=8) as ex:
        futures = [ex.submit(operator.mul, i, 3) for i in range(n)]
        _, not_done = gofutures.wait(futures, timeout=120)
        assert not not_done
    assert [f.result() for f in futures] == [i * 3 for i in range(n)]


def test_tasks_submitting_tasks():
    with gofutures.ThreadPoolExecutor(max_workers=4) as ex:

        def inner(i):
            return i * 10

        def outer(i):
            return ex.submit(inner, i).result(timeout=TIMEOUT) + 1

        futures = [ex.submit(outer, i) for i in range(3)]
        assert [f.result(timeout=TIMEOUT) for f in futures] == [1, 11, 21]


@pytest.mark.parametrize("task", ["python", "builtin"])
def test_other_threads_run_while_a_worker_queue_stays_full(task):
    # A task that submits the next one keeps the worker's queue non-empty
    # forever. The GIL must still reach other threads every switch interval,
    # as with the stdlib (a regression: the worker starved them for seconds).
    stop = threading.Event()
    ex = gofutures.ThreadPoolExecutor(max_workers=1)

    def chain():
        if not stop.is_set():
            ex.submit(chain)
            if task == "builtin":
                for _ in range(50):
                    ex.submit(abs, -1)

    ex.submit(chain)
    try:
        time.sleep(0.1)
        start = time.monotonic()
        for _ in range(20):
            time.sleep(0.001)  # each sleep gives the GIL away and needs it back
        elapsed = time.monotonic() - start
    finally:
        stop.set()
        ex.shutdown(wait=True)
    # The stdlib needs about 20 switch intervals (0.1 s); the starved hand-overs
    # took seconds each.
    assert elapsed < 5, "20 GIL hand-overs took %.1f s" % elapsed


def test_max_workers_bounds_concurrency():
    lock = threading.Lock()
    active = [0]
    peak = [0]
    names = set()

    def task():
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
            names.add(threading.current_thread().name)
        time.sleep(0.02)
        with lock:
            active[0] -= 1

    with gofutures.ThreadPoolExecutor(max_workers=2) as ex:
        futures = [ex.submit(task) for _ in range(12)]
    for f in futures:
        f.result(timeout=0)
    assert 1 <= peak[0] <= 2
    assert 1 <= len(names) <= 2


# ------------------------------------------------------------ thread names


def _thread_name():
    return threading.current_thread().name


def test_thread_name_prefix():
    with gofutures.ThreadPoolExecutor(max_workers=2, thread_name_prefix="fetcher") as ex:
        names = {f.result(timeout=TIMEOUT) for f in [ex.submit(_thread_name) for _ in range(6)]}
    assert names
    for name in names:
        assert re.fullmatch(r"fetcher_\d+", name), name


def test_default_thread_names():
    with gofutures.ThreadPoolExecutor(max_workers=2) as ex:
        names = {f.result(timeout=TIMEOUT) for f in [ex.submit(_thread_name) for _ in range(6)]}
    assert names
    for name in names:
        assert re.fullmatch(r"ThreadPoolExecutor-\d+_\d+", name), name
    assert len({n.rsplit("_", 1)[0] for n in names}) == 1


def test_tasks_run_outside_the_caller_thread():
    with gofutures.ThreadPoolExecutor(max_workers=1) as ex:
        ident = ex.submit(threading.get_ident).result(timeout=TIMEOUT)
    assert ident != threading.get_ident()


# ------------------------------------------------------------ initializer


def test_initializer_runs_once_per_worker_with_initargs():
    lock = threading.Lock()
    calls = []
    local = threading.local()

    def init(tag, n):
        with lock:
            calls.append((threading.get_ident(), tag, n))
        local.conn = (tag, threading.get_ident())

    barrier = threading.Barrier(3, timeout=TIMEOUT)

    def task():
        barrier.wait()  # forces three workers to exist at once
        return threading.get_ident(), getattr(local, "conn", None)

    with gofutures.ThreadPoolExecutor(max_workers=3, initializer=init, initargs=("db", 7)) as ex:
        results = [f.result(timeout=TIMEOUT) for f in [ex.submit(task) for _ in range(3)]]
        # More tasks reuse the same workers; no new initializer calls.
        more = [f.result(timeout=TIMEOUT) for f in [ex.submit(lambda: getattr(local, "conn", None)) for _ in range(6)]]

    assert len(calls) == 3
    assert all(tag == "db" and n == 7 for _, tag, n in calls)
    init_threads = {ident for ident, _, _ in calls}
    assert len(init_threads) == 3
    # Each task ran in a worker whose initializer had already run there
    # (thread-local state set by the initializer is visible to the task).
    assert {ident for ident, _ in results} == init_threads
    for ident, conn in results:
        assert conn == ("db", ident)
    assert all(conn is not None and conn[0] == "db" for conn in more)


class InitError(Exception):
    pass


def test_failing_initializer_breaks_pool(caplog):
    caplog.set_level(logging.DEBUG, logger="concurrent.futures")
    release = threading.Event()

    def init():
        release.wait(TIMEOUT)  # let all submits below happen first
        raise InitError("init failed")

    ex = gofutures.ThreadPoolExecutor(max_workers=2, initializer=init)
    try:
        futures = [ex.submit(abs, -i) for i in range(4)]
        release.set()
        for f in futures:
            with pytest.raises(BrokenThreadPool):
                f.result(timeout=TIMEOUT)
        assert isinstance(futures[0].exception(), gofutures.BrokenExecutor)
        # From now on the pool refuses work.
        with pytest.raises(BrokenThreadPool):
            ex.submit(abs, 1)
    finally:
        release.set()
        _call_with_timeout(lambda: ex.shutdown(wait=True))


def test_failing_initializer_is_logged(caplog):
    caplog.set_level(logging.DEBUG, logger="concurrent.futures")

    def init():
        raise InitError("init failed, logged")

    ex = gofutures.ThreadPoolExecutor(max_workers=1, initializer=init)
    try:
        f = ex.submit(abs, -1)
        with pytest.raises(BrokenThreadPool):
            f.result(timeout=TIMEOUT)
        # The initializer's exception is reported through the
        # 'concurrent.futures' logger, with its traceback.
        deadline = time.monotonic() + TIMEOUT
        while True:
            logged = [
                r
                for r in caplog.records
                if r.name == "concurrent.futures" and r.exc_info and isinstance(r.exc_info[1], InitError)
            ]
            if logged or time.monotonic() > deadline:
                break
            time.sleep(0.01)
        assert logged
        assert logged[0].levelno >= logging.ERROR
    finally:
        _call_with_timeout(lambda: ex.shutdown(wait=True))


# ------------------------------------------------------------ shutdown


def test_submit_after_shutdown_raises():
    ex = gofutures.ThreadPoolExecutor(max_workers=1)
    ex.shutdown()
    with pytest.raises(RuntimeError, match="cannot schedule new futures after shutdown"):
        ex.submit(abs, 1)
    with pytest.raises(RuntimeError, match="cannot schedule new futures after shutdown"):
        ex.map(abs, [1])


def test_shutdown_twice_is_harmless():
    ex = gofutures.ThreadPoolExecutor(max_workers=1)
    f = ex.submit(abs, -2)
    ex.shutdown()
    ex.shutdown()
    ex.shutdown(wait=False)
    assert f.result(timeout=0) == 2


def test_shutdown_before_any_task():
    ex = gofutures.ThreadPoolExecutor(max_workers=4)
    _call_with_timeout(ex.shutdown)


def test_shutdown_wait_true_waits_for_all_tasks():
    ex = gofutures.ThreadPoolExecutor(max_workers=2)
    done = []
    futures = [ex.submit(lambda i=i: (time.sleep(0.02), done.append(i))) for i in range(8)]
    _call_with_timeout(lambda: ex.shutdown(wait=True))
    assert all(f.done() and not f.cancelled() for f in futures)
    assert sorted(done) == list(range(8))


def test_shutdown_cancel_futures(gate):
    ex = gofutures.ThreadPoolExecutor(max_workers=1)
    started = threading.Event()

    def blocker():
        started.set()
        gate.wait(TIMEOUT)
        return "first"

    first = ex.submit(blocker)
    assert started.wait(TIMEOUT)
    ran = []
    queued = [ex.submit(ran.append, i) for i in range(5)]
    _call_with_timeout(lambda: ex.shutdown(wait=False, cancel_futures=True))
    # Queued futures are cancelled by the time shutdown returns; the running
    # one is not.
    assert all(f.cancelled() for f in queued)
    assert not first.cancelled()
    gate.set()
    assert first.result(timeout=TIMEOUT) == "first"
    for f in queued:
        with pytest.raises(gofutures.CancelledError):
            f.result(timeout=0)
    assert ran == []


def test_shutdown_wait_cancel_futures(gate):
    ex = gofutures.ThreadPoolExecutor(max_workers=1)
    started = threading.Event()

    def blocker():
        started.set()
        gate.wait(TIMEOUT)
        return "first"

    first = ex.submit(blocker)
    assert started.wait(TIMEOUT)
    queued = [ex.submit(abs, -i) for i in range(5)]
    timer = threading.Timer(0.2, gate.set)
    timer.start()
    try:
        _call_with_timeout(lambda: ex.shutdown(wait=True, cancel_futures=True))
    finally:
        timer.join()
    assert first.done() and first.result() == "first"
    assert all(f.cancelled() for f in queued)


def test_shutdown_no_wait_returns_while_tasks_run_and_they_finish(gate):
    ex = gofutures.ThreadPoolExecutor(max_workers=1)
    started = threading.Event()

    def blocker():
        started.set()
        gate.wait(TIMEOUT)
        return "first"

    first = ex.submit(blocker)
    queued = [ex.submit(pow, 2, i) for i in range(4)]
    assert started.wait(TIMEOUT)
    # Returns although the running task cannot finish until the gate opens.
    _call_with_timeout(lambda: ex.shutdown(wait=False))
    assert not first.done()
    gate.set()
    # Already-submitted tasks still run to completion.
    assert first.result(timeout=TIMEOUT) == "first"
    assert [f.result(timeout=TIMEOUT) for f in queued] == [1, 2, 4, 8]


def test_interpreter_exit_waits_for_pending_tasks(run_script):
    # The tasks write only once the main script is done (a fixed sleep in
    # them raced the main thread on a busy machine); they are still pending
    # when the interpreter starts to exit.
    proc = run_script(r"""
        import os, threading, time, gofutures

        main_done = threading.Event()

        def task(i):
            main_done.wait()
            time.sleep(0.1)
            os.write(1, b"task %d done\n" % i)  # one write: lines cannot interleave

        ex = gofutures.ThreadPoolExecutor(max_workers=2)
        for i in range(3):
            ex.submit(task, i)
        ex.shutdown(wait=False)
        os.write(1, b"main done\n")
        main_done.set()
    """)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "main done"
    assert sorted(lines[1:]) == ["task 0 done", "task 1 done", "task 2 done"]


def test_interpreter_exit_without_shutdown(run_script):
    proc = run_script(r"""
        import time, gofutures

        def task():
            time.sleep(0.2)
            print("task done", flush=True)

        ex = gofutures.ThreadPoolExecutor(max_workers=1)
        ex.submit(task)
    """)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "task done\n"


# ------------------------------------------------------------ map


def test_map_results_in_order():
    def slow_square(x):
        time.sleep(0.01 * (5 - x))
        return x * x

    with gofutures.ThreadPoolExecutor(max_workers=5) as ex:
        assert list(ex.map(slow_square, range(5))) == [0, 1, 4, 9, 16]


def test_map_several_iterables_stops_at_shortest():
    with gofutures.ThreadPoolExecutor(max_workers=2) as ex:
        assert list(ex.map(pow, [2, 3, 4], [5, 6])) == [32, 729]
        assert list(ex.map(operator.add, [1, 2, 3], itertools.count(10))) == [11, 13, 15]
        assert list(ex.map(pow, [], [1, 2])) == []


def test_map_consumes_input_eagerly_without_buffersize():
    consumed = []

    def gen():
        for i in range(6):
            consumed.append(i)
            yield i

    with gofutures.ThreadPoolExecutor(max_workers=2) as ex:
        it = ex.map(abs, gen())
        # Without buffersize the whole input is taken when map() is called.
        assert consumed == list(range(6))
        assert list(it) == list(range(6))


def test_map_exception_surfaces_at_iteration():
    def inv(x):
        return 1 / x

    with gofutures.ThreadPoolExecutor(max_workers=2) as ex:
        it = ex.map(inv, [1, 2, 0, 4])  # does not raise here
        assert next(it) == 1.0
        assert next(it) == 0.5
        with pytest.raises(ZeroDivisionError):
            next(it)


def test_map_timeout(gate):
    ex = gofutures.ThreadPoolExecutor(max_workers=2)
    try:
        it = ex.map(lambda x: gate.wait(TIMEOUT) and x, [1, 2], timeout=0.2)
        with pytest.raises(gofutures.TimeoutError):
            next(it)
    finally:
        gate.set()
        _call_with_timeout(lambda: ex.shutdown(wait=True))


def test_map_timeout_not_hit():
    with gofutures.ThreadPoolExecutor(max_workers=2) as ex:
        assert list(ex.map(abs, [-1, -2, -3], timeout=TIMEOUT)) == [1, 2, 3]


def test_map_chunksize_is_ignored():
    seen = []

    def f(x):
        seen.append(x)
        return x + 1

    with gofutures.ThreadPoolExecutor(max_workers=3) as ex:
        assert list(ex.map(f, range(10), chunksize=4)) == list(range(1, 11))
    # fn got single items, not chunks.
    assert sorted(seen) == list(range(10))


def test_map_iterate_after_shutdown():
    with gofutures.ThreadPoolExecutor(max_workers=2) as ex:
        it = ex.map(str, range(4))
    assert list(it) == ["0", "1", "2", "3"]


# ------------------------------------------------------------ map(buffersize=)
# Python 3.14 semantics, on every Python version gofutures supports.


@pytest.mark.parametrize("bad", [0, -1])
def test_map_buffersize_must_be_positive(bad):
    with gofutures.ThreadPoolExecutor(max_workers=1) as ex:
        with pytest.raises(ValueError, match=r"buffersize must be None or > 0"):
            ex.map(abs, [1], buffersize=bad)


@pytest.mark.parametrize("bad", [1.5, "2"])
def test_map_buffersize_must_be_int(bad):
    with gofutures.ThreadPoolExecutor(max_workers=1) as ex:
        assert list(ex.map(abs, [-1], buffersize=1)) == [1]  # the keyword exists
        with pytest.raises(TypeError):
            ex.map(abs, [1], buffersize=bad)


class _CountingInput:
    """An endless input that records how much was taken from it and refuses
    to be drained (so an eager map fails instead of hanging)."""

    def __init__(self, limit=1000):
        self.taken = 0
        self.limit = limit
        self._it = itertools.count()

    def __iter__(self):
        return self

    def __next__(self):
        if self.taken >= self.limit:
            raise AssertionError("input consumed eagerly despite buffersize")
        self.taken += 1
        return next(self._it)


@pytest.mark.parametrize("buffersize", [1, 3])
def test_map_buffersize_lazy_on_infinite_input(buffersize):
    src = _CountingInput()
    with gofutures.ThreadPoolExecutor(max_workers=2) as ex:
        it = ex.map(lambda x: x * 2, src, buffersize=buffersize)
        time.sleep(0.05)  # room for a wrong implementation to read ahead
        assert src.taken <= buffersize
        got = []
        for k in range(1, 8):
            got.append(next(it))
            time.sleep(0.01)
            # At most `buffersize` tasks are submitted ahead of the consumer.
            assert k <= src.taken <= k + buffersize
        assert got == [0, 2, 4, 6, 8, 10, 12]
        del it


def test_map_buffersize_finite_input_in_order():
    with gofutures.ThreadPoolExecutor(max_workers=4) as ex:
        assert list(ex.map(operator.neg, range(50), buffersize=4)) == [-i for i in range(50)]
        assert list(ex.map(operator.neg, range(3), buffersize=10)) == [0, -1, -2]
        assert list(ex.map(operator.neg, [], buffersize=2)) == []


def test_map_buffersize_several_iterables():
    with gofutures.ThreadPoolExecutor(max_workers=2) as ex:
        assert list(ex.map(pow, itertools.count(), [1, 2, 3], buffersize=2)) == [0, 1, 8]


def test_map_buffersize_bounds_tasks_in_flight():
    lock = threading.Lock()
    started = []

    def f(x):
        with lock:
            started.append(x)
        return x

    with gofutures.ThreadPoolExecutor(max_workers=4) as ex:
        it = ex.map(f, range(100), buffersize=2)
        for k in range(1, 21):
            assert next(it) == k - 1
            time.sleep(0.005)
            with lock:
                assert len(started) <= k + 2
        rest = list(it)
    assert rest == list(range(20, 100))
    assert sorted(started) == list(range(100))


def test_map_buffersize_exception_surfaces_at_iteration():
    def inv(x):
        return 1 / x

    with gofutures.ThreadPoolExecutor(max_workers=2) as ex:
        it = ex.map(inv, [1, 2, 0, 4], buffersize=2)
        assert next(it) == 1.0
        assert next(it) == 0.5
        with pytest.raises(ZeroDivisionError):
            next(it)


def test_map_buffersize_none_is_eager():
    consumed = []

    def gen():
        for i in range(5):
            consumed.append(i)
            yield i

    with gofutures.ThreadPoolExecutor(max_workers=2) as ex:
        it = ex.map(abs, gen(), buffersize=None)
        assert consumed == list(range(5))
        assert list(it) == list(range(5))


def test_unknown_keyword_arguments_are_refused_as_by_the_stdlib():
    # 3.14 passes extra keyword arguments to prepare_context(), whose own takes none.
    with pytest.raises(TypeError, match="bogus"):
        gofutures.ThreadPoolExecutor(1, bogus=True)


@pytest.mark.skipif(sys.version_info < (3, 14), reason="prepare_context() is 3.14's")
def test_a_subclass_with_its_own_worker_context_is_refused():
    class Custom(gofutures.ThreadPoolExecutor):
        @classmethod
        def prepare_context(cls, initializer, initargs, **ctxkwargs):
            return super().prepare_context(initializer, initargs)

    # Its context would never run the calls: refused, not silently ignored.
    with pytest.raises(TypeError, match="prepare_context"):
        Custom(1, shared=True)


def test_a_call_can_be_cancelled_until_its_worker_takes_the_gil():
    # The stdlib's worker marks a call running only once it holds the GIL
    # and is about to run it: cancel() right after submit() on an idle pool
    # wins (the submitting thread still holds the GIL). A worker that marked
    # it running as soon as it took it off the queue won that race instead.
    with gofutures.ThreadPoolExecutor(1) as ex:
        ex.submit(int).result()  # the worker is up and idle
        cancelled = 0
        for _ in range(100):
            f = ex.submit(time.sleep, 0)
            end = time.perf_counter() + 0.0005
            while time.perf_counter() < end:  # holding the GIL: the worker wakes meanwhile
                pass
            cancelled += f.cancel()
            gofutures.wait([f])
        assert cancelled >= 90, "%d of 100 cancelled" % cancelled
