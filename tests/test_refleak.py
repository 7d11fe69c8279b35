"""Reference and memory leaks of the C hot path: each hot operation runs in
a loop, and after a warm-up the interpreter's allocated blocks
(sys.getallocatedblocks), the C heap in use (glibc's mallinfo2, where there
is one) and, on a Py_DEBUG build, the total reference count
(sys.gettotalrefcount) must stay flat.

A leak of one object (or one allocation) per operation grows every count by
at least the loop's length in every repetition; what the interpreter caches
or frees in bulk (free lists, arenas, a pool's worker starting) moves them
now and then, but not in every repetition. So a count that grows by at least
LEAK_PER_CALL per call in each of REPEATS repetitions is a leak. On a
Py_DEBUG build (make debug-test) a stricter check runs too (DEBUG_FLAT): the
references and blocks added over several repetitions in a row must settle
below what a leak once per loop pass would add; it is skipped elsewhere.
"""

import concurrent.futures
import ctypes
import ctypes.util
import gc
import logging
import sys
import threading

import pytest

import gofutures
from gofutures import _base

REPEATS = 4
LEAK_PER_CALL = 0.5  # counts per call; a real leak is >= 1 object or allocation per call
CALLS = 1000
PROCESS_CALLS = 200  # round trips to a worker process: slower


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena",
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",
            "usmblks",
            "fsmblks",
            "uordblks",
            "fordblks",
            "keepcost",
        )
    ]


def _malloc_in_use():
    """Bytes the C heap has handed out (glibc >= 2.33), or None."""
    libc = ctypes.CDLL(ctypes.util.find_library("c") or None)
    mallinfo2 = getattr(libc, "mallinfo2", None)
    if mallinfo2 is None:
        return None
    mallinfo2.restype = _MallInfo2
    return lambda: mallinfo2().uordblks + mallinfo2().hblkhd


_MALLOC = _malloc_in_use()


def counts():
    gc.collect()
    c = {"blocks": sys.getallocatedblocks()}
    if hasattr(sys, "gettotalrefcount"):
        c["refs"] = sys.gettotalrefcount()
    if _MALLOC is not None:
        c["malloc bytes"] = _MALLOC()
    return c


def leaks(operation, calls):
    """The counts that grew by LEAK_PER_CALL per call or more in every
    repetition, with their growth per repetition ({} when flat)."""
    for _ in range(3):  # warm-up: caches, free lists, workers, the first pool
        operation(calls)
    growth = {}
    before = counts()
    for _ in range(REPEATS):
        operation(calls)
        after = counts()
        for name in before:
            growth.setdefault(name, []).append(after[name] - before[name])
        before = after
    # Bytes: one leaked allocation is at least 16 bytes.
    floor = {"blocks": 1, "refs": 1, "malloc bytes": 16}
    return {name: deltas for name, deltas in growth.items() if min(deltas) >= LEAK_PER_CALL * calls * floor[name]}


# ---------------------------------------------------------------- operations


@pytest.fixture(scope="module")
def threads():
    with gofutures.ThreadPoolExecutor(2) as ex:
        yield ex


@pytest.fixture(scope="module")
def processes():
    with gofutures.ProcessPoolExecutor(2) as ex:
        yield ex


class _Failure(Exception):
    pass


def _fail(x):
    raise _Failure(x)


def _raise_interrupt(f):
    raise KeyboardInterrupt


def _quiet(operation):
    # The pool's logger goes to pytest's capture, which keeps every record.
    def quiet(calls):
        logger = logging.getLogger("concurrent.futures")
        logger.disabled = True
        try:
            operation(calls)
        finally:
            logger.disabled = False

    return quiet


def future_round_trips(calls):
    for i in range(calls):
        f = gofutures.Future()
        f.set_running_or_notify_cancel()
        f.set_result(i)
        f.result()
        g = gofutures.Future()
        g.set_exception(_Failure(i))
        g.exception()
        try:
            g.result()
        except _Failure:
            pass


def submit_result(ex):
    def run(calls):
        for i in range(calls):
            ex.submit(abs, -i).result()
            ex.submit(_fail, i).exception()

    return run


def wait_and_as_completed(ex):
    def run(calls):
        for _ in range(calls // 10):
            fs = [ex.submit(abs, -i) for i in range(10)]
            pending = gofutures.Future()
            gofutures.wait(fs)
            gofutures.wait(fs + [pending], timeout=0, return_when=gofutures.FIRST_COMPLETED)
            list(gofutures.as_completed(fs))
            concurrent.futures.wait(fs + [pending], timeout=0)  # the stdlib's: _condition, _waiters
            pending.cancel()

    return run


def callbacks(calls):
    for i in range(calls):
        f = gofutures.Future()
        f.add_done_callback(lambda fut: fut.result())
        f.add_done_callback(_fail)  # logged
        f.set_result(i)
        f.add_done_callback(lambda fut: None)  # runs at once
        g = gofutures.Future()
        g.add_done_callback(_raise_interrupt)
        try:
            g.set_result(i)  # propagates
        except KeyboardInterrupt:
            pass


def cancels(ex):
    # ex unused: pools of its own, shut down with queued tasks
    def run(calls):
        for _ in range(calls // 10):
            f = gofutures.Future()
            f.add_done_callback(lambda fut: None)
            f.cancel()
            f.set_running_or_notify_cancel()
            try:
                f.result()
            except gofutures.CancelledError:
                pass
            # map's per-item step, cancelling on timeout
            g = gofutures.Future()
            try:
                _base._result_or_cancel(g, 0)
            except TimeoutError:
                pass
            # queued tasks cancelled at shutdown
            pool = gofutures.ThreadPoolExecutor(1)
            gate = threading.Event()
            pool.submit(gate.wait)
            queued = [pool.submit(abs, i) for i in range(8)]
            pool.shutdown(wait=False, cancel_futures=True)
            gate.set()
            pool.shutdown(wait=True)
            del queued

    return run


def thread_map(ex):
    def run(calls):
        list(ex.map(abs, range(calls)))
        list(ex.map(abs, range(calls), buffersize=8))

    return run


def lazy_process_results(ex):
    # Unobserved futures: outcomes parked in the future, unpickled by
    # result() (future.c's materialize); observed ones: delivered by the
    # results worker.
    def run(calls):
        for i in range(calls):
            ex.submit(abs, -i).result()
            ex.submit(_fail, i).exception()
            f = ex.submit(abs, i)
            f.add_done_callback(lambda fut: None)
            f.result()
        list(ex.map(abs, range(calls), chunksize=10))

    return run


OPERATIONS = {
    "future set/result/exception": lambda pools: future_round_trips,
    "thread submit + result": lambda pools: submit_result(pools.threads),
    "wait + as_completed": lambda pools: wait_and_as_completed(pools.threads),
    "done callbacks": lambda pools: _quiet(callbacks),
    "cancel": lambda pools: cancels(pools.threads),
    "thread map": lambda pools: thread_map(pools.threads),
    "process lazy results": lambda pools: lazy_process_results(pools.processes),
}


class _Pools:
    def __init__(self, request):
        self._request = request

    @property
    def threads(self):
        return self._request.getfixturevalue("threads")

    @property
    def processes(self):
        return self._request.getfixturevalue("processes")


@pytest.mark.parametrize("name", list(OPERATIONS))
def test_hot_operation_does_not_leak(name, request):
    operation = OPERATIONS[name](_Pools(request))
    calls = PROCESS_CALLS if "process" in name else CALLS
    assert leaks(operation, calls) == {}


# ---------------------------------------------------------------- a Py_DEBUG build: exact counts

# On a Py_DEBUG build (make debug-test) the total reference count is exact,
# so the hot path is held to more than "no leak per call": the references
# and the blocks that DEBUG_WINDOW repetitions in a row add up to must fall
# below DEBUG_FLAT within DEBUG_MAX repetitions. Each operation makes at
# least 100 passes of its loop (or map items) a repetition, so a leak of one
# reference once a pass, not once a call (a rare path: one wait() of ten
# futures), adds at least 600 to every window and never settles. What does
# settle: caches that fill over the first thousand passes or so (measured on
# 3.14-dbg: wait + as_completed adds ~250 references over its first 1,200
# passes, 15 sets, 15 builtin functions and 30 weakrefs, which look like
# the weak-set caches of isinstance checks against abstract classes; then 0
# +-3 a repetition for as long as it runs).
DEBUG_WINDOW = 6
DEBUG_FLAT = 60
DEBUG_MAX = 30

debug_build = pytest.mark.skipif(
    not hasattr(sys, "gettotalrefcount"), reason="needs a Py_DEBUG build (sys.gettotalrefcount): make debug-test"
)


def settled_deltas(operation, calls):
    """The refs and blocks deltas of the first DEBUG_WINDOW repetitions in a
    row that add less than DEBUG_FLAT to both (or of the last window of
    DEBUG_MAX), and how many repetitions ran."""
    for _ in range(3):
        operation(calls)
    refs, blocks = [], []
    before = counts()
    while len(refs) < DEBUG_MAX:
        operation(calls)
        after = counts()
        refs.append(after["refs"] - before["refs"])
        blocks.append(after["blocks"] - before["blocks"])
        before = after
        if len(refs) >= DEBUG_WINDOW and max(sum(refs[-DEBUG_WINDOW:]), sum(blocks[-DEBUG_WINDOW:])) < DEBUG_FLAT:
            break
    return refs[-DEBUG_WINDOW:], blocks[-DEBUG_WINDOW:], len(refs)


@debug_build
@pytest.mark.parametrize("name", list(OPERATIONS))
def test_hot_operation_keeps_refs_and_blocks_flat_on_a_debug_build(name, request):
    operation = OPERATIONS[name](_Pools(request))
    calls = PROCESS_CALLS if "process" in name else CALLS
    refs, blocks, ran = settled_deltas(operation, calls)
    # make debug-test runs this file with -s: these lines are its report.
    print("\n%-28s refs %-28s blocks %-28s (repetitions: %d)" % (name, refs, blocks, ran))
    assert sum(refs) < DEBUG_FLAT and sum(blocks) < DEBUG_FLAT, (refs, blocks)


# ---------------------------------------------------------------- the check itself


_KEPT = []


def test_the_check_sees_a_leak_of_one_object_per_call():
    def leaking(calls):
        for _ in range(calls):
            _KEPT.append(gofutures.Future())

    try:
        found = leaks(leaking, CALLS)
    finally:
        _KEPT.clear()
    assert "blocks" in found
    if hasattr(sys, "gettotalrefcount"):
        assert "refs" in found


@pytest.mark.skipif(_MALLOC is None, reason="no mallinfo2 (glibc >= 2.33) here")
def test_the_check_sees_a_c_heap_leak():
    libc = ctypes.CDLL(ctypes.util.find_library("c") or None)
    libc.malloc.restype = ctypes.c_void_p
    libc.malloc.argtypes = [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]
    kept = []

    def leaking(calls):
        kept.extend(libc.malloc(64) for _ in range(calls))

    try:
        found = leaks(leaking, CALLS)
    finally:
        for p in kept:
            libc.free(p)
    assert "malloc bytes" in found


@debug_build
def test_the_debug_check_sees_a_leak_once_a_pass():
    def leaking(calls):
        for i in range(calls):
            f = gofutures.Future()
            if i % 10 == 0:  # the rarest an operation's loop passes: 100 a repetition
                _KEPT.append(f)

    try:
        refs, blocks, ran = settled_deltas(leaking, CALLS)
    finally:
        _KEPT.clear()
    assert sum(refs) >= DEBUG_FLAT and sum(blocks) >= DEBUG_FLAT and ran == DEBUG_MAX
