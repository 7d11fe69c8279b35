"""gofutures.InterpreterPoolExecutor (Python 3.14+): each worker thread of the
Go pool owns a subinterpreter with its own GIL; calls cross as the stdlib's
pool sends them."""

import concurrent.futures
import os
import subprocess
import sys
import textwrap
import threading
import time

import pytest

if "InterpreterPoolExecutor" not in concurrent.futures.__all__:
    pytest.skip("the stdlib has no InterpreterPoolExecutor before 3.14", allow_module_level=True)

from concurrent import interpreters
from concurrent.futures import interpreter as std_interpreter

import _interpreters

import gofutures
import gofutures.interpreter
from gofutures.interpreter import BrokenInterpreterPool

TIMEOUT = 30


def interp_id(*extra):
    interpid, _ = _interpreters.get_current()
    return (interpid, *extra)


def interp_config():
    interpid, _ = _interpreters.get_current()
    return _interpreters.get_config(interpid).gil


def fail(exctype, msg):
    raise exctype(msg)


def mul(x, y):
    return x * y


STATE = {"set": None}


def remember(value):
    STATE["set"] = value


def recall():
    return STATE["set"]


class Unsendable:
    def __reduce__(self):
        raise TypeError("this object refuses to be pickled")


def give_unsendable():
    return Unsendable()


@pytest.fixture
def pool():
    ex = gofutures.InterpreterPoolExecutor(2)
    yield ex
    ex.shutdown(wait=True, cancel_futures=True)


# ------------------------------------------------------------ the stdlib's names


def test_is_the_stdlibs_kind():
    assert issubclass(gofutures.InterpreterPoolExecutor, concurrent.futures.InterpreterPoolExecutor)
    assert issubclass(gofutures.InterpreterPoolExecutor, gofutures.ThreadPoolExecutor)
    assert "InterpreterPoolExecutor" in gofutures.__all__
    assert gofutures.interpreter.BrokenInterpreterPool is std_interpreter.BrokenInterpreterPool
    assert gofutures.interpreter.ExecutionFailed is interpreters.ExecutionFailed


# ------------------------------------------------------------ where calls run


def test_calls_run_in_own_gil_subinterpreters(pool):
    main_id, _ = _interpreters.get_current()
    interpid, tag = pool.submit(interp_id, "x").result(TIMEOUT)
    assert tag == "x"
    assert interpid != main_id
    assert pool.submit(interp_config).result(TIMEOUT) == "own"


def test_a_worker_keeps_its_interpreter_and_its_state():
    # The initializer and the tasks of a worker share its interpreter: state
    # set by one is seen by the next, and never by the main interpreter.
    with gofutures.InterpreterPoolExecutor(1, initializer=remember, initargs=("init",)) as ex:
        assert ex.submit(recall).result(TIMEOUT) == "init"
        first = ex.submit(interp_id).result(TIMEOUT)
        ex.submit(remember, "task").result(TIMEOUT)
        assert ex.submit(recall).result(TIMEOUT) == "task"
        assert ex.submit(interp_id).result(TIMEOUT) == first
    assert STATE["set"] is None


def test_shutdown_ends_the_worker_interpreters():
    ex = gofutures.InterpreterPoolExecutor(2)
    ids = {ex.submit(interp_id).result(TIMEOUT)[0] for _ in range(4)}
    ex.shutdown(wait=True)
    alive = {interp.id for interp in interpreters.list_all()}
    assert not ids & alive


def test_map_and_lazy_buffersize(pool):
    assert list(pool.map(mul, range(50), range(50), timeout=TIMEOUT)) == [i * i for i in range(50)]
    assert list(pool.map(mul, iter(range(20)), iter(range(20)), buffersize=3)) == [i * i for i in range(20)]


def test_map_progress_counts_the_results(pool):
    class Bar:  # a tqdm-like object of the caller's
        n = 0

        def update(self, k=1):
            self.n += k

        def close(self):
            pass

    bar = Bar()
    assert list(pool.map(mul, range(7), range(7), progress=bar)) == [i * i for i in range(7)]
    assert bar.n == 7


def test_stats_count_the_tasks(pool):
    list(pool.map(mul, range(10), range(10)))
    stats = pool.stats()
    assert stats["done"] == 10 and stats["submitted"] == 10 and stats["failed"] == 0
    assert 1 <= stats["workers"] <= 2


# ------------------------------------------------------------ what crosses


def test_exception_is_reraised_from_execution_failed(pool):
    with pytest.raises(KeyError) as info:
        pool.submit(fail, KeyError, "spam").result(TIMEOUT)
    cause = info.value.__cause__
    assert type(cause) is interpreters.ExecutionFailed
    assert cause.excinfo.type.__name__ == "KeyError"
    assert cause.excinfo.msg == "'spam'"
    assert "Uncaught in the interpreter" in str(cause) and "in fail" in str(cause)


def test_closures_are_not_shareable(pool):
    spam = 1

    def closure():
        return spam

    with pytest.raises(interpreters.NotShareableError):
        pool.submit(closure).result(TIMEOUT)


def test_stateless_local_functions_are_sent_as_code(pool):
    def stateless(x):
        import sys

        return x * 2, sys.modules["__main__"].__name__

    assert pool.submit(stateless, 21).result(TIMEOUT) == (42, "__main__")
    # and they come back as results too
    make = pool.submit(lambda: lambda y: y + 1).result(TIMEOUT)
    assert make(1) == 2


def test_unsendable_result_fails_the_future_only(pool):
    with pytest.raises(interpreters.NotShareableError):
        pool.submit(give_unsendable).result(TIMEOUT)
    assert pool.submit(mul, 6, 7).result(TIMEOUT) == 42


def test_interpreter_queues_cross(pool):
    queue = interpreters.create_queue()
    pool.submit(queue.put, "from a worker").result(TIMEOUT)
    assert queue.get(timeout=TIMEOUT) == "from a worker"


def test_modules_on_a_runtime_sys_path_import(pool, tmp_path, monkeypatch):
    # The workers see sys.path as it was when they started (the stdlib's
    # see the one the process started with).
    (tmp_path / "gf_interp_helper.py").write_text("def triple(x):\n    return 3 * x\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import gf_interp_helper

    with gofutures.InterpreterPoolExecutor(1) as ex:
        assert ex.submit(gf_interp_helper.triple, 5).result(TIMEOUT) == 15


# ------------------------------------------------------------ a broken pool


def test_failing_initializer_breaks_the_pool(caplog):
    ex = gofutures.InterpreterPoolExecutor(1, initializer=fail, initargs=(ValueError, "no init"))
    try:
        fut = ex.submit(mul, 1, 2)
        with pytest.raises(BrokenInterpreterPool):
            fut.result(TIMEOUT)
        with pytest.raises(BrokenInterpreterPool):
            ex.submit(mul, 1, 2)
        assert ex._broken
    finally:
        ex.shutdown(wait=True)
    assert "Exception in initializer" in caplog.text
    assert "ExecutionFailed: ValueError: no init" in caplog.text


# ------------------------------------------------------------ a script's __main__


def test_main_script_functions_run_without_its_guarded_code(tmp_path, subprocess_env):
    # As the stdlib's pool does: a worker runs the script again under the
    # name '<fake __main__>', so that what its guard protects does not run.
    script = tmp_path / "script.py"
    script.write_text(
        textwrap.dedent("""
        import gofutures
        print("top level", __name__, flush=True)

        def where(x):
            return __name__, x

        if __name__ == "__main__":
            with gofutures.InterpreterPoolExecutor(1) as ex:
                print(ex.submit(where, 7).result())
    """)
    )
    out = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        env=subprocess_env,
        stdin=subprocess.DEVNULL,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == ["top level __main__", "top level <fake __main__>", "('<fake __main__>', 7)"]


def test_gofutures_names_in_a_worker_are_the_stdlibs(pool):
    # A worker runs the main script again, which may import gofutures: the
    # names backed by the Go core (which loads in the main interpreter only)
    # are the stdlib's there.
    def names():
        import concurrent.futures

        import gofutures

        return (
            gofutures.ThreadPoolExecutor is concurrent.futures.ThreadPoolExecutor,
            gofutures.Future is concurrent.futures.Future,
        )

    assert pool.submit(names).result(TIMEOUT) == (True, True)


# ------------------------------------------------------------ Go's scheduler


def spin_for(seconds):
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass
    return threading.get_native_id()


def _timeslices():
    """{native thread id: time slices it has had} for this process's threads."""
    slices = {}
    for tid in os.listdir("/proc/self/task"):
        try:
            with open("/proc/self/task/%s/schedstat" % tid) as f:
                slices[int(tid)] = int(f.read().split()[2])
        except (FileNotFoundError, ProcessLookupError):
            pass  # ended meanwhile
    return slices


@pytest.mark.skipif(not os.path.exists("/proc/self/task"), reason="reads /proc/self/task/*/schedstat")
def test_go_runtime_stays_out_of_the_way_of_computing_workers():
    # Workers that run Python in C hold Go Ps, which the runtime's sysmon
    # took back again and again while they computed, waking every 20 us and
    # taking a core from a worker each time (pybind/scheduler.go): 300-400
    # time slices of the process's other threads per map below, 70-110 since.
    maps = 5
    with gofutures.InterpreterPoolExecutor(2) as ex:
        workers = set(ex.map(spin_for, [0.02] * 4))
        before = _timeslices()
        for _ in range(maps):
            workers |= set(ex.map(spin_for, [0.006] * 16))
        after = _timeslices()
    others = set(after) - workers - {threading.get_native_id()}
    slices = sum(after[t] - before.get(t, 0) for t in others)
    assert slices < 200 * maps, "the other threads had %d time slices in %d maps" % (slices, maps)
