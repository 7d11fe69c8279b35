"""Short calls are pipelined to the workers (several sent ahead of the one
a worker runs; gofutures/procpipeline.go). What a user relies on must not
change: each call runs at most once, results come back to the right
futures, and a worker's death fails only what it was running (survive) or
breaks the pool with every call not yet answered (the default).

Workers import this module by name (tests/ is on the sys.path they inherit).
"""

import os
import time
from concurrent.futures.process import BrokenProcessPool

import pytest

import gofutures
from gofutures import WorkerDiedError
from gofutures._constants import HAND_BACK_AFTER, PIPELINE_BUDGET

TIMEOUT = 60
CRASH_AT = 700


def _record(path, i):
    # O_APPEND: each line lands whole, whichever worker writes it.
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    try:
        os.write(fd, b"%d\n" % i)
    finally:
        os.close(fd)
    return i


def _record_or_die(path, i):
    if i == CRASH_AT:
        os._exit(7)
    return _record(path, i)


def _record_or_nap(path, i):
    if i % 100 == 50:
        time.sleep(0.05)  # long enough for the calls behind it to be handed back
    return _record(path, i)


def _identity(x):
    return x


def _handback_thread():
    # (pid, native thread id) of this worker's hand-back watchdog, or None.
    import threading

    ids = [t.native_id for t in threading.enumerate() if t.name == "gofutures-handback"]
    return os.getpid(), (ids[0] if ids else None)


def _wakes(pid, tid):
    with open("/proc/%d/task/%d/status" % (pid, tid)) as f:
        return int(f.read().split("voluntary_ctxt_switches:")[1].split()[0])


def _runs(path):
    with open(path) as f:
        return [int(line) for line in f]


def test_each_short_call_runs_once_and_answers_its_own_future(tmp_path):
    path = str(tmp_path / "runs")
    with gofutures.ProcessPoolExecutor(2) as ex:
        fs = [ex.submit(_record, path, i) for i in range(3000)]
        assert [f.result(timeout=TIMEOUT) for f in fs] == list(range(3000))
        assert list(ex.map(_record, [path] * 3000, range(3000, 6000))) == list(range(3000, 6000))
        assert ex.stats()["done"] == 6000
    assert sorted(_runs(path)) == list(range(6000))


def test_survive_death_amid_short_calls_fails_only_that_call(tmp_path):
    # The calls sent to the dying worker behind the one it died running
    # never started: they run elsewhere, once.
    path = str(tmp_path / "runs")
    with gofutures.ProcessPoolExecutor(2, survive=True) as ex:
        fs = [ex.submit(_record_or_die, path, i) for i in range(2000)]
        for i, f in enumerate(fs):
            if i == CRASH_AT:
                with pytest.raises(WorkerDiedError) as info:
                    f.result(timeout=TIMEOUT)
                assert info.value.exitcode == 7
            else:
                assert f.result(timeout=TIMEOUT) == i
    runs = _runs(path)
    assert sorted(runs) == [i for i in range(2000) if i != CRASH_AT]


def test_death_amid_short_calls_breaks_the_pool_without_running_a_call_twice(tmp_path):
    path = str(tmp_path / "runs")
    fs = []
    with gofutures.ProcessPoolExecutor(2) as ex:
        try:
            for i in range(2000):
                fs.append(ex.submit(_record_or_die, path, i))
        except BrokenProcessPool:
            pass  # the pool broke while calls were still being submitted, as the stdlib's can
        gofutures.wait(fs, timeout=TIMEOUT)
    succeeded = sorted(i for i, f in enumerate(fs) if f.exception() is None)
    assert isinstance(fs[CRASH_AT].exception(), BrokenProcessPool)
    runs = _runs(path)
    assert len(runs) == len(set(runs)), "a call ran twice"
    assert set(succeeded) <= set(runs)
    assert all(isinstance(f.exception(), BrokenProcessPool) for i, f in enumerate(fs) if i not in set(succeeded))


def test_short_calls_sent_behind_a_long_one_go_to_a_free_worker():
    # Without the hand-back, the calls pipelined to the worker that runs
    # the long call would wait for it while the other worker is idle.
    with gofutures.ProcessPoolExecutor(2) as ex:
        assert list(ex.map(_identity, range(500))) == list(range(500))  # short: pipelined
        head = [ex.submit(_identity, i) for i in range(500)]
        long = ex.submit(time.sleep, 30)
        tail = [ex.submit(_identity, i) for i in range(100)]
        _, not_done = gofutures.wait(head + tail, timeout=20)
        assert not not_done, "%d calls waited behind the long one" % len(not_done)
        assert not long.done()
        assert ex.kill_task(long)


def _pid_after(seconds):
    time.sleep(seconds)
    return os.getpid()


def test_calls_that_turn_out_longer_than_their_pipeline_spread_over_the_workers():
    # Calls taken for short (they follow short ones) are pipelined to one
    # worker while the other runs a call of its own. Each of them ends well
    # before HAND_BACK_AFTER, so the watchdog never hands them back: without
    # the hand-back after a call longer than PIPELINE_BUDGET, they all ran
    # one after the other on that worker, and the other worker, free soon
    # after, stayed idle.
    each = 0.01
    assert PIPELINE_BUDGET < each < HAND_BACK_AFTER
    with gofutures.ProcessPoolExecutor(2) as ex:
        assert list(ex.map(_identity, range(500))) == list(range(500))  # short: pipelined
        other = ex.submit(_pid_after, 0.02)  # a free worker takes it
        fs = [ex.submit(_identity, i) for i in range(50)] + [ex.submit(_pid_after, each) for _ in range(12)]
        other_pid = other.result(timeout=TIMEOUT)
        ran = [f.result(timeout=TIMEOUT) for f in fs[50:]].count(other_pid)
        assert ran >= 3, "the worker that ran the 20 ms call ran %d of the 12 calls" % ran


def test_handed_back_calls_run_once(tmp_path):
    path = str(tmp_path / "runs")
    with gofutures.ProcessPoolExecutor(2) as ex:
        fs = [ex.submit(_record_or_nap, path, i) for i in range(1000)]
        assert [f.result(timeout=TIMEOUT) for f in fs] == list(range(1000))
    assert sorted(_runs(path)) == list(range(1000))


def test_an_idle_worker_does_not_wake_to_watch():
    # The hand-back watchdog waits for a task to watch: a worker with
    # nothing to run does not wake (it woke every 10 ms, forever, once it
    # had pipelined: each wake also takes the GIL from a running task).
    with gofutures.ProcessPoolExecutor(1) as ex:
        assert list(ex.map(_identity, range(2000))) == list(range(2000))  # short: pipelined
        pid, tid = ex.submit(_handback_thread).result(timeout=TIMEOUT)
        assert tid is not None, "the calls were not pipelined: nothing to check"
        time.sleep(0.1)  # the watchdog parks at its next look
        before = _wakes(pid, tid)
        time.sleep(1.0)
        assert _wakes(pid, tid) - before <= 2
