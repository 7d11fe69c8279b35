"""Process results are unpickled lazily, in the thread that asks for them,
when nobody observes the future from Python (no done-callback, no stdlib
wait). What users rely on must not change with that: values, exceptions
and their remote tracebacks, done-callbacks before and after completion,
the stdlib's wait()/as_completed(), a result that fails to unpickle, two
threads asking at once, and futures and results being freed."""

import concurrent.futures as cf
import gc
import threading
import time
import weakref
from concurrent.futures.process import BrokenProcessPool, _RemoteTraceback

import pytest

import gofutures

TIMEOUT = 30


def _square(x):
    return x * x


def _fail(x):
    raise KeyError("bad %d" % x)


def _sleep_then(x, seconds):
    time.sleep(seconds)
    return x


# Loads counted here, in the parent (workers only pickle these values).
_LOADS = []


def _load_counted(value, delay):
    _LOADS.append(value)
    if delay:
        time.sleep(delay)  # releases the GIL while the other reader waits
    return _Loaded(value)


def _refuse_counted(value):
    _LOADS.append(value)
    raise RuntimeError("refusing to be unpickled")


class _Loaded:
    def __init__(self, value):
        self.value = value


class _Counted:
    """Unpickles (here) through _load_counted, optionally slowly."""

    def __init__(self, value, delay=0):
        self.value, self.delay = value, delay

    def __reduce__(self):
        return (_load_counted, (self.value, self.delay))


class _Unloadable:
    def __init__(self, value):
        self.value = value

    def __reduce__(self):
        return (_refuse_counted, (self.value,))


def _return_counted(value, delay=0):
    return _Counted(value, delay)


def _return_unloadable(value):
    return _Unloadable(value)


_INTERRUPT_ONCE = []


def _load_interrupting_once(value):
    if not _INTERRUPT_ONCE:
        _INTERRUPT_ONCE.append(1)
        raise KeyboardInterrupt
    return value


class _InterruptsOnce:
    def __init__(self, value):
        self.value = value

    def __reduce__(self):
        return (_load_interrupting_once, (self.value,))


def _return_interrupting(value):
    return _InterruptsOnce(value)


@pytest.fixture
def pool():
    with gofutures.ProcessPoolExecutor(2) as ex:
        yield ex


def _wait_done(fs):
    _, not_done = gofutures.wait(fs, timeout=TIMEOUT)
    assert not not_done


def test_many_results_and_map(pool):
    fs = [pool.submit(_square, i) for i in range(2000)]
    assert [f.result(timeout=TIMEOUT) for f in fs] == [i * i for i in range(2000)]
    assert list(pool.map(_square, range(3000), timeout=TIMEOUT)) == [i * i for i in range(3000)]


def test_finished_future_answers_the_private_attributes(pool):
    f = pool.submit(_square, 7)
    _wait_done([f])  # Go-native wait: the future stays unobserved
    assert f._state == "FINISHED"
    assert f._exception is None
    assert f._result == 49
    g = pool.submit(_fail, 3)
    _wait_done([g])
    assert g._result is None
    assert isinstance(g._exception, KeyError)


def test_exceptions_keep_type_and_remote_traceback(pool):
    fs = [pool.submit(_fail, i) for i in range(50)]
    _wait_done(fs)
    for i, f in enumerate(fs):
        exc = f.exception(timeout=TIMEOUT)
        assert type(exc) is KeyError and exc.args == ("bad %d" % i,)
        assert isinstance(exc.__cause__, _RemoteTraceback)
        assert "_fail" in str(exc.__cause__)
        with pytest.raises(KeyError) as info:
            f.result()
        assert info.value is exc  # one object, however often it is asked for
    # FIRST_EXCEPTION relies on the Go side knowing the outcome failed.
    ok = pool.submit(_sleep_then, 1, 1.5)
    bad = pool.submit(_fail, 0)
    done, _ = gofutures.wait([ok, bad], timeout=TIMEOUT, return_when=gofutures.FIRST_EXCEPTION)
    assert bad in done and ok not in done


def test_done_callback_before_and_after_completion_called_once(pool):
    calls = []
    lock = threading.Lock()

    def cb(f):
        with lock:
            calls.append((f, f.result()))

    before = [pool.submit(_sleep_then, i, 0.01) for i in range(20)]
    for f in before:
        f.add_done_callback(cb)
    after = [pool.submit(_square, i) for i in range(20)]
    _wait_done(before + after)
    for f in after:  # finished unobserved: the callback runs at once
        f.add_done_callback(cb)
    _wait_done(before)
    deadline = time.monotonic() + TIMEOUT
    while len(calls) < 40 and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.05)
    assert sorted((id(f), r) for f, r in calls) == sorted(
        [(id(f), i) for i, f in enumerate(before)] + [(id(f), i * i) for i, f in enumerate(after)]
    )


def test_stdlib_wait_and_as_completed(pool):
    early = [pool.submit(_square, i) for i in range(10)]
    _wait_done(early)
    late = [pool.submit(_sleep_then, i, 0.05) for i in range(10)]
    fs = early + late
    done, not_done = cf.wait(fs, timeout=TIMEOUT)
    assert not not_done and done == set(fs)
    more = [pool.submit(_sleep_then, i, 0.02) for i in range(10)] + [pool.submit(_fail, 1)]
    seen = list(cf.as_completed(early + more, timeout=TIMEOUT))
    assert set(seen) == set(early + more) and len(seen) == len(early + more)
    assert [f.result() for f in more[:10]] == list(range(10))
    assert isinstance(more[-1].exception(), KeyError)
    first = [pool.submit(_sleep_then, 0, 1.5), pool.submit(_fail, 2)]
    done, _ = cf.wait(first, timeout=TIMEOUT, return_when=cf.FIRST_EXCEPTION)
    assert first[1] in done and first[0] not in done


def test_unpicklable_result_fails_only_its_future_and_is_loaded_once(pool):
    del _LOADS[:]
    bad = pool.submit(_return_unloadable, "x")
    good = [pool.submit(_square, i) for i in range(20)]
    _wait_done([bad] + good)
    for _ in range(3):
        with pytest.raises(BrokenProcessPool, match="could not be unpickled here") as info:
            bad.result()
        assert isinstance(info.value.__cause__, RuntimeError)
    assert bad.exception() is info.value and bad._exception is info.value
    assert [f.result() for f in good] == [i * i for i in range(20)]
    assert _LOADS == ["x"]
    # Found by a FIRST_EXCEPTION wait from now on, although Go finished it
    # as a success.
    done, _ = gofutures.wait([bad], timeout=0, return_when=gofutures.FIRST_EXCEPTION)
    assert bad in done


def test_result_from_two_threads_at_once_is_one_object(pool):
    del _LOADS[:]
    for round_ in range(5):
        f = pool.submit(_return_counted, round_, 0.1)
        _wait_done([f])
        got = [None, None]
        start = threading.Barrier(2)

        def read(i, f=f, got=got, start=start):  # this round's
            start.wait()
            got[i] = f.result(timeout=TIMEOUT)

        threads = [threading.Thread(target=read, args=(i,)) for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(TIMEOUT)
        assert got[0] is got[1] and got[0].value == round_
    assert _LOADS == list(range(5))


def test_interrupted_unpickling_leaves_the_result_for_the_next_reader(pool):
    del _INTERRUPT_ONCE[:]
    f = pool.submit(_return_interrupting, 5)
    _wait_done([f])
    with pytest.raises(KeyboardInterrupt):
        f.result()
    assert f.result() == 5


def test_futures_and_results_are_freed(pool):
    del _LOADS[:]
    f = pool.submit(_return_counted, 1)
    value = f.result(timeout=TIMEOUT)
    wf, wv = weakref.ref(f), weakref.ref(value)
    del f, value
    gc.collect()
    assert wf() is None and wv() is None
    # Futures nobody reads are freed too, at the latest when the pool joins.
    fs = [pool.submit(_square, i) for i in range(100)]
    _wait_done(fs)
    refs = [weakref.ref(f) for f in fs]
    del fs
    pool.shutdown(wait=True)
    gc.collect()
    assert all(r() is None for r in refs)


def test_a_future_seen_done_and_dropped_is_freed_at_once(pool):
    # Polling done() leaves the future unobserved: its outcome is parked in
    # it, and the pool's own reference waits for a drain, which a program
    # that only polls and drops never ran (the future lived on until some
    # later result read or submit, or the results worker's drain).
    f = pool.submit(_square, 3)
    deadline = time.monotonic() + TIMEOUT
    while not f.done():
        assert time.monotonic() < deadline, "the call did not finish"
        time.sleep(0.001)
    ref = weakref.ref(f)
    del f
    assert ref() is None, "the future outlived the last reference of its user"
