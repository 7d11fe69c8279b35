"""A done-callback that raises KeyboardInterrupt or SystemExit: the stdlib
catches only Exception, so such an exception propagates out of the call
that completed the future (set_result, set_exception, cancel) and the later
callbacks never run. Where nobody made that call (a pool's worker, a process
pool's results worker) it is logged as the stdlib's worker thread logs it,
LOGGER.critical('Exception in worker', exc_info=True), and the future keeps
its outcome."""

import concurrent.futures
import logging
import os
import threading
import time

import pytest

import gofutures
from gofutures import _base

TIMEOUT = 30
FUTURE_TYPES = [gofutures.Future, concurrent.futures.Future]
NOT_EXCEPTIONS = [KeyboardInterrupt, SystemExit]


def _raiser(exc_type):
    def callback(fut):
        raise exc_type("from a done-callback")

    return callback


def _with_callbacks(future, exc_type, seen):
    future.add_done_callback(seen.append)
    future.add_done_callback(_raiser(exc_type))
    future.add_done_callback(seen.append)  # never runs
    return future


@pytest.mark.parametrize("future_type", FUTURE_TYPES)
@pytest.mark.parametrize("exc_type", NOT_EXCEPTIONS)
@pytest.mark.parametrize("complete", ["set_result", "set_exception", "cancel"])
def test_propagates_out_of_the_completing_call(future_type, exc_type, complete):
    seen = []
    f = _with_callbacks(future_type(), exc_type, seen)
    with pytest.raises(exc_type, match="from a done-callback"):
        if complete == "cancel":
            f.cancel()
        else:
            getattr(f, complete)(ValueError("outcome") if complete == "set_exception" else 7)
    assert seen == [f]  # the callback after the raising one did not run
    assert f.done()  # the outcome was set before the callbacks ran
    if complete == "cancel":
        assert f.cancelled()
    elif complete == "set_exception":
        assert str(f.exception()) == "outcome"
    else:
        assert f.result() == 7


@pytest.mark.parametrize("future_type", FUTURE_TYPES)
@pytest.mark.parametrize("exc_type", NOT_EXCEPTIONS)
def test_propagates_out_of_add_done_callback_on_a_done_future(future_type, exc_type):
    f = future_type()
    f.set_result(1)
    with pytest.raises(exc_type):
        f.add_done_callback(_raiser(exc_type))


@pytest.mark.parametrize("result_or_cancel", [_base._result_or_cancel, concurrent.futures._base._result_or_cancel])
def test_map_step_raises_the_cancel_callbacks_exception(result_or_cancel):
    # map's per-item step cancels the future when waiting fails; a callback
    # raising from that cancel replaces the wait's error, as in Python.
    seen = []
    f = _with_callbacks(gofutures.Future(), KeyboardInterrupt, seen)
    with pytest.raises(KeyboardInterrupt) as info:
        result_or_cancel(f, 0.01)
    assert isinstance(info.value.__context__, TimeoutError)
    assert f.cancelled() and seen == [f]


def _critical_records(caplog, exc_type):
    return [
        r
        for r in caplog.records
        if r.name == "concurrent.futures"
        and r.levelno == logging.CRITICAL
        and r.getMessage() == "Exception in worker"
        and r.exc_info
        and isinstance(r.exc_info[1], exc_type)
    ]


@pytest.mark.parametrize("exc_type", NOT_EXCEPTIONS)
def test_thread_worker_logs_it_as_the_stdlib_worker_and_goes_on(caplog, gate, exc_type):
    caplog.set_level(logging.ERROR, logger="concurrent.futures")
    seen = []
    with gofutures.ThreadPoolExecutor(max_workers=1) as ex:
        f = _with_callbacks(ex.submit(lambda: gate.wait(TIMEOUT) and 5), exc_type, seen)
        gate.set()
        assert f.result(timeout=TIMEOUT) == 5
        # The worker logs before it takes the next task: once the next task
        # has run, the record is there.
        assert ex.submit(abs, -3).result(timeout=TIMEOUT) == 3
    assert seen == [f]
    assert len(_critical_records(caplog, exc_type)) == 1


def _wait_for_file(path):
    while not os.path.exists(path):
        time.sleep(0.005)
    return "done"


@pytest.mark.parametrize("exc_type", NOT_EXCEPTIONS)
def test_process_results_worker_logs_it_and_goes_on(caplog, tmp_path, exc_type):
    caplog.set_level(logging.ERROR, logger="concurrent.futures")
    path = str(tmp_path / "go")
    seen = []
    with gofutures.ProcessPoolExecutor(1) as ex:
        # The call waits for the file, so the callbacks are in place before
        # its result comes back (and run on the results worker).
        f = _with_callbacks(ex.submit(_wait_for_file, path), exc_type, seen)
        open(path, "w").close()
        assert f.result(timeout=TIMEOUT) == "done"
        g = ex.submit(abs, -3)
        g.add_done_callback(lambda _: None)  # observed: delivered by the same worker, after f
        assert g.result(timeout=TIMEOUT) == 3
    assert seen == [f]
    assert len(_critical_records(caplog, exc_type)) == 1


def test_thread_shutdown_cancels_every_queued_task_then_raises(gate):
    ex = gofutures.ThreadPoolExecutor(max_workers=1)
    try:
        started = threading.Event()
        running = ex.submit(lambda: started.set() or gate.wait(TIMEOUT))
        # Running, not queued, before shutdown: else it is cancelled too.
        assert started.wait(TIMEOUT)
        seen = []
        first = _with_callbacks(ex.submit(abs, 1), KeyboardInterrupt, seen)
        second = ex.submit(abs, 2)
        second.add_done_callback(seen.append)
        # As the stdlib's shutdown, which cancels on the caller's thread.
        with pytest.raises(KeyboardInterrupt):
            ex.shutdown(wait=False, cancel_futures=True)
        assert first.cancelled() and second.cancelled()
        assert seen == [first, second]
        # Acknowledged too: wait() sees them settled.
        done, _ = gofutures.wait([first, second], timeout=TIMEOUT)
        assert done == {first, second}
    finally:
        gate.set()
        ex.shutdown(wait=True)
    assert running.result() is True


def test_process_shutdown_logs_it(caplog, tmp_path):
    # The stdlib's process pool cancels on its manager thread: its
    # shutdown() does not raise the callback's exception.
    caplog.set_level(logging.ERROR, logger="concurrent.futures")
    path = str(tmp_path / "go")
    ex = gofutures.ProcessPoolExecutor(1)
    try:
        ex.submit(_wait_for_file, path)
        seen = []
        queued = [ex.submit(abs, i) for i in range(3)]
        for q in queued:
            _with_callbacks(q, SystemExit, seen)
        ex.shutdown(wait=False, cancel_futures=True)
    finally:
        open(path, "w").close()
        ex.shutdown(wait=True)
    cancelled = [q for q in queued if q.cancelled()]
    assert cancelled and seen == cancelled
    assert len(_critical_records(caplog, SystemExit)) == len(cancelled)
