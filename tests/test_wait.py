"""gofutures.wait and gofutures.as_completed, and their interplay with plain
concurrent.futures futures and with the stdlib's own wait/as_completed."""

import concurrent.futures
import multiprocessing
import re
import threading
import time

import pytest

import gofutures

TIMEOUT = 10


@pytest.fixture
def pool(make_pool):
    return make_pool(max_workers=4)


@pytest.fixture
def timers():
    """Start threading.Timer objects that are always joined at teardown."""
    started = []

    def start(delay, fn, *args):
        t = threading.Timer(delay, fn, args)
        t.start()
        started.append(t)
        return t

    yield start
    for t in started:
        t.cancel()
        t.join(TIMEOUT)


def _done_future(value):
    f = gofutures.Future()
    f.set_result(value)
    return f


def _cancelled_future():
    # As an executor does: cancel, then notify. (The stdlib's wait and
    # as_completed count a cancelled future as finished only once notified.)
    f = gofutures.Future()
    assert f.cancel()
    assert f.set_running_or_notify_cancel() is False
    return f


def _failed_future(exc):
    f = gofutures.Future()
    f.set_exception(exc)
    return f


# ------------------------------------------------------------ wait


def test_wait_all_completed(pool):
    futures = [pool.submit(pow, 2, i) for i in range(6)]
    done, not_done = gofutures.wait(futures, timeout=TIMEOUT, return_when=gofutures.ALL_COMPLETED)
    assert done == set(futures)
    assert not_done == set()


def test_wait_default_is_all_completed(pool):
    futures = [pool.submit(abs, -i) for i in range(4)]
    result = gofutures.wait(futures, timeout=TIMEOUT)
    assert result.done == set(futures)
    assert result.not_done == set()


def test_wait_first_completed(pool, gate):
    slow = pool.submit(gate.wait, TIMEOUT)
    fast = pool.submit(abs, -1)
    done, not_done = gofutures.wait([slow, fast], timeout=TIMEOUT, return_when=gofutures.FIRST_COMPLETED)
    assert fast in done
    assert slow in not_done
    assert not slow.done()


def test_wait_first_completed_with_already_done(gate, pool):
    pending = pool.submit(gate.wait, TIMEOUT)
    finished = _done_future(1)
    done, not_done = gofutures.wait([pending, finished], return_when=gofutures.FIRST_COMPLETED)
    assert done == {finished}
    assert not_done == {pending}


def test_wait_first_exception(pool, gate):
    slow = pool.submit(gate.wait, TIMEOUT)
    ok = pool.submit(abs, -1)
    ok.result(timeout=TIMEOUT)
    bad = pool.submit(divmod, 1, 0)
    done, not_done = gofutures.wait([slow, ok, bad], timeout=TIMEOUT, return_when=gofutures.FIRST_EXCEPTION)
    assert bad in done
    assert ok in done
    assert not_done == {slow}


def test_wait_first_exception_without_exceptions_waits_for_all(pool, timers):
    f1 = gofutures.Future()
    f2 = pool.submit(abs, -2)
    timers(0.1, f1.set_result, 1)
    done, not_done = gofutures.wait([f1, f2], timeout=TIMEOUT, return_when=gofutures.FIRST_EXCEPTION)
    assert done == {f1, f2}
    assert not_done == set()


def test_wait_first_exception_cancelled_is_done_not_exception(gate, pool):
    pending = pool.submit(gate.wait, TIMEOUT)
    cancelled = _cancelled_future()
    done, not_done = gofutures.wait([pending, cancelled], timeout=0.1, return_when=gofutures.FIRST_EXCEPTION)
    assert done == {cancelled}
    assert not_done == {pending}


def test_wait_timeout_returns_not_done(pool, gate):
    slow = pool.submit(gate.wait, TIMEOUT)
    fast = pool.submit(abs, -1)
    fast.result(timeout=TIMEOUT)
    done, not_done = gofutures.wait([slow, fast], timeout=0.1)
    assert done == {fast}
    assert not_done == {slow}


def test_wait_zero_timeout():
    pending = gofutures.Future()
    finished = _done_future(2)
    done, not_done = gofutures.wait([pending, finished], timeout=0)
    assert done == {finished}
    assert not_done == {pending}


def test_wait_empty():
    done, not_done = gofutures.wait([], timeout=TIMEOUT)
    assert done == set() and not_done == set()


def test_wait_duplicates(pool):
    f = pool.submit(abs, -3)
    g = pool.submit(abs, -4)
    done, not_done = gofutures.wait([f, f, g, f], timeout=TIMEOUT)
    assert done == {f, g}
    assert not_done == set()


def test_wait_on_future_completed_by_another_thread(timers):
    f = gofutures.Future()
    timers(0.1, f.set_result, "x")
    done, _ = gofutures.wait([f], timeout=TIMEOUT)
    assert done == {f}
    assert f.result() == "x"


# ------------------------------------------------------------ as_completed


def test_as_completed_yields_every_future_once(pool):
    futures = [pool.submit(pow, 3, i) for i in range(10)]
    seen = list(gofutures.as_completed(futures, timeout=TIMEOUT))
    assert len(seen) == 10
    assert set(seen) == set(futures)


def test_as_completed_in_completion_order(pool, gate):
    slow = pool.submit(lambda: gate.wait(TIMEOUT) and "slow")
    fast = pool.submit(lambda: "fast")
    it = gofutures.as_completed([slow, fast], timeout=TIMEOUT)
    assert next(it) is fast
    gate.set()
    assert next(it) is slow
    with pytest.raises(StopIteration):
        next(it)


def test_as_completed_finished_first():
    pending = gofutures.Future()
    finished = _done_future(1)
    cancelled = _cancelled_future()
    it = gofutures.as_completed([pending, finished, cancelled], timeout=TIMEOUT)
    first_two = {next(it), next(it)}
    assert first_two == {finished, cancelled}
    pending.set_result(2)
    assert next(it) is pending


class _FinishesWhenLookedAt(concurrent.futures.Future):
    """A future whose call ends just after as_completed first reads its
    state: the first read says pending, every later one finished."""

    def _get_state(self):
        state = self.__dict__["_state"]
        if state == concurrent.futures._base.PENDING and not self.__dict__.get("_looked"):
            self.__dict__.update(_looked=True, _result="late", _state=concurrent.futures._base.FINISHED)
        return state

    def _set_state(self, state):
        self.__dict__["_state"] = state

    _state = property(_get_state, _set_state)


def test_as_completed_yields_a_future_that_finishes_while_it_starts():
    # It finished between as_completed's looks at it: it was missing from
    # both the finished and the pending futures, and never yielded.
    late = _FinishesWhenLookedAt()
    assert list(gofutures.as_completed([late], timeout=TIMEOUT)) == [late]
    assert late.result() == "late"


def test_as_completed_timeout(pool, gate):
    slow = pool.submit(gate.wait, TIMEOUT)
    fast = pool.submit(abs, -1)
    fast.result(timeout=TIMEOUT)
    seen = []
    with pytest.raises(gofutures.TimeoutError) as ei:
        for f in gofutures.as_completed([slow, fast], timeout=0.2):
            seen.append(f)
    assert seen == [fast]
    assert re.fullmatch(r"1 \(of 2\) futures unfinished", str(ei.value))


def test_as_completed_timeout_counts_unique_futures(gate, pool):
    a = pool.submit(gate.wait, TIMEOUT)
    b = pool.submit(gate.wait, TIMEOUT)
    c = _done_future(3)
    with pytest.raises(gofutures.TimeoutError, match=r"2 \(of 3\) futures unfinished"):
        list(gofutures.as_completed([a, b, a, c, c], timeout=0.1))


def test_as_completed_duplicates_yielded_once(pool):
    f = pool.submit(abs, -1)
    g = pool.submit(abs, -2)
    seen = list(gofutures.as_completed([f, g, f, f, g], timeout=TIMEOUT))
    assert sorted(seen, key=id) == sorted([f, g], key=id)


def test_as_completed_is_lazy_about_waiting(gate, pool):
    # Creating the iterator does not block; only iterating does.
    slow = pool.submit(gate.wait, TIMEOUT)
    it = gofutures.as_completed([slow], timeout=TIMEOUT)
    gate.set()
    assert list(it) == [slow]


def test_as_completed_empty():
    assert list(gofutures.as_completed([], timeout=TIMEOUT)) == []


def test_as_completed_accepts_dict_keys(pool):
    future_to_n = {pool.submit(abs, -n): n for n in range(5)}
    got = {future_to_n[f]: f.result() for f in gofutures.as_completed(future_to_n, timeout=TIMEOUT)}
    assert got == {n: n for n in range(5)}


# ------------------------------------------------------------ mixing with plain stdlib futures


def test_gofutures_wait_on_plain_stdlib_futures(timers, pool):
    plain = concurrent.futures.Future()
    plain_failed = concurrent.futures.Future()
    ours = pool.submit(abs, -5)
    timers(0.05, plain.set_result, "plain")
    timers(0.1, plain_failed.set_exception, KeyError("k"))
    done, _ = gofutures.wait([plain, ours, plain_failed], timeout=TIMEOUT)
    assert done == {plain, ours, plain_failed}
    assert plain.result() == "plain"
    assert ours.result() == 5


def test_gofutures_wait_first_exception_plain_future(gate, pool, timers):
    plain = concurrent.futures.Future()
    ours = pool.submit(gate.wait, TIMEOUT)
    timers(0.1, plain.set_exception, ValueError("v"))
    done, not_done = gofutures.wait([plain, ours], timeout=TIMEOUT, return_when=gofutures.FIRST_EXCEPTION)
    assert done == {plain}
    assert not_done == {ours}


def test_gofutures_as_completed_mixed(timers, pool, gate):
    plain = concurrent.futures.Future()
    ours_slow = pool.submit(lambda: gate.wait(TIMEOUT) and "ours")
    ours_fast = pool.submit(abs, -1)
    timers(0.1, plain.set_result, "plain")
    it = gofutures.as_completed([plain, ours_slow, ours_fast], timeout=TIMEOUT)
    assert {next(it), next(it)} == {plain, ours_fast}
    gate.set()
    assert next(it) is ours_slow
    assert list(it) == []


def test_gofutures_wait_plain_running_future(timers):
    plain = concurrent.futures.Future()
    assert plain.set_running_or_notify_cancel()
    timers(0.1, plain.set_result, 1)
    done, _ = gofutures.wait([plain], timeout=TIMEOUT, return_when=gofutures.FIRST_COMPLETED)
    assert done == {plain}


# ------------------------------------------------------------ stdlib wait/as_completed on gofutures futures


def test_stdlib_wait_on_pending_gofutures_futures(gate, pool, timers):
    slow = pool.submit(lambda: gate.wait(TIMEOUT) and "slow")
    direct = gofutures.Future()
    timers(0.1, gate.set)
    timers(0.15, direct.set_result, "direct")
    done, not_done = concurrent.futures.wait([slow, direct], timeout=TIMEOUT)
    assert done == {slow, direct}
    assert not_done == set()
    assert slow.result() == "slow"


def test_stdlib_wait_first_completed_on_gofutures(gate, pool):
    slow = pool.submit(gate.wait, TIMEOUT)
    fast = pool.submit(abs, -1)
    done, not_done = concurrent.futures.wait(
        [slow, fast], timeout=TIMEOUT, return_when=concurrent.futures.FIRST_COMPLETED
    )
    assert fast in done
    assert slow in not_done


def test_stdlib_wait_first_exception_on_gofutures(gate, pool):
    slow = pool.submit(gate.wait, TIMEOUT)
    bad = pool.submit(divmod, 1, 0)
    done, not_done = concurrent.futures.wait(
        [slow, bad], timeout=TIMEOUT, return_when=concurrent.futures.FIRST_EXCEPTION
    )
    assert done == {bad}
    assert not_done == {slow}


def test_stdlib_wait_timeout_on_gofutures(gate, pool):
    slow = pool.submit(gate.wait, TIMEOUT)
    done, not_done = concurrent.futures.wait([slow], timeout=0.1)
    assert done == set() and not_done == {slow}


def test_stdlib_wait_on_done_gofutures_futures(pool):
    futures = [pool.submit(abs, -i) for i in range(4)]
    for f in futures:
        f.result(timeout=TIMEOUT)
    extra = [_done_future(9), _failed_future(ValueError("x"))]
    cancelled = _cancelled_future()
    everything = futures + extra + [cancelled]
    done, not_done = concurrent.futures.wait(everything, timeout=0)
    assert done == set(everything)
    assert not_done == set()


def test_stdlib_as_completed_on_pending_gofutures_futures(gate, pool, timers):
    slow = pool.submit(lambda: gate.wait(TIMEOUT) and "slow")
    fast = pool.submit(abs, -2)
    direct = gofutures.Future()
    timers(0.05, direct.set_result, "direct")
    it = concurrent.futures.as_completed([slow, fast, direct], timeout=TIMEOUT)
    assert {next(it), next(it)} == {fast, direct}
    gate.set()
    assert next(it) is slow
    assert list(it) == []


def test_stdlib_as_completed_on_done_gofutures_futures(pool):
    futures = [pool.submit(abs, -i) for i in range(3)]
    for f in futures:
        f.result(timeout=TIMEOUT)
    cancelled = _cancelled_future()
    seen = list(concurrent.futures.as_completed(futures + [cancelled], timeout=0))
    assert len(seen) == 4
    assert set(seen) == set(futures) | {cancelled}


def test_stdlib_as_completed_timeout_on_gofutures(gate, pool):
    slow = pool.submit(gate.wait, TIMEOUT)
    with pytest.raises(concurrent.futures.TimeoutError, match=r"1 \(of 1\) futures unfinished"):
        list(concurrent.futures.as_completed([slow], timeout=0.1))


@pytest.mark.parametrize("kind", ["thread", "process"])
def test_stdlib_wait_sees_a_queued_future_cancelled(kind):
    # The pool acknowledges the cancel when the task's turn comes; the
    # stdlib's wait() counts a cancelled future as done only once told so
    # (add_cancelled), whichever kind of pool ran it.
    if kind == "thread":
        ex = gofutures.ThreadPoolExecutor(1)
    else:
        ex = gofutures.ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
    blocker = ex.submit(time.sleep, 0.5)
    with ex:
        queued = ex.submit(pow, 2, 3)
        assert queued.cancel()
        done, not_done = concurrent.futures.wait([queued], timeout=TIMEOUT)
        assert done == {queued} and not not_done
        assert blocker.result(timeout=TIMEOUT) is None
