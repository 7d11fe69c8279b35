"""Argument checks side by side with the stdlib: each case runs once on
concurrent.futures and once on gofutures, and both must accept it, or both
refuse it with the same exception type and message (at the same moment: in
the constructor, at map() or at the first next())."""

import concurrent.futures
import concurrent.futures.thread
import decimal
import fractions
import math
import threading

import pytest

import gofutures

TIMEOUT = 30
STD, GF = concurrent.futures, gofutures


def outcome(call):
    """What call() did: ("ok", value), or the exception's type and text."""
    try:
        return "ok", call()
    except Exception as exc:
        return type(exc), str(exc)


def side_by_side(case, same_text=True):
    """same_text False compares the exception types only; "prefix": the
    stdlib's text must start gofutures' (which may say more)."""
    std, gf = outcome(lambda: case(STD)), outcome(lambda: case(GF))
    if same_text == "prefix":
        assert gf[0] == std[0] and gf[1].startswith(std[1])
    elif same_text:
        assert gf == std
    else:
        assert gf[0] == std[0]
    return gf


def a_future(m, done):
    f = m.Future()
    if done:
        f.set_result(1)
    return f


# ---------------------------------------------------------------- threads


def run_threads(m, **kwargs):
    ex = m.ThreadPoolExecutor(**kwargs)
    try:
        return sorted(ex.map(abs, [-1, -2, -3])), ex._max_workers
    finally:
        ex.shutdown()


@pytest.mark.parametrize(
    "max_workers",
    [
        2.5,
        0.5,
        10**30,
        float("inf"),
        fractions.Fraction(3, 2),
        decimal.Decimal("1.5"),
        True,
        0,
        -1,
        -0.5,
        "3",
        1j,
        [],
    ],
    ids=repr,
)
def test_thread_pool_max_workers(max_workers):
    side_by_side(lambda m: run_threads(m, max_workers=max_workers))


def test_thread_pool_max_workers_not_a_number():
    # The stdlib accepts NaN and then never starts a thread: its tasks wait
    # forever. gofutures refuses it.
    with pytest.raises(ValueError, match="max_workers must be greater than 0"):
        gofutures.ThreadPoolExecutor(max_workers=math.nan)


def test_thread_pool_fractional_max_workers_runs_as_many_threads_as_the_stdlib(gate):
    # The stdlib starts a thread while it has fewer than max_workers: 1.5
    # allows two at once.
    with gofutures.ThreadPoolExecutor(max_workers=1.5) as ex:
        blocked = [ex.submit(gate.wait, TIMEOUT) for _ in range(2)]
        assert ex.submit(abs, -1).running() is False
        gate.set()
        assert all(f.result(timeout=TIMEOUT) for f in blocked)
        assert len(ex._threads) == 2


@pytest.mark.parametrize(
    "kwargs",
    [
        {"thread_name_prefix": 5},
        {"thread_name_prefix": None},
        {"initargs": 5},  # no initializer: never used
        {"initializer": 5},
        {"initializer": print, "initargs": [1]},  # any iterable
    ],
    ids=repr,
)
def test_thread_pool_other_arguments(kwargs):
    side_by_side(lambda m: run_threads(m, max_workers=1, **kwargs))


def test_thread_name_prefix_that_is_no_string_names_the_threads():
    def name(m):
        with m.ThreadPoolExecutor(1, thread_name_prefix=5) as ex:
            return ex.submit(lambda: threading.current_thread().name).result(timeout=TIMEOUT)

    assert side_by_side(name) == ("ok", "5_0")


def test_thread_pool_initargs_that_are_no_iterable_break_the_pool():
    # As in the stdlib: the initializer call fails in the worker, which
    # breaks the pool (gofutures' message adds why).
    kind, _ = side_by_side(lambda m: run_threads(m, max_workers=1, initargs=5, initializer=print), same_text="prefix")
    assert kind is concurrent.futures.thread.BrokenThreadPool


@pytest.mark.parametrize("call", ["no fn", "fn as keyword"])
def test_thread_submit_without_fn(call):
    def case(m):
        with m.ThreadPoolExecutor(1) as ex:
            return ex.submit() if call == "no fn" else ex.submit(fn=abs)

    side_by_side(case)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"timeout": "x"},
        {"timeout": -1},
        {"chunksize": 0},
        {"chunksize": 2.5},
        {"chunksize": "x"},
    ],
    ids=repr,
)
def test_thread_map(kwargs):
    # A timeout case must not depend on whether the call ran before its
    # result is asked for: the call waits until the map has given its answer.
    def case(m):
        gate = threading.Event()
        fn = gate.wait if "timeout" in kwargs else abs
        with m.ThreadPoolExecutor(1) as ex:
            try:
                return list(ex.map(fn, [60, 60], **kwargs))
            finally:
                gate.set()

    side_by_side(case)


# ---------------------------------------------------------------- processes


@pytest.mark.parametrize("chunksize", [2.5, 0, -1, "x", None, 10**30], ids=repr)
def test_process_map_chunksize(chunksize):
    # Refused before any call is submitted (no worker starts on either side).
    # On 3.13 the stdlib chunks with itertools.batched (TypeError for 2.5),
    # before with islice (ValueError): each version's own.
    def case(m):
        ex = m.ProcessPoolExecutor(1)
        try:
            return list(ex.map(abs, [1, -2, 3], chunksize=chunksize))
        finally:
            ex.shutdown()

    kind, _ = side_by_side(case)
    assert kind != "ok"


def test_process_map_chunksize_true_is_one():
    with gofutures.ProcessPoolExecutor(1) as ex:
        assert list(ex.map(abs, [1, -2, 3], chunksize=True)) == [1, 2, 3]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_workers": 0},
        {"max_workers": -1},
        {"max_workers": "x"},
        {"initializer": 5},
        {"max_tasks_per_child": 0},
        {"max_tasks_per_child": 1.5},
        {"mp_context": 5},
    ],
    ids=repr,
)
def test_process_pool_constructor(kwargs):
    def case(m):
        m.ProcessPoolExecutor(**kwargs).shutdown()

    side_by_side(case)


# ---------------------------------------------------------------- wait, as_completed


@pytest.mark.parametrize("done", [True, False], ids=["all done", "one pending"])
@pytest.mark.parametrize("return_when", ["bogus", None, 5, [], STD.FIRST_COMPLETED], ids=repr)
def test_wait_return_when(return_when, done):
    # The stdlib checks it only when it must block: with every future done
    # any value returns at once.
    def case(m):
        fs = [a_future(m, True), a_future(m, done)]
        d, nd = m.wait(fs, timeout=0, return_when=return_when)
        return len(d), len(nd)

    side_by_side(case)


@pytest.mark.parametrize("others", [[], [True], [False]], ids=["alone", "with a done future", "with a pending one"])
@pytest.mark.parametrize("thing", [1, "x", None, object()], ids=lambda t: type(t).__name__)
@pytest.mark.parametrize("function", ["wait", "wait first completed", "as_completed"])
def test_not_a_future(function, thing, others):
    def case(m):
        fs = [thing] + [a_future(m, done) for done in others]
        if function == "as_completed":
            return len(list(m.as_completed(fs, timeout=0)))
        when = m.FIRST_COMPLETED if function == "wait first completed" else m.ALL_COMPLETED
        return len(m.wait(fs, timeout=0, return_when=when).done)

    kind, message = side_by_side(case)
    assert kind is AttributeError and "_condition" in message


@pytest.mark.parametrize("fs", [5, None], ids=repr)
@pytest.mark.parametrize("function", ["wait", "as_completed"])
def test_not_an_iterable(function, fs):
    side_by_side(lambda m: m.wait(fs) if function == "wait" else list(m.as_completed(fs)))


@pytest.mark.parametrize("timeout", ["x", [], -1, 0, math.nan], ids=repr)
@pytest.mark.parametrize("call", ["result", "exception", "wait", "as_completed"])
@pytest.mark.parametrize("done", [True, False], ids=["done", "pending"])
def test_timeouts(call, timeout, done):
    if call == "as_completed" and not done and timeout != timeout:
        pytest.skip("the stdlib's as_completed spins forever on a NaN timeout")

    def case(m):
        f = a_future(m, done)
        if call == "wait":
            return len(m.wait([f], timeout=timeout).done)
        if call == "as_completed":
            return len(list(m.as_completed([f], timeout=timeout)))
        return getattr(f, call)(timeout)

    side_by_side(case)


@pytest.mark.parametrize("timeout", [1e10, math.inf, 10**30], ids=repr)
@pytest.mark.parametrize("call", ["result", "wait"])
def test_timeouts_too_large_for_a_lock(call, timeout):
    # The lock's message names its own conversion, which differs by version
    # and by the timeout's type: the type is what is compared.
    def case(m):
        f = a_future(m, False)
        return f.result(timeout) if call == "result" else m.wait([f], timeout=timeout)

    assert side_by_side(case, same_text=False)[0] is OverflowError
