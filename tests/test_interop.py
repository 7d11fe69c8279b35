"""gofutures with asyncio: executors for run_in_executor / to_thread, and
gofutures futures wrapped as asyncio futures."""

import asyncio
import contextvars
import operator
import threading

import pytest

import gofutures

TIMEOUT = 10


def run(coro):
    """asyncio.run with an overall time limit, so nothing can hang."""

    async def guarded():
        return await asyncio.wait_for(coro, TIMEOUT)

    return asyncio.run(guarded())


def _thread_name():
    return threading.current_thread().name


def test_run_in_executor():
    async def main():
        loop = asyncio.get_running_loop()
        with gofutures.ThreadPoolExecutor(max_workers=2, thread_name_prefix="gfloop") as ex:
            r = await loop.run_in_executor(ex, pow, 2, 10)
            name = await loop.run_in_executor(ex, _thread_name)
            many = await asyncio.gather(*(loop.run_in_executor(ex, operator.mul, i, i) for i in range(20)))
        return r, name, many

    r, name, many = run(main())
    assert r == 1024
    assert name.startswith("gfloop_")
    assert many == [i * i for i in range(20)]


def test_run_in_executor_exception():
    async def main():
        loop = asyncio.get_running_loop()
        with gofutures.ThreadPoolExecutor(max_workers=1) as ex:
            with pytest.raises(ZeroDivisionError):
                await loop.run_in_executor(ex, operator.truediv, 1, 0)
            return "ok"

    assert run(main()) == "ok"


def test_default_executor_and_to_thread():
    var = contextvars.ContextVar("var", default="unset")

    def read_var():
        return var.get()

    async def main():
        loop = asyncio.get_running_loop()
        ex = gofutures.ThreadPoolExecutor(thread_name_prefix="gfdefault")
        loop.set_default_executor(ex)
        name = await asyncio.to_thread(_thread_name)
        added = await asyncio.to_thread(operator.add, 1, 2)
        var.set("set in task")
        seen = await asyncio.to_thread(read_var)
        via_none = await loop.run_in_executor(None, _thread_name)
        return ex, name, added, seen, via_none

    # asyncio.run shuts the default executor down at the end.
    ex, name, added, seen, via_none = run(main())
    assert name.startswith("gfdefault_")
    assert via_none.startswith("gfdefault_")
    assert added == 3
    assert seen == "set in task"  # to_thread carries the context over
    with pytest.raises(RuntimeError):
        ex.submit(abs, 1)  # it was shut down by asyncio.run


def test_wrap_future_result():
    async def main():
        with gofutures.ThreadPoolExecutor(max_workers=1) as ex:
            cf = ex.submit(pow, 3, 4)
            af = asyncio.wrap_future(cf)
            assert isinstance(af, asyncio.Future)
            return await af

    assert run(main()) == 81


def test_wrap_future_exception():
    async def main():
        with gofutures.ThreadPoolExecutor(max_workers=1) as ex:
            af = asyncio.wrap_future(ex.submit(int, "not a number"))
            with pytest.raises(ValueError):
                await af
            return "ok"

    assert run(main()) == "ok"


def test_wrap_future_completed_by_another_thread():
    async def main():
        f = gofutures.Future()
        af = asyncio.wrap_future(f)
        t = threading.Timer(0.1, f.set_result, ("from thread",))
        t.start()
        try:
            return await af
        finally:
            t.join()

    assert run(main()) == "from thread"


def test_wrap_future_already_done():
    async def main():
        f = gofutures.Future()
        f.set_result(5)
        return await asyncio.wrap_future(f)

    assert run(main()) == 5


def test_cancelling_gofutures_future_cancels_asyncio_wrapper(gate, make_pool):
    async def main():
        ex = make_pool(max_workers=1)
        ex.submit(gate.wait, TIMEOUT)  # occupies the only worker
        queued = ex.submit(abs, -1)  # stays pending
        af = asyncio.wrap_future(queued)
        assert queued.cancel()
        try:
            await af
        except asyncio.CancelledError:
            outcome = "asyncio.CancelledError"
        except gofutures.CancelledError:
            outcome = "concurrent.futures.CancelledError"
        else:
            outcome = "no error"
        return outcome, af.cancelled()

    outcome, af_cancelled = run(main())
    assert outcome == "asyncio.CancelledError"
    assert af_cancelled


def test_cancelling_asyncio_wrapper_cancels_gofutures_future(gate, make_pool):
    ran = []

    async def main():
        ex = make_pool(max_workers=1)
        ex.submit(gate.wait, TIMEOUT)  # occupies the only worker
        queued = ex.submit(ran.append, "ran")
        af = asyncio.wrap_future(queued)
        af.cancel()
        try:
            await af
        except asyncio.CancelledError:
            pass
        return ex, queued

    ex, queued = run(main())
    assert queued.cancelled()
    gate.set()
    ex.shutdown(wait=True)
    assert ran == []
