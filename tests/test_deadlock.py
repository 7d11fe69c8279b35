"""Deadlock detection and grow_on_block: a wait on a pool worker that could
never end raises gofutures.DeadlockError at once instead of hanging, and
nothing that can end is ever reported (the stdlib would hang in the first
group of tests and behaves as here in the second)."""

import threading
import time

import pytest

import gofutures
from gofutures import DeadlockError, ThreadPoolExecutor

pytestmark = pytest.mark.timeout(60)


def test_deadlock_error_is_a_runtime_error_exported_without_the_native_library():
    assert issubclass(DeadlockError, RuntimeError)
    assert gofutures.DeadlockError is DeadlockError
    assert "DeadlockError" in gofutures.__all__


def submit_cycle(ex):
    """Two tasks that wait for each other's futures (seed 000's example)."""
    bound = threading.Event()
    fs = {}

    def wait_for(other):
        bound.wait()
        return fs[other].result()

    fs["a"] = ex.submit(wait_for, "b")
    fs["b"] = ex.submit(wait_for, "a")
    bound.set()
    return fs


def test_cycle_of_two_waits_names_both_futures():
    with ThreadPoolExecutor(2) as ex:
        fs = submit_cycle(ex)
        start = time.monotonic()
        errors = [f.exception(timeout=10) for f in fs.values()]
    assert time.monotonic() - start < 2
    assert all(isinstance(e, DeadlockError) for e in errors), errors
    e = errors[0]
    assert set(e.futures) == set(fs.values())
    assert "cycle" in str(e)
    for f in fs.values():
        assert ("Future at 0x%x" % id(f)) in str(e)


def test_submit_to_own_full_pool_and_wait_raises_and_the_pool_goes_on():
    with ThreadPoolExecutor(1, thread_name_prefix="solo") as ex:
        inner = []

        def nested():
            inner.append(ex.submit(pow, 5, 2))
            return inner[0].result()

        outer = ex.submit(nested)
        with pytest.raises(DeadlockError, match=r"queued in solo, .*solo_0") as caught:
            outer.result(timeout=10)
        assert caught.value.futures == (inner[0],)
        assert inner[0].result(timeout=10) == 25  # it ran once the wait gave up
        assert ex.submit(pow, 2, 3).result(timeout=10) == 8


@pytest.mark.parametrize("how", ["wait", "as_completed", "exception"])
def test_every_blocking_wait_is_checked(how):
    with ThreadPoolExecutor(1) as ex:

        def nested():
            fs = [ex.submit(pow, 2, i) for i in range(3)]
            if how == "wait":
                gofutures.wait(fs)
            elif how == "as_completed":
                list(gofutures.as_completed(fs))
            else:
                fs[0].exception()

        with pytest.raises(DeadlockError):
            ex.submit(nested).result(timeout=10)


def test_deadlock_across_two_executors():
    with ThreadPoolExecutor(1) as a, ThreadPoolExecutor(1) as b:
        queued_in_a = []
        ready = threading.Event()

        def in_b():
            ready.wait()
            return queued_in_a[0].result()

        fb = b.submit(in_b)

        def in_a():
            queued_in_a.append(a.submit(pow, 3, 2))
            ready.set()
            return fb.result()

        fa = a.submit(in_a)
        outcomes = [type(f.exception(timeout=10)) for f in (fa, fb)]
        assert DeadlockError in outcomes, outcomes
        assert queued_in_a[0].result(timeout=10) == 9


# ---------------------------------------------------------------- no false positives


def test_wait_with_timeout_times_out_instead():
    with ThreadPoolExecutor(1) as ex:

        def nested():
            with pytest.raises(gofutures.TimeoutError):
                ex.submit(pow, 5, 2).result(timeout=0.05)
            return "timed out"

        assert ex.submit(nested).result(timeout=10) == "timed out"


def test_wait_on_a_plain_future_set_by_another_thread():
    plain = gofutures.Future()
    with ThreadPoolExecutor(1) as ex:
        f = ex.submit(plain.result)
        time.sleep(0.05)
        threading.Thread(target=plain.set_result, args=("set",)).start()
        assert f.result(timeout=10) == "set"


def test_wait_on_a_future_of_another_executor():
    with ThreadPoolExecutor(1) as a, ThreadPoolExecutor(1) as b:
        slow = b.submit(time.sleep, 0.05)
        queued = b.submit(pow, 2, 10)
        assert a.submit(queued.result).result(timeout=10) == 1024
        assert slow.done()


def test_wait_on_a_stdlib_future():
    import concurrent.futures as cf

    with cf.ThreadPoolExecutor(1) as std, ThreadPoolExecutor(1) as ex:
        g = std.submit(time.sleep, 0.05)
        assert ex.submit(g.result).result(timeout=10) is None
        futures = [std.submit(pow, 2, i) for i in range(3)]
        in_worker = ex.submit(lambda: sorted(f.result() for f in gofutures.as_completed(futures)))
        assert in_worker.result(timeout=10) == [1, 2, 4]


def test_long_chain_that_fits_the_pool_finishes():
    n = 24
    with ThreadPoolExecutor(n) as ex:
        fs = [None] * n
        fs[n - 1] = ex.submit(lambda: (time.sleep(0.05), n - 1)[1])
        for i in range(n - 2, -1, -1):
            fs[i] = ex.submit(lambda nxt=fs[i + 1]: nxt.result() - 1)
        assert fs[0].result(timeout=10) == 0


def test_nested_submit_while_a_worker_is_free():
    with ThreadPoolExecutor(2) as ex:
        assert ex.submit(lambda: ex.submit(pow, 2, 5).result()).result(timeout=10) == 32


def test_as_completed_in_a_worker_over_running_tasks():
    with ThreadPoolExecutor(4) as ex:

        def gather():
            fs = [ex.submit(time.sleep, 0.01) for _ in range(8)]
            return sum(1 for _ in gofutures.as_completed(fs))

        assert ex.submit(gather).result(timeout=10) == 8


# ---------------------------------------------------------------- grow_on_block


def fib(ex, n):
    if n < 2:
        return n
    a = ex.submit(fib, ex, n - 1)
    b = ex.submit(fib, ex, n - 2)
    return a.result() + b.result()


def test_grow_on_block_runs_the_nested_submit_example():
    ex = ThreadPoolExecutor(max_workers=1, grow_on_block=True)

    def wait_on_future():
        f = ex.submit(pow, 5, 2)
        return f.result()

    assert ex.submit(wait_on_future).result(timeout=10) == 25
    ex.shutdown()


def test_grow_on_block_fork_join_recursion_then_shrinks_back():
    with ThreadPoolExecutor(max_workers=2, grow_on_block=True) as ex:
        assert ex.submit(fib, ex, 10).result(timeout=30) == 55
        # _threads lists the pool's workers, not the extra ones that retired
        # (a retiring worker leaves it on its way out, just after the core
        # stopped counting it).
        deadline = time.monotonic() + 10
        while (ex.stats()["workers"] > 2 or len(ex._threads) > 2) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert ex.stats()["workers"] <= 2
        assert len(ex._threads) <= 2


def test_grow_on_block_after_shutdown_still_runs_the_nested_task():
    # The pool is shut down while its only worker is about to wait for a task
    # it queued: no submit can start a worker any more, the growth must.
    ex = ThreadPoolExecutor(max_workers=1, grow_on_block=True)
    queued = threading.Event()
    go_on = threading.Event()

    def outer():
        inner = ex.submit(pow, 3, 3)
        queued.set()
        go_on.wait(10)
        return inner.result(timeout=10)

    f = ex.submit(outer)
    assert queued.wait(10)
    ex.shutdown(wait=False)
    go_on.set()
    assert f.result(timeout=10) == 27
    ex.shutdown(wait=True)


def test_without_grow_on_block_fork_join_recursion_deadlocks():
    with ThreadPoolExecutor(max_workers=2) as ex:
        with pytest.raises(DeadlockError):
            ex.submit(fib, ex, 10).result(timeout=30)


def test_grow_on_block_still_raises_on_a_cycle():
    with ThreadPoolExecutor(2, grow_on_block=True) as ex:
        fs = submit_cycle(ex)
        assert all(isinstance(f.exception(timeout=10), DeadlockError) for f in fs.values())


def test_grow_on_block_must_be_a_bool():
    with pytest.raises(TypeError, match="grow_on_block"):
        ThreadPoolExecutor(1, grow_on_block="yes")


# ---------------------------------------------------------------- stats


def test_stats_count_what_the_pool_did():
    with ThreadPoolExecutor(1) as ex:
        gate = threading.Event()
        first = ex.submit(gate.wait)
        bad = ex.submit(lambda: 1 / 0)
        skipped = ex.submit(pow, 1, 1)
        assert skipped.cancel()
        deadline = time.monotonic() + 10
        while ex.stats()["running"] != 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        s = ex.stats()
        assert (s["running"], s["queued"], s["workers"]) == (1, 2, 1)
        gate.set()
        first.result(timeout=10)
        bad.exception(timeout=10)
    s = ex.stats()
    assert (s["done"], s["failed"], s["cancelled"], s["running"], s["queued"]) == (2, 1, 1, 0, 0)
