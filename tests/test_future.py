"""gofutures.Future: the states and methods of concurrent.futures.Future."""

import builtins
import concurrent.futures
import concurrent.futures.thread
import logging
import threading
import traceback
import types

import pytest

import gofutures
import gofutures.thread

TIMEOUT = 10


# ------------------------------------------------------------ public API


def test_public_names_are_the_stdlib_ones():
    for name in ("CancelledError", "TimeoutError", "InvalidStateError", "BrokenExecutor"):
        assert getattr(gofutures, name) is getattr(concurrent.futures, name), name
    assert gofutures.thread.BrokenThreadPool is concurrent.futures.thread.BrokenThreadPool
    assert gofutures.FIRST_COMPLETED == concurrent.futures.FIRST_COMPLETED
    assert gofutures.FIRST_EXCEPTION == concurrent.futures.FIRST_EXCEPTION
    assert gofutures.ALL_COMPLETED == concurrent.futures.ALL_COMPLETED
    assert issubclass(gofutures.Future, concurrent.futures.Future)
    assert issubclass(gofutures.ThreadPoolExecutor, concurrent.futures.ThreadPoolExecutor)
    assert issubclass(gofutures.ThreadPoolExecutor, gofutures.Executor)
    assert callable(gofutures.wait) and callable(gofutures.as_completed)


def test_timeout_error_is_builtin():
    assert gofutures.TimeoutError is builtins.TimeoutError
    f = gofutures.Future()
    with pytest.raises(builtins.TimeoutError):
        f.result(timeout=0.05)


def test_future_generic_alias():
    alias = gofutures.Future[int]
    assert isinstance(alias, types.GenericAlias)
    assert alias.__origin__ is gofutures.Future
    assert alias.__args__ == (int,)


def test_submitted_future_is_a_concurrent_futures_future():
    with gofutures.ThreadPoolExecutor(max_workers=1) as ex:
        f = ex.submit(int, "7")
        assert isinstance(f, gofutures.Future)
        assert isinstance(f, concurrent.futures.Future)
        assert f.result(timeout=TIMEOUT) == 7


# ------------------------------------------------------------ states


def test_new_future_is_pending():
    f = gofutures.Future()
    assert not f.done()
    assert not f.running()
    assert not f.cancelled()
    assert "state=pending" in repr(f)


def test_cancel_pending_future():
    f = gofutures.Future()
    assert f.cancel() is True
    assert f.cancelled()
    assert f.done()
    assert not f.running()
    assert "state=cancelled" in repr(f)
    with pytest.raises(gofutures.CancelledError):
        f.result(timeout=0)
    with pytest.raises(gofutures.CancelledError):
        f.exception(timeout=0)
    assert f.cancel() is True  # cancelling again still reports cancelled


def test_running_future_cannot_be_cancelled():
    f = gofutures.Future()
    assert f.set_running_or_notify_cancel() is True
    assert f.running()
    assert not f.done()
    assert "state=running" in repr(f)
    assert f.cancel() is False
    assert not f.cancelled()
    f.set_result(1)
    assert not f.running()
    assert f.done()
    assert f.result() == 1


def test_set_running_or_notify_cancel_on_cancelled_future():
    f = gofutures.Future()
    seen = []
    f.add_done_callback(seen.append)
    f.cancel()
    assert seen == [f]
    assert f.set_running_or_notify_cancel() is False
    assert f.cancelled()


@pytest.mark.parametrize("finish", ["result", "exception"])
def test_set_running_or_notify_cancel_on_finished_future(finish):
    f = gofutures.Future()
    if finish == "result":
        f.set_result(1)
    else:
        f.set_exception(ValueError("x"))
    with pytest.raises(RuntimeError):
        f.set_running_or_notify_cancel()


def test_finished_future_cannot_be_cancelled():
    f = gofutures.Future()
    f.set_result(3)
    assert f.cancel() is False
    assert not f.cancelled()
    assert f.result() == 3


def test_set_result_and_exception_on_finished_future():
    f = gofutures.Future()
    f.set_result(1)
    with pytest.raises(gofutures.InvalidStateError):
        f.set_result(2)
    with pytest.raises(gofutures.InvalidStateError):
        f.set_exception(ValueError("late"))
    assert f.result() == 1

    g = gofutures.Future()
    g.set_exception(KeyError("k"))
    with pytest.raises(gofutures.InvalidStateError):
        g.set_result(2)
    with pytest.raises(gofutures.InvalidStateError):
        g.set_exception(ValueError("late"))
    assert isinstance(g.exception(), KeyError)


def test_set_result_on_cancelled_future():
    f = gofutures.Future()
    f.cancel()
    with pytest.raises(gofutures.InvalidStateError):
        f.set_result(1)
    with pytest.raises(gofutures.InvalidStateError):
        f.set_exception(ValueError("x"))
    assert f.cancelled()


def test_result_and_exception_when_successful():
    f = gofutures.Future()
    f.set_result({"a": 1})
    assert f.done()
    assert f.result() == {"a": 1}
    assert f.result(timeout=0) == {"a": 1}
    assert f.exception() is None
    assert "state=finished returned dict" in repr(f)


def test_result_and_exception_when_failed():
    f = gofutures.Future()
    err = ValueError("bad")
    f.set_exception(err)
    assert f.done()
    assert f.exception() is err
    with pytest.raises(ValueError) as ei:
        f.result()
    assert ei.value is err
    assert "state=finished raised ValueError" in repr(f)


def test_result_none_is_a_result():
    f = gofutures.Future()
    f.set_result(None)
    assert f.done()
    assert f.result() is None
    assert f.exception() is None


# ------------------------------------------------------------ timeouts, threads


def test_result_timeout_on_pending_future():
    f = gofutures.Future()
    with pytest.raises(gofutures.TimeoutError):
        f.result(timeout=0.05)
    with pytest.raises(gofutures.TimeoutError):
        f.exception(timeout=0.05)
    with pytest.raises(gofutures.TimeoutError):
        f.result(timeout=0)
    assert not f.done()


def test_result_timeout_on_running_future():
    f = gofutures.Future()
    f.set_running_or_notify_cancel()
    with pytest.raises(gofutures.TimeoutError):
        f.result(timeout=0.05)


def test_result_wakes_when_set_from_another_thread():
    f = gofutures.Future()
    t = threading.Timer(0.1, f.set_result, ("late",))
    t.start()
    try:
        assert f.result(timeout=TIMEOUT) == "late"
    finally:
        t.join()


def test_exception_wakes_when_set_from_another_thread():
    f = gofutures.Future()
    err = OSError("io")
    t = threading.Timer(0.1, f.set_exception, (err,))
    t.start()
    try:
        assert f.exception(timeout=TIMEOUT) is err
    finally:
        t.join()


def test_a_transition_made_by_hand_under_the_condition_is_seen_whole():
    # CPython's test_exception_with_success does this: _state, then
    # _exception, under _condition. The waiter must not read between the
    # two (it returned None, not the OSError, when it woke at the first).
    f = gofutures.Future()
    state_set, waiter_done = threading.Event(), threading.Event()

    def finish_by_hand():
        with f._condition:
            f._state = concurrent.futures._base.FINISHED
            state_set.set()
            # Gives a waiter that does not wait for the condition time to
            # read: then it is done before the exception is set.
            waiter_done.wait(0.5)
            f._exception = OSError("by hand")
            f._condition.notify_all()

    t = threading.Thread(target=finish_by_hand)
    t.start()
    try:
        assert state_set.wait(TIMEOUT)
        err = f.exception(timeout=TIMEOUT)
        waiter_done.set()
        assert isinstance(err, OSError)
    finally:
        t.join()


@pytest.mark.parametrize("end", ["result", "cancel"])
def test_assigning_state_takes_a_done_future_back(end):
    # A done future's state is kept beside it once read (no call into Go
    # for each later read); code that assigns _state, as CPython's tests
    # do, must still be able to move it back.
    f = gofutures.Future()
    if end == "result":
        f.set_result(1)
    else:
        f.cancel()
        assert not f.set_running_or_notify_cancel()
    assert f.done()
    f._state = concurrent.futures._base.PENDING
    assert not f.done() and not f.cancelled()
    assert f._state == concurrent.futures._base.PENDING
    with pytest.raises(concurrent.futures.TimeoutError):
        f.result(timeout=0)
    f._state = concurrent.futures._base.RUNNING
    assert f.running()
    f.set_result(2)
    assert f.result() == 2


def test_result_wakes_on_cancel_from_another_thread():
    f = gofutures.Future()
    t = threading.Timer(0.1, f.cancel)
    t.start()
    try:
        with pytest.raises(gofutures.CancelledError):
            f.result(timeout=TIMEOUT)
    finally:
        t.join()


def test_many_threads_waiting_on_one_future():
    f = gofutures.Future()
    got = []
    lock = threading.Lock()

    def waiter():
        r = f.result(timeout=TIMEOUT)
        with lock:
            got.append(r)

    threads = [threading.Thread(target=waiter) for _ in range(8)]
    for t in threads:
        t.start()
    f.set_result(42)
    for t in threads:
        t.join(TIMEOUT)
    assert got == [42] * 8


# ------------------------------------------------------------ callbacks


def test_done_callback_called_once_on_result():
    f = gofutures.Future()
    seen = []
    f.add_done_callback(seen.append)
    assert seen == []
    f.set_result(5)
    assert seen == [f]
    assert seen[0] is f


def test_done_callbacks_run_in_registration_order():
    f = gofutures.Future()
    order = []
    for i in range(5):
        f.add_done_callback(lambda fut, i=i: order.append(i))
    f.set_exception(ValueError("x"))
    assert order == [0, 1, 2, 3, 4]


def test_done_callback_on_cancel():
    f = gofutures.Future()
    seen = []
    f.add_done_callback(lambda fut: seen.append(fut.cancelled()))
    f.cancel()
    assert seen == [True]


def test_done_callback_runs_immediately_if_already_done():
    f = gofutures.Future()
    f.set_result(1)
    seen = []
    f.add_done_callback(lambda fut: seen.append((fut, threading.get_ident())))
    # Called synchronously, in this thread, before add_done_callback returns.
    assert seen == [(f, threading.get_ident())]


def test_done_callback_sees_final_state():
    f = gofutures.Future()
    seen = []
    f.add_done_callback(lambda fut: seen.append((fut.done(), fut.result())))
    f.set_result("v")
    assert seen == [(True, "v")]


def test_done_callback_for_submitted_task():
    done = threading.Event()
    seen = []

    def cb(fut):
        seen.append(fut.result())
        done.set()

    with gofutures.ThreadPoolExecutor(max_workers=2) as ex:
        f = ex.submit(sum, [1, 2, 3])
        f.add_done_callback(cb)
        assert done.wait(TIMEOUT)
    assert seen == [6]


def _logged_callback_errors(caplog, exc_type):
    return [
        r
        for r in caplog.records
        if r.name == "concurrent.futures"
        and r.levelno >= logging.ERROR
        and r.exc_info
        and isinstance(r.exc_info[1], exc_type)
    ]


class CallbackBoom(Exception):
    pass


def _boom_callback(fut):
    raise CallbackBoom("in callback")


def test_callback_exception_is_logged_not_raised(caplog):
    caplog.set_level(logging.ERROR, logger="concurrent.futures")
    f = gofutures.Future()
    after = []
    f.add_done_callback(_boom_callback)
    f.add_done_callback(after.append)
    f.set_result(1)  # must not raise
    assert after == [f]  # later callbacks still run
    assert f.result() == 1
    assert len(_logged_callback_errors(caplog, CallbackBoom)) == 1


def test_immediate_callback_exception_is_logged_not_raised(caplog):
    caplog.set_level(logging.ERROR, logger="concurrent.futures")
    f = gofutures.Future()
    f.set_result(1)
    f.add_done_callback(_boom_callback)  # must not raise
    assert len(_logged_callback_errors(caplog, CallbackBoom)) == 1


def test_callback_exception_in_worker_is_logged(caplog):
    caplog.set_level(logging.ERROR, logger="concurrent.futures")
    ran = threading.Event()

    def cb(fut):
        ran.set()
        raise CallbackBoom("worker callback")

    with gofutures.ThreadPoolExecutor(max_workers=1) as ex:
        f = ex.submit(lambda: threading.Event().wait(0.05) or 9)
        f.add_done_callback(cb)
        assert f.result(timeout=TIMEOUT) == 9
        assert ran.wait(TIMEOUT)
        # The pool keeps working after a callback failed.
        assert ex.submit(abs, -3).result(timeout=TIMEOUT) == 3
    assert len(_logged_callback_errors(caplog, CallbackBoom)) == 1


# ------------------------------------------------------------ tracebacks


def _raise_in_task():
    raise ValueError("from the task")


def test_result_reraises_with_task_traceback():
    with gofutures.ThreadPoolExecutor(max_workers=1) as ex:
        f = ex.submit(_raise_in_task)
        with pytest.raises(ValueError, match="from the task") as ei:
            f.result(timeout=TIMEOUT)
    assert ei.value is f.exception()
    names = [frame.name for frame in traceback.extract_tb(ei.value.__traceback__)]
    # The frame that raised, inside the worker, is still in the traceback.
    assert names[-1] == "_raise_in_task"
    # And the caller of result() is in it too.
    assert "test_result_reraises_with_task_traceback" in names


def test_repr_states_for_submitted_tasks(gate, make_pool):
    ex = make_pool(max_workers=1)
    started = threading.Event()

    def blocker():
        started.set()
        gate.wait(TIMEOUT)
        return 1

    running = ex.submit(blocker)
    queued = ex.submit(int)
    assert started.wait(TIMEOUT)
    assert "state=running" in repr(running)
    assert "state=pending" in repr(queued)
    assert queued.cancel()
    assert "state=cancelled" in repr(queued)
    gate.set()
    assert running.result(timeout=TIMEOUT) == 1
    assert "state=finished returned int" in repr(running)
    failed = ex.submit(_raise_in_task)
    failed.exception(timeout=TIMEOUT)
    assert "state=finished raised ValueError" in repr(failed)
