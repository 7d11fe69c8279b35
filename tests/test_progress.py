"""Progress bars: map(progress=...), as_completed(progress=...) and
gofutures.progress(), drawn by tqdm (an optional dependency).

The bars are real tqdm.auto bars of a recording subclass, so the tests see
how far each bar got, its total, and whether it was closed.
"""

import subprocess
import sys
import threading
import time

import pytest

import gofutures

tqdm_auto = pytest.importorskip("tqdm.auto", reason="tqdm not installed: pip install 'gofutures[progress]'")

TIMEOUT = 10


@pytest.fixture
def bars(monkeypatch):
    """Every bar gofutures makes, as (bar); each records its close()."""
    made = []

    class Recording(tqdm_auto.tqdm):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.closed = False
            made.append(self)

        def close(self):
            self.closed = True
            super().close()

    monkeypatch.setattr(tqdm_auto, "tqdm", Recording)
    return made


def _state(bar):
    return bar.n, bar.total, bar.closed


def _fail_on_3(n):
    if n == 3:
        raise ValueError("item 3 is bad")
    return n


def _sleep_then(n):
    time.sleep(n)
    return n


@pytest.fixture(scope="module")
def process_pool():
    with gofutures.ProcessPoolExecutor(max_workers=2) as ex:
        yield ex


# ------------------------------------------------------------ map


def test_thread_map_bar_reaches_total(bars):
    with gofutures.ThreadPoolExecutor(4) as ex:
        assert list(ex.map(abs, range(-50, 0), progress=True)) == list(range(50, 0, -1))
    assert [_state(b) for b in bars] == [(50, 50, True)]


def test_thread_map_several_iterables_counts_shortest(bars):
    with gofutures.ThreadPoolExecutor(2) as ex:
        assert list(ex.map(pow, [2, 3, 4], range(10), progress=True)) == [1, 3, 16]
    assert [_state(b) for b in bars] == [(3, 3, True)]


def test_thread_map_buffersize(bars):
    with gofutures.ThreadPoolExecutor(2) as ex:
        assert list(ex.map(abs, range(20), buffersize=3, progress=True)) == list(range(20))
    assert [_state(b) for b in bars] == [(20, 20, True)]


@pytest.mark.parametrize("chunksize", [1, 7])
def test_process_map_bar_counts_items(bars, process_pool, chunksize):
    got = list(process_pool.map(abs, range(-30, 0), chunksize=chunksize, progress=True))
    assert got == list(range(30, 0, -1))
    # One tick per item, whatever the chunksize.
    assert [_state(b) for b in bars] == [(30, 30, True)]


def test_process_map_bad_chunksize_leaves_no_bar(bars, process_pool):
    with pytest.raises(ValueError, match="chunksize"):
        process_pool.map(abs, range(3), chunksize=0, progress=True)
    assert bars == []


def test_generator_input_has_unknown_total(bars):
    with gofutures.ThreadPoolExecutor(2) as ex:
        assert sum(ex.map(abs, (n for n in range(40)), progress=True)) == sum(range(40))
    assert [_state(b) for b in bars] == [(40, None, True)]


def test_map_exception_propagates_and_bar_closes(bars):
    with gofutures.ThreadPoolExecutor(2) as ex:
        results = ex.map(_fail_on_3, range(10), progress=True)
        got = []
        with pytest.raises(ValueError, match="item 3 is bad"):
            for r in results:
                got.append(r)
    assert got == [0, 1, 2]
    assert [_state(b) for b in bars] == [(3, 10, True)]


def _wait_gate(gate, n):
    # n == 0 returns at once; any other call waits for the gate.
    if n:
        gate.wait(TIMEOUT)
    return n


# map's and as_completed's timeout counts from the call and covers the call
# that must finish before it, which may take long to start on a busy
# machine: a deadline of 2 s for a call that returns at once.
QUICK_THEN_TIMEOUT = 2


def test_map_timeout_closes_bar(bars, gate):
    with gofutures.ThreadPoolExecutor(2) as ex:
        results = ex.map(_wait_gate, [gate] * 3, [0, 1, 1], timeout=QUICK_THEN_TIMEOUT, progress=True)
        assert next(results) == 0
        with pytest.raises(gofutures.TimeoutError):
            next(results)
        gate.set()
    assert [_state(b) for b in bars] == [(1, 3, True)]


def test_closing_map_result_closes_bar_and_cancels(bars):
    with gofutures.ThreadPoolExecutor(1) as ex:
        started = []

        def started_then_sleep(n):
            started.append(n)
            return _sleep_then(n)

        results = ex.map(started_then_sleep, [0, 0.2] + [5] * 5, progress=True)
        assert next(results) == 0
        # The worker runs the 0.2 s call (taken from the queue is not yet
        # running: a cancel still wins until it starts).
        while 0.2 not in started:
            time.sleep(0.001)
        results.close()  # as closing the plain map iterator: the queued calls are cancelled
    assert ex.stats()["cancelled"] == 5  # (counted as the worker skips them)
    assert bars[0].closed and bars[0].n == 1


def test_progress_dict_is_tqdm_kwargs(bars):
    with gofutures.ThreadPoolExecutor(2) as ex:
        list(ex.map(abs, range(5), progress={"desc": "squares", "unit": "sq", "total": 99}))
    assert [(b.desc, b.unit, b.total, b.n) for b in bars] == [("squares", "sq", 99, 5)]


def test_progress_instance_is_advanced_and_left_open(bars):
    own = tqdm_auto.tqdm(total=8, desc="mine")
    try:
        with gofutures.ThreadPoolExecutor(2) as ex:
            list(ex.map(abs, range(3), progress=own))
            list(ex.map(abs, range(5), progress=own))
        assert own.n == 8 and not own.closed
        assert bars == [own]  # gofutures made none of its own
    finally:
        own.close()


def test_progress_class_is_instantiated(bars):
    class Text(tqdm_auto.tqdm):  # e.g. tqdm.tqdm for a text bar in a notebook
        pass

    with gofutures.ThreadPoolExecutor(2) as ex:
        assert list(ex.map(abs, range(4), progress=Text)) == [0, 1, 2, 3]
    assert [(type(b), b.n, b.total, b.closed) for b in bars] == [(Text, 4, 4, True)]


# ------------------------------------------------------------ as_completed


def test_as_completed_bar_reaches_total(bars):
    with gofutures.ThreadPoolExecutor(4) as ex:
        fs = [ex.submit(_sleep_then, 0.01 * (n % 3)) for n in range(12)]
        assert set(gofutures.as_completed(fs + fs[:3], progress=True)) == set(fs)
    assert [_state(b) for b in bars] == [(12, 12, True)]


def test_as_completed_timeout_closes_bar(bars, gate):
    with gofutures.ThreadPoolExecutor(2) as ex:
        fs = [ex.submit(_wait_gate, gate, 0), ex.submit(_wait_gate, gate, 1)]
        seen = []
        with pytest.raises(gofutures.TimeoutError):
            for f in gofutures.as_completed(fs, timeout=QUICK_THEN_TIMEOUT, progress=True):
                seen.append(f)
        gate.set()
    assert seen == fs[:1]
    assert [_state(b) for b in bars] == [(1, 2, True)]


# ------------------------------------------------------------ gofutures.progress


def test_progress_over_futures_yields_as_completed(bars):
    # Each call may finish only once the one before it was yielded: the
    # order of completion is b, c, a whatever the machine's load.
    gates = {name: threading.Event() for name in "abc"}
    release = iter("bca")
    with gofutures.ThreadPoolExecutor(3) as ex:
        fs = {ex.submit(gates[name].wait, TIMEOUT): name for name in "abc"}
        gates[next(release)].set()
        order = []
        for f in gofutures.progress(fs, desc="urls"):
            order.append(fs[f])
            name = next(release, None)
            if name is not None:
                gates[name].set()
    assert order == ["b", "c", "a"]
    assert [(b.desc, b.n, b.total, b.closed) for b in bars] == [("urls", 3, 3, True)]


def test_progress_around_as_completed_and_map(bars):
    with gofutures.ThreadPoolExecutor(2) as ex:
        fs = [ex.submit(abs, n) for n in range(6)]
        assert len(list(gofutures.progress(gofutures.as_completed(fs), total=len(fs)))) == 6
        assert list(gofutures.progress(ex.map(abs, range(4)))) == [0, 1, 2, 3]
    assert [_state(b) for b in bars] == [(6, 6, True), (4, None, True)]


def test_progress_over_plain_iterables(bars):
    assert list(gofutures.progress([3, 1, 2])) == [3, 1, 2]  # order kept
    assert list(gofutures.progress(n for n in range(4))) == [0, 1, 2, 3]
    assert list(gofutures.progress(iter(range(2)), total=2, unit="x")) == [0, 1]
    assert [_state(b) for b in bars] == [(3, 3, True), (4, None, True), (2, 2, True)]
    assert bars[2].unit == "x"


def test_progress_helper_exception_closes_bar(bars):
    def items():
        yield 1
        raise KeyError("boom")

    with pytest.raises(KeyError, match="boom"):
        list(gofutures.progress(items()))
    assert [_state(b) for b in bars] == [(1, None, True)]


# ------------------------------------------------------------ off, missing, wrong


def test_progress_false_makes_no_bar(bars):
    with gofutures.ThreadPoolExecutor(2) as ex:
        results = ex.map(abs, range(5))
        # No wrapper: the plain map iterator, exactly as without the argument.
        assert type(results).__name__ == "generator"
        assert list(results) == list(range(5))
        assert list(ex.map(abs, range(5), progress=False)) == list(range(5))
        assert list(ex.map(abs, range(5), progress=None)) == list(range(5))
        fs = [ex.submit(abs, 1)]
        assert type(gofutures.as_completed(fs)).__name__ == "generator"
        assert list(gofutures.as_completed(fs, progress=False)) == fs
    assert bars == []


@pytest.fixture
def no_tqdm(monkeypatch):
    # A None entry in sys.modules makes `import tqdm.auto` raise ImportError.
    for name in list(sys.modules):
        if name == "tqdm" or name.startswith("tqdm."):
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "tqdm", None)
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)


def test_missing_tqdm_is_a_clear_import_error(no_tqdm):
    with gofutures.ThreadPoolExecutor(2) as ex:
        with pytest.raises(ImportError, match=r"pip install 'gofutures\[progress\]'"):
            ex.map(abs, range(3), progress=True)
        # Raised at the call, before any work was submitted.
        assert ex.stats()["submitted"] == 0
        with pytest.raises(ImportError, match=r"gofutures\[progress\]"):
            gofutures.as_completed([ex.submit(abs, 1)], progress={"desc": "x"})
        with pytest.raises(ImportError, match=r"gofutures\[progress\]"):
            gofutures.progress([1, 2])
        # Without a bar nothing needs tqdm.
        assert list(ex.map(abs, range(3))) == [0, 1, 2]


@pytest.mark.parametrize("value", ["yes", 1, 0, 2.5, [1], object()])
def test_bad_progress_values_are_type_errors(bars, value):
    with gofutures.ThreadPoolExecutor(2) as ex:
        with pytest.raises(
            TypeError,
            match="progress must be True or False, a dict of tqdm keyword arguments, a tqdm-like class or object",
        ):
            ex.map(abs, range(3), progress=value)
        assert ex.stats()["submitted"] == 0
        with pytest.raises(TypeError, match="progress must be"):
            gofutures.as_completed([], progress=value)
    assert bars == []


def test_import_gofutures_does_not_import_tqdm():
    code = "import sys, gofutures; gofutures.progress; gofutures.as_completed; print('tqdm' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True).stdout
    assert out == "False\n"
    assert "progress" in gofutures.__all__ and "progress" in dir(gofutures)
