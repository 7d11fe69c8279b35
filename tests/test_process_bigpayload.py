"""Big arguments, results and exceptions through a process pool (issue 14).

A call whose pickle, or one of whose buffers (bytes, bytearray, memoryview,
pickle.PickleBuffer, a numpy array), reaches THRESHOLD bytes travels in an
anonymous memfd instead of the worker's pipe. What a user relies on:

- every value arrives exact, whatever its size, type and place (positional
  or keyword argument, result, an exception's attribute, nested, in a
  chunked map), with 'spawn' and 'fork' workers and with survive=True;
- a contiguous numpy array arrives as a writable view of the shared pages,
  a result read twice is the same object, and it stays valid after its pool
  shut down; a big array costs each side about its size once (the stdlib's
  pool holds its pickle too);
- nothing leaks: fds, mappings and /dev/shm entries of the parent come back
  after many calls, after a worker was killed holding big buffers, and when
  a future whose result was never read is dropped;
- a payload that cannot be allocated fails its call alone, with MemoryError;
  a worker that dies fails only what it had not answered.

The leak and lifetime checks run in a child interpreter of their own: its
counts are not disturbed by this process's pools, and a view that outlived
its pages would crash that child, not the test run.

Everything the workers unpickle lives at module level here: workers import
this module by name (tests/ is on the sys.path they inherit).
"""

import ctypes
import dataclasses
import gc
import hashlib
import json
import multiprocessing
import os
import pickle
import resource
import signal
import subprocess
import sys
import tempfile
import time
import weakref
from concurrent.futures.process import BrokenProcessPool

import numpy as np
import pytest

import gofutures
from gofutures._bigpayload import THRESHOLD

TIMEOUT = 120
MIB = 1 << 20
SIZES = [0, 1 << 10, THRESHOLD - 1, THRESHOLD, 16 * MIB]
BUFFER_KINDS = ["bytes", "bytearray", "memoryview", "picklebuffer"]
NUMPY_KINDS = ["np_u8", "np_f64", "np_fortran", "np_strided", "np_object", "np_0d"]
# Contiguous arrays: these travel out of band and arrive as views.
VIEW_KINDS = ["np_u8", "np_f64", "np_fortran", "np_0d"]
# Kinds the receiver may get back as another buffer type: only their bytes count.
LOOSE_KINDS = {"memoryview", "picklebuffer"}
DIRECTIONS = ["argument", "keyword", "result", "exception"]
HERE = os.path.dirname(os.path.abspath(__file__))


# ---------------------------------------------------------------- values


def _pattern(size):
    # Not one repeated byte: a boundary off by one would show.
    block = bytes(range(256))
    return (block * (size // 256 + 1))[:size]


def _make(kind, size):
    """A value of kind carrying about size bytes, the same in every process."""
    if kind == "bytes":
        return _pattern(size)
    if kind == "bytearray":
        return bytearray(_pattern(size))
    if kind == "memoryview":
        return memoryview(_pattern(size))
    if kind == "picklebuffer":
        return pickle.PickleBuffer(bytearray(_pattern(size)))
    if kind == "np_u8":
        return np.frombuffer(_pattern(size), np.uint8).copy()
    if kind == "np_f64":
        a = np.arange(size // 8, dtype=np.float64) * 1.5
        return a.reshape(-1, 8) if a.size % 8 == 0 else a
    if kind == "np_fortran":
        a = np.arange(size // 64 * 8, dtype=np.float64) * 0.5
        return np.asfortranarray(a.reshape(8, -1))
    if kind == "np_strided":
        return (np.arange(size // 8 * 2, dtype=np.float64) * 2.5)[::2]
    if kind == "np_object":
        return np.array([_pattern(size), 7, "seven", None], dtype=object)
    if kind == "np_0d":
        return np.array(_pattern(size))  # dtype S<size>: one big element
    raise ValueError(kind)


def _scaled(size, factor):
    return _make("np_f64", size) * factor


def _negate_and_sum(array):
    array *= -1  # an argument arrives writable
    return array.sum()


@dataclasses.dataclass
class Bundle:
    name: str
    blob: bytes
    array: object
    count: int


def _nested(shape, size):
    blob, array = _pattern(size), _make("np_f64", size)
    if shape == "tuple":
        return (blob, 3, array, "small")
    if shape == "dict":
        return {"blob": blob, "array": array, "n": 5, "inner": {"more": bytearray(blob)}}
    if shape == "dataclass":
        return Bundle("b", blob, array, 9)
    if shape == "many_small":  # a big pickle made of buffers that are each below THRESHOLD
        return [_pattern(THRESHOLD // 8 + i) for i in range(12)]
    raise ValueError(shape)


def _digest(data):
    view = memoryview(data)
    return view.nbytes, hashlib.sha256(view).hexdigest()


def _describe(x):
    """What x is, in full but short: its type and shape, its bytes' digest."""
    if isinstance(x, np.ndarray):
        if x.dtype.hasobject:
            content = [_describe(item) for item in x.ravel().tolist()]
        else:
            content = _digest(x.tobytes())
        flags = (x.flags.c_contiguous, x.flags.f_contiguous, x.flags.writeable)
        return ["ndarray", x.dtype.str, list(x.shape), *flags, content]
    if isinstance(x, (bytes, bytearray)):
        return [type(x).__name__, *_digest(x)]
    if isinstance(x, (memoryview, pickle.PickleBuffer)):
        return ["memoryview", *_digest(x)]
    if isinstance(x, (tuple, list)):
        return [type(x).__name__, [_describe(item) for item in x]]
    if isinstance(x, dict):
        return ["dict", [[k, _describe(v)] for k, v in x.items()]]
    if dataclasses.is_dataclass(x):
        return [type(x).__name__, _describe(dataclasses.astuple(x))]
    return ["value", repr(x)]


def _local_round_trip(x):
    """What the stdlib's pickle makes of x in this process (memoryview has no
    pickle: its bytes)."""
    if isinstance(x, memoryview):
        return bytes(x)
    return pickle.loads(pickle.dumps(x, 5))


def _expected(kind, size):
    return _describe(_local_round_trip(_make(kind, size)))


def _assert_same(got, expected, kind):
    if kind in LOOSE_KINDS:  # arrives as bytes, bytearray or a memoryview: the bytes count
        got, expected = got[1:], expected[1:]
    assert got == expected


# ---------------------------------------------------------------- in the workers


def _describe_keyword(*, value):
    return _describe(value)


class BigError(Exception):
    """Raised in a worker with a big payload attribute."""

    def __init__(self, payload):
        super().__init__("a big error")
        self.payload = payload


def _raise_big(kind, size):
    raise BigError(_make(kind, size))


def _echo(x):
    return x


def _length(x):
    return len(x)


def _mapping_of(address):
    """The path of the mapping holding address in this process ('' if anonymous)."""
    with open("/proc/self/maps") as f:
        for line in f:
            fields = line.split(maxsplit=5)
            low, high = (int(n, 16) for n in fields[0].split("-"))
            if low <= address < high:
                return fields[5].strip() if len(fields) > 5 else ""
    return None


def _where(array):
    """Whether array (as it arrived) is writable, and the mapping it lives in."""
    return array.flags.writeable, _mapping_of(array.__array_interface__["data"][0])


def _status_kib(field):
    """A figure of /proc/self/status in KiB: VmRSS, VmHWM (peak), VmSize."""
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(field + ":"))


def _limit_address_space(headroom):
    """Initializer: this process may map only headroom bytes more than it has."""
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    resource.setrlimit(resource.RLIMIT_AS, (_status_kib("VmSize") * 1024 + headroom, hard))


def _peak_with(array):
    """This worker's peak resident KiB, array (an argument) received and read."""
    array.sum()
    return _status_kib("VmHWM")


def _ones(megabytes):
    return np.ones(megabytes * MIB // 8)


def _refuse_load(payload):
    raise RuntimeError("refusing to be unpickled (%d bytes)" % len(payload))


class Refusing:
    """Pickles with a big payload, but cannot be unpickled anywhere."""

    def __init__(self, payload):
        self.payload = payload

    def __reduce__(self):
        return _refuse_load, (self.payload,)


def _make_refusing(size):
    return Refusing(_pattern(size))


def _wait_for_file(path):
    deadline = time.monotonic() + TIMEOUT
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            raise TimeoutError(path)
        time.sleep(0.01)


def _die():
    os.kill(os.getpid(), signal.SIGKILL)


def _hold(value, flag_path):
    """Keep value (a big argument) until killed; flag_path says who holds it."""
    with open(flag_path + ".tmp", "w") as f:
        f.write(str(os.getpid()))
    os.rename(flag_path + ".tmp", flag_path)
    time.sleep(120)
    return len(value)


# ---------------------------------------------------------------- pools


@pytest.fixture(scope="module", params=["spawn", "fork"])
def pool(request):
    with gofutures.ProcessPoolExecutor(2, mp_context=multiprocessing.get_context(request.param)) as ex:
        yield ex


@pytest.fixture(scope="module")
def survive_pool():
    with gofutures.ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn"), survive=True) as ex:
        yield ex


def _travel(pool, direction, value_or_spec):
    """The description of a value after it went through pool in direction:
    for argument and keyword value_or_spec is the value, for result and
    exception (kind, size), made in the worker."""
    if direction == "argument":
        return pool.submit(_describe, value_or_spec).result(timeout=TIMEOUT)
    if direction == "keyword":
        return pool.submit(_describe_keyword, value=value_or_spec).result(timeout=TIMEOUT)
    if direction == "result":
        return _describe(pool.submit(_make, *value_or_spec).result(timeout=TIMEOUT))
    if direction == "exception":
        exc = pool.submit(_raise_big, *value_or_spec).exception(timeout=TIMEOUT)
        assert isinstance(exc, BigError), repr(exc)
        return _describe(exc.payload)
    raise ValueError(direction)


def _check_travel(pool, direction, kind, size):
    spec = (kind, size)
    sent = _make(kind, size) if direction in ("argument", "keyword") else spec
    _assert_same(_travel(pool, direction, sent), _expected(kind, size), kind)


# ---------------------------------------------------------------- exact round trips


@pytest.mark.parametrize("direction", DIRECTIONS)
@pytest.mark.parametrize("size", SIZES, ids=str)
@pytest.mark.parametrize("kind", BUFFER_KINDS)
def test_buffer_travels_exact(pool, kind, size, direction):
    _check_travel(pool, direction, kind, size)


@pytest.mark.parametrize("direction", DIRECTIONS)
@pytest.mark.parametrize("size", SIZES, ids=str)
@pytest.mark.parametrize("kind", NUMPY_KINDS)
def test_numpy_array_travels_exact(pool, kind, size, direction):
    _check_travel(pool, direction, kind, size)


# One numpy case at 256 MiB keeps the suite's time in check.
@pytest.mark.parametrize(("kind", "direction"), [("bytes", "argument"), ("bytes", "result"), ("np_f64", "result")])
def test_256_mib_travels_exact(pool, kind, direction):
    _check_travel(pool, direction, kind, 256 * MIB)


@pytest.mark.parametrize("direction", ["argument", "result"])
@pytest.mark.parametrize("size", [THRESHOLD, 16 * MIB], ids=str)
@pytest.mark.parametrize("shape", ["tuple", "dict", "dataclass", "many_small"])
def test_nested_values_travel_exact(pool, shape, size, direction):
    value = _nested(shape, size)
    got = pool.submit(_describe, value) if direction == "argument" else pool.submit(_nested, shape, size)
    got = got.result(timeout=TIMEOUT)
    if direction == "result":
        got = _describe(got)
    assert got == _describe(_local_round_trip(value))


def test_chunked_map_mixes_big_and_small_items(pool):
    specs = [("bytes", 3), ("np_f64", 16 * MIB), ("bytes", THRESHOLD), ("np_u8", 0), ("bytearray", THRESHOLD - 1)]
    specs += [("np_fortran", 5 * MIB), ("bytes", 9 * MIB), ("np_0d", 10)] * 2
    values = [_make(kind, size) for kind, size in specs]
    expected = [_describe(_local_round_trip(v)) for v in values]
    # Both ways big: the arguments, and the results that echo them.
    echoed = pool.map(_echo, values, chunksize=3, timeout=TIMEOUT)
    assert [_describe(v) for v in echoed] == expected
    described = pool.map(_describe, values, chunksize=4, timeout=TIMEOUT)
    assert list(described) == expected


SURVIVE_CASES = [
    ("argument", "bytes", 16 * MIB),
    ("keyword", "np_f64", THRESHOLD),
    ("result", "np_f64", 16 * MIB),
    ("result", "np_fortran", THRESHOLD),
    ("result", "bytearray", 16 * MIB),
    ("exception", "np_u8", 16 * MIB),
    ("argument", "np_object", THRESHOLD),
]


@pytest.mark.parametrize(("direction", "kind", "size"), SURVIVE_CASES, ids=str)
def test_survive_pool_gives_the_same_results(survive_pool, direction, kind, size):
    _check_travel(survive_pool, direction, kind, size)


def test_survive_pool_chunked_map(survive_pool):
    values = [_pattern(n) for n in (1, 16 * MIB, THRESHOLD, 7)] * 2
    assert list(survive_pool.map(_length, values, chunksize=3, timeout=TIMEOUT)) == [len(v) for v in values]


# ---------------------------------------------------------------- numpy views


@pytest.mark.parametrize("size", [THRESHOLD, 16 * MIB], ids=str)
@pytest.mark.parametrize("kind", VIEW_KINDS)
def test_numpy_argument_arrives_writable(pool, kind, size):
    writable, _ = pool.submit(_where, _make(kind, size)).result(timeout=TIMEOUT)
    assert writable


@pytest.mark.parametrize("size", [THRESHOLD, 16 * MIB], ids=str)
@pytest.mark.parametrize("kind", VIEW_KINDS)
def test_numpy_result_is_writable_and_one_object(pool, kind, size):
    f = pool.submit(_make, kind, size)
    result = f.result(timeout=TIMEOUT)
    assert f.result() is result
    assert _where(result)[0]
    result.reshape(-1)[:1] = result.reshape(-1)[-1:]  # the memory is ours to write
    assert f.result() is result


def test_a_big_result_is_not_changed_by_the_next_ones(pool):
    # Each side writes its next big payload into the memory of one already
    # read (_bigpayload): what was read must be the reader's own copy.
    first = pool.submit(_make, "np_f64", 16 * MIB).result(timeout=TIMEOUT)
    kept = first.copy()
    for _ in range(4):  # the worker's spare memory goes round
        later = pool.submit(_scaled, 16 * MIB, 3.0).result(timeout=TIMEOUT)
        assert np.array_equal(later, 3.0 * kept)
    assert np.array_equal(first, kept)
    raw = pool.submit(_make, "bytes", 16 * MIB).result(timeout=TIMEOUT)
    pool.submit(_make, "bytes", 16 * MIB + 1).result(timeout=TIMEOUT)
    assert raw == _make("bytes", 16 * MIB)


def test_a_big_argument_is_the_workers_own(pool):
    # The worker may write into an array it was sent; the caller's is not
    # touched, and the next call's argument is not either.
    array = _make("np_f64", 16 * MIB)
    assert pool.submit(_negate_and_sum, array).result(timeout=TIMEOUT) == -array.sum()
    assert np.array_equal(array, _make("np_f64", 16 * MIB))
    assert pool.submit(_negate_and_sum, array).result(timeout=TIMEOUT) == -array.sum()


@pytest.mark.parametrize("survive", [False, True], ids=["default", "survive"])
@pytest.mark.parametrize("context", ["spawn", "fork"])
def test_big_result_outlives_its_worker_dying_at_the_next_call(context, survive):
    # The worker answers, then takes the next call at once and dies in it:
    # the answer it gave is the caller's all the same, as with the stdlib.
    ctx = multiprocessing.get_context(context)
    for _ in range(8 if survive else 2):
        with gofutures.ProcessPoolExecutor(1, mp_context=ctx, survive=survive) as ex:
            answered = ex.submit(_make, "np_f64", 16 * MIB)
            dying = ex.submit(_die)
            assert isinstance(dying.exception(timeout=TIMEOUT), BrokenProcessPool)
            assert _describe(answered.result(timeout=TIMEOUT)) == _expected("np_f64", 16 * MIB)


# ---------------------------------------------------------------- memory that cannot be had


@pytest.fixture(params=["spawn", "fork"])
def limited_pool(request):
    ctx = multiprocessing.get_context(request.param)
    ex = gofutures.ProcessPoolExecutor(1, mp_context=ctx, initializer=_limit_address_space, initargs=(64 * MIB,))
    yield ex
    ex.shutdown(wait=True, cancel_futures=True)


def test_argument_too_big_for_the_worker_fails_its_call_with_memory_error(limited_pool):
    assert limited_pool.submit(_length, b"warm").result(timeout=TIMEOUT) == 4
    exc = limited_pool.submit(_length, _pattern(256 * MIB)).exception(timeout=TIMEOUT)
    assert isinstance(exc, MemoryError), repr(exc)
    assert limited_pool.submit(_length, b"after").result(timeout=TIMEOUT) == 5
    assert limited_pool.submit(_length, _pattern(THRESHOLD)).result(timeout=TIMEOUT) == THRESHOLD


def test_result_too_big_to_send_fails_only_its_call(limited_pool):
    # 48 MiB fit in the worker, a second copy of them does not: sent whole
    # or failing with MemoryError, the worker and the pool go on.
    f = limited_pool.submit(_ones, 48)
    exc = f.exception(timeout=TIMEOUT)
    if exc is None:
        assert f.result().shape == (48 * MIB // 8,) and bool((f.result() == 1).all())
    else:
        assert isinstance(exc, MemoryError), repr(exc)
    assert limited_pool.submit(_length, b"after").result(timeout=TIMEOUT) == 5


# ---------------------------------------------------------------- leaks and lifetimes (in a child interpreter)


def _counts():
    """This process's open fds, mappings, resident KiB, and /dev/shm names
    (multiprocessing's semaphores, sem.*, come and go with any process)."""
    with open("/proc/self/maps") as f:
        maps = sum(1 for _ in f)
    shm = sorted(n for n in os.listdir("/dev/shm") if not n.startswith("sem."))
    return {
        "fds": len(os.listdir("/proc/self/fd")),
        "maps": maps,
        "threads": len(os.listdir("/proc/self/task")),
        "rss_kib": _status_kib("VmRSS"),
        "shm": shm,
    }


def _settled_counts():
    gc.collect()
    # What glibc keeps of memory Python freed (a heap top of up to twice its
    # mmap threshold, which big bytes values raise) is not gofutures'.
    try:
        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError):
        pass
    return _counts()


def _warm_up(ctx):
    """Use and shut down one pool with big calls both ways, so that what the
    runtime makes once (threads, its poller, imports) exists before counting."""
    with gofutures.ProcessPoolExecutor(2, mp_context=ctx) as ex:
        for f in [ex.submit(_echo, _make("np_f64", MIB)) for _ in range(4)]:
            f.result(timeout=TIMEOUT)


def _wait_done(f):
    # Polling done() leaves the future unobserved (no waiter, no callback).
    deadline = time.monotonic() + TIMEOUT
    while not f.done():
        assert time.monotonic() < deadline, "the call did not finish"
        time.sleep(0.01)


def _worker_counts(ex, rounds=40):
    """{pid: (fds, maps)} of the pool's workers, as they see themselves."""
    seen = {}
    for _ in range(rounds):
        pid, counts = ex.submit(_pid_and_counts).result(timeout=TIMEOUT)
        seen[pid] = (counts["fds"], counts["maps"])
    return seen


def _pid_and_counts():
    time.sleep(0.005)  # let the other worker take some
    return os.getpid(), _counts()


def many_calls(ctx, calls):
    """calls calls with 512 KiB arguments and results through a fresh pool;
    its workers' counts before and after."""
    data = _pattern(512 << 10)
    with gofutures.ProcessPoolExecutor(2, mp_context=ctx) as ex:
        for result in ex.map(_echo, [data] * 20):
            assert result == data
        workers_before = _worker_counts(ex)
        for result in ex.map(_echo, [data] * calls):
            assert result == data
        workers_after = _worker_counts(ex)
        del result
    return {"workers_before": workers_before, "workers_after": workers_after}


def child_answers_given_back(context):
    """Counts before and after a pool that answered 48 results of 4 to 16
    MiB was shut down: half of them read while it worked, half after (all
    dropped then)."""
    ctx = multiprocessing.get_context(context)
    _warm_up(ctx)
    before = _settled_counts()
    sizes = [(4 + 4 * (i % 4)) * MIB for i in range(48)]
    with gofutures.ProcessPoolExecutor(2, mp_context=ctx) as ex:
        futures = [ex.submit(_make, "bytes", size) for size in sizes]
        assert [len(f.result(timeout=TIMEOUT)) for f in futures[:24]] == sizes[:24]
    assert [len(f.result(timeout=TIMEOUT)) for f in futures[24:]] == sizes[24:]
    del futures
    return {"before": before, "after": _settled_counts()}


def child_counted(scenario, context, *args):
    """scenario(ctx, *args) run twice, counted around the second run: what
    the first made once (threads, allocator arenas) is no leak; a leak per
    call or per worker shows again. Its outcome and the counts."""
    ctx = multiprocessing.get_context(context)
    _warm_up(ctx)
    globals()[scenario](ctx, *args)
    before = _settled_counts()
    outcome = globals()[scenario](ctx, *args)
    return {"before": before, "after": _settled_counts(), "outcome": outcome}


def killed_holding(ctx, survive, flag_dir):
    """A worker SIGKILLed while it holds a big argument; then one killed after
    returning a big result the parent has not read yet, while it runs the
    next call. The calls' exceptions."""
    flag_dir = tempfile.mkdtemp(dir=flag_dir)
    errors = []

    def kill_holder(ex, value, name):
        flag = os.path.join(flag_dir, name)
        f = ex.submit(_hold, value, flag)
        deadline = time.monotonic() + TIMEOUT
        while not os.path.exists(flag):
            assert time.monotonic() < deadline, "the holding call did not start"
            time.sleep(0.01)
        with open(flag) as fl:
            os.kill(int(fl.read()), signal.SIGKILL)
        exc = f.exception(timeout=TIMEOUT)
        assert isinstance(exc, BrokenProcessPool), repr(exc)
        errors.append(type(exc).__name__)

    ex = gofutures.ProcessPoolExecutor(1, mp_context=ctx, survive=survive)
    kill_holder(ex, _make("np_f64", 64 * MIB), "arg")
    if not survive:
        ex.shutdown()
        ex = gofutures.ProcessPoolExecutor(1, mp_context=ctx)
    read_later = ex.submit(_make, "np_f64", 32 * MIB)
    never_read = ex.submit(_make, "bytes", 32 * MIB)
    _wait_done(read_later)
    _wait_done(never_read)
    kill_holder(ex, _pattern(THRESHOLD), "next")
    assert _describe(read_later.result(timeout=TIMEOUT)) == _expected("np_f64", 32 * MIB)
    if survive:
        assert ex.submit(_length, _pattern(THRESHOLD)).result(timeout=TIMEOUT) == THRESHOLD
    ex.shutdown()
    return errors


def failed_and_cancelled(ctx, flag_dir):
    """Big calls that end without a normal result: an argument or a result
    that cannot be unpickled, calls cancelled while queued, a shutdown that
    cancels queued big calls. Their outcomes."""
    flag_dir = tempfile.mkdtemp(dir=flag_dir)
    outcomes = {}

    def queue_behind_a_blocked_worker(ex, name):
        flag = os.path.join(flag_dir, name)
        blocker = ex.submit(_wait_for_file, flag)
        return flag, blocker, [ex.submit(_length, _pattern(MIB)) for _ in range(20)]

    with gofutures.ProcessPoolExecutor(1, mp_context=ctx) as ex:
        exc = ex.submit(_echo, Refusing(_pattern(4 * MIB))).exception(timeout=TIMEOUT)
        outcomes["argument refused"] = type(exc).__name__
        outcomes["result refused"] = type(ex.submit(_make_refusing, 4 * MIB).exception(timeout=TIMEOUT)).__name__
        flag, blocker, queued = queue_behind_a_blocked_worker(ex, "cancel")
        outcomes["cancelled"] = sum(f.cancel() for f in queued)
        open(flag, "w").close()
        blocker.result(timeout=TIMEOUT)
        outcomes["after"] = ex.submit(_length, _pattern(THRESHOLD)).result(timeout=TIMEOUT)
    ex = gofutures.ProcessPoolExecutor(1, mp_context=ctx)
    flag, blocker, queued = queue_behind_a_blocked_worker(ex, "shutdown")
    ex.shutdown(wait=False, cancel_futures=True)
    open(flag, "w").close()
    ex.shutdown(wait=True)
    outcomes["shutdown cancelled"] = sum(f.cancelled() for f in queued)
    return outcomes


def result_too_big_here(ctx):
    """Big results (numpy, bytes) that this process has no address space
    left to hold, then a small call: what each call ended with."""
    outcomes = []
    with gofutures.ProcessPoolExecutor(1, mp_context=ctx) as ex:
        ex.submit(_length, b"warm").result(timeout=TIMEOUT)
        limit = resource.getrlimit(resource.RLIMIT_AS)
        _limit_address_space(128 * MIB)
        try:
            for kind in ("np_f64", "bytes"):
                exc = ex.submit(_make, kind, 256 * MIB).exception(timeout=TIMEOUT)
                outcomes.append(repr(exc) if not isinstance(exc, MemoryError) else "MemoryError")
            outcomes.append(ex.submit(_length, b"after").result(timeout=TIMEOUT))
        finally:
            resource.setrlimit(resource.RLIMIT_AS, limit)
    return outcomes


def child_peaks_of_a_big_array(context, size):
    """KiB each side's resident set grew by, at its peak, for one numpy array
    of size bytes: an argument in a fresh worker, a result here (every page
    of each read)."""
    ctx = multiprocessing.get_context(context)
    with gofutures.ProcessPoolExecutor(1, mp_context=ctx) as ex:  # the result first: VmHWM only grows
        ex.submit(_make, "np_f64", MIB).result(timeout=TIMEOUT)
        gc.collect()
        base = _status_kib("VmRSS")
        if _status_kib("VmHWM") > base + size // 4096:
            return {"error": "this process peaked before the call: %d KiB" % _status_kib("VmHWM")}
        ex.submit(_make, "np_f64", size).result(timeout=TIMEOUT).sum()
        parent = _status_kib("VmHWM") - base
    with gofutures.ProcessPoolExecutor(1, mp_context=ctx) as ex:
        base = ex.submit(_status_kib, "VmRSS").result(timeout=TIMEOUT)
        worker = ex.submit(_peak_with, _make("np_f64", size)).result(timeout=TIMEOUT) - base
    return {"worker": worker, "parent": parent}


def child_unread_result_released(context):
    """A 64 MiB result never read, read, or observed by a callback, then its
    future dropped (the pool idle, nothing else submitted): counts before,
    while held, and after, for each, and whether the future was freed."""
    ctx = multiprocessing.get_context(context)
    _warm_up(ctx)
    report = {}
    with gofutures.ProcessPoolExecutor(1, mp_context=ctx) as ex:
        ex.submit(_echo, _make("np_f64", MIB)).result(timeout=TIMEOUT)
        for how in ("unread", "read", "observed"):
            before = _settled_counts()
            f = ex.submit(_make, "np_f64", 64 * MIB)
            if how == "observed":
                f.add_done_callback(lambda f: None)
            _wait_done(f)
            if how == "read":
                f.result(timeout=TIMEOUT).sum()  # touch every page
            held = _counts()
            alive = weakref.ref(f)
            del f
            after = _settled_counts()
            report[how] = {"before": before, "held": held, "after": after, "freed": alive() is None}
    return report


def child_results_outlive_the_pool(context):
    """Results (one read, one not yet) stay valid and the same object after
    their pool shut down and a gc.collect()."""
    ctx = multiprocessing.get_context(context)
    with gofutures.ProcessPoolExecutor(2, mp_context=ctx) as ex:
        read = ex.submit(_make, "np_f64", 16 * MIB)
        unread = ex.submit(_make, "np_fortran", 16 * MIB)
        first = read.result(timeout=TIMEOUT)
        _wait_done(unread)
    gc.collect()
    assert read.result() is first
    assert _describe(first) == _expected("np_f64", 16 * MIB)
    later = unread.result()
    gc.collect()
    assert unread.result() is later
    assert _describe(later) == _expected("np_fortran", 16 * MIB)
    later[0, 0] = -1.0  # still writable
    del first, read
    gc.collect()
    assert _describe(unread.result())[-1] == _describe(later)[-1]
    return {"ok": True}


def _in_child(subprocess_env, name, *args):
    """name(*args) run in a child interpreter; what it returned (JSON)."""
    env = dict(subprocess_env, PYTHONPATH=os.pathsep.join([HERE, subprocess_env["PYTHONPATH"]]))
    code = "import json, sys, %s as m; print(json.dumps(m.%s(*json.loads(sys.argv[1]))))" % (__name__, name)
    proc = subprocess.run(
        [sys.executable, "-X", "faulthandler", "-c", code, json.dumps(args)],
        capture_output=True,
        text=True,
        env=env,
        cwd=HERE,
        timeout=300,
    )
    assert proc.returncode == 0, "child exited with %d:\n%s" % (proc.returncode, proc.stderr[-4000:])
    return json.loads(proc.stdout.strip().splitlines()[-1])


# What the pool machinery may still hold after a shutdown (a pipe or two, a
# poller, an arena): a leak per call or per worker shows far beyond these.
FD_SLACK, MAPS_SLACK = 3, 8
# A thread the Go runtime adds when the machine is loaded (it keeps idle
# ones) brings its stack and guard page, and glibc may give it an arena of
# its own (heap and reserve) when it allocates an answer's memory: bounded
# by the runtime's thread count, not by calls.
MAPS_PER_NEW_THREAD = 4


def _assert_came_back(before, after):
    assert after["fds"] <= before["fds"] + FD_SLACK, (before, after)
    new_threads = max(0, after["threads"] - before["threads"])
    assert after["maps"] <= before["maps"] + MAPS_SLACK + MAPS_PER_NEW_THREAD * new_threads, (before, after)
    assert set(after["shm"]) <= set(before["shm"]), (before["shm"], after["shm"])


@pytest.mark.parametrize("context", ["spawn", "fork"])
def test_many_big_calls_leak_nothing(subprocess_env, context):
    # Counted around a second pool of the same calls: the runtime's threads
    # and allocator arenas the first one made are no leak; a leak per call
    # (1,000 of them) or per pool shows again.
    report = _in_child(subprocess_env, "child_counted", "many_calls", context, 1000)
    _assert_came_back(report["before"], report["after"])
    workers = report["outcome"]
    for pid, (fds, maps) in workers["workers_after"].items():
        if pid in workers["workers_before"]:
            fds0, maps0 = workers["workers_before"][pid]
            assert fds <= fds0 + FD_SLACK and maps <= maps0 + MAPS_SLACK, report


@pytest.mark.parametrize("context", ["spawn", "fork"])
def test_answers_memory_is_given_back_when_the_pool_is_done(subprocess_env, context):
    report = _in_child(subprocess_env, "child_answers_given_back", context)
    assert report["after"]["rss_kib"] <= report["before"]["rss_kib"] + 16 * 1024, report


@pytest.mark.parametrize("survive", [False, True], ids=["default", "survive"])
@pytest.mark.parametrize("context", ["spawn", "fork"])
def test_worker_killed_holding_big_buffers_leaks_nothing(subprocess_env, context, survive):
    with tempfile.TemporaryDirectory() as flags:
        report = _in_child(subprocess_env, "child_counted", "killed_holding", context, survive, flags)
    expected = "WorkerDiedError" if survive else "BrokenProcessPool"
    assert report["outcome"] == [expected, expected]
    _assert_came_back(report["before"], report["after"])


@pytest.mark.parametrize("context", ["spawn", "fork"])
def test_big_calls_that_fail_or_are_cancelled_leak_nothing(subprocess_env, context):
    with tempfile.TemporaryDirectory() as flags:
        report = _in_child(subprocess_env, "child_counted", "failed_and_cancelled", context, flags)
    outcomes = report["outcome"]
    # Only the call whose pickle cannot be loaded fails, as gofutures documents.
    assert outcomes["argument refused"] == outcomes["result refused"] == "BrokenProcessPool", outcomes
    assert outcomes["after"] == THRESHOLD
    _assert_came_back(report["before"], report["after"])


@pytest.mark.parametrize("context", ["spawn", "fork"])
def test_result_too_big_for_this_process_fails_its_call_with_memory_error(subprocess_env, context):
    report = _in_child(subprocess_env, "child_counted", "result_too_big_here", context)
    assert report["outcome"] == ["MemoryError", "MemoryError", 5]
    _assert_came_back(report["before"], report["after"])


@pytest.mark.parametrize("context", ["spawn", "fork"])
def test_a_big_array_costs_each_side_about_its_size_once(subprocess_env, context):
    # The stdlib's pool holds the pickle and the array together: twice.
    size = 256 * MIB
    peaks = _in_child(subprocess_env, "child_peaks_of_a_big_array", context, size)
    assert "error" not in peaks, peaks
    assert peaks["worker"] < 1.4 * size // 1024, peaks
    assert peaks["parent"] < 1.4 * size // 1024, peaks


@pytest.mark.parametrize("context", ["spawn", "fork"])
def test_dropped_future_releases_its_big_result(subprocess_env, context):
    report = _in_child(subprocess_env, "child_unread_result_released", context)
    for how, r in report.items():
        assert r["freed"], ("nothing of the user's holds the future, yet it lives on", how, report)
        _assert_came_back(r["before"], r["after"])
        # 64 MiB held, then given back (16 MiB of slack for the allocator).
        assert r["after"]["rss_kib"] <= r["before"]["rss_kib"] + 16 * 1024, (how, report)


@pytest.mark.parametrize("context", ["spawn", "fork"])
def test_results_stay_valid_after_the_pool_shut_down(subprocess_env, context):
    assert _in_child(subprocess_env, "child_results_outlive_the_pool", context) == {"ok": True}
