"""Future, wait() and as_completed(): the stdlib's contract over the Go core.

gofutures.Future is a concurrent.futures.Future (isinstance and asyncio's
wrap_future rely on it) whose state lives in the Go core; its methods are
implemented natively by FutureBase. wait() and as_completed() block in Go
with the GIL released and accept any mix of gofutures futures, other
concurrent.futures.Future objects, and futures that merely have done()
and add_done_callback() (dask's distributed.Future).
"""

import collections
import itertools
import time
import weakref
from concurrent.futures import _base as _std
from concurrent.futures._base import (  # noqa: F401  (re-exported: the stdlib's own objects)
    ALL_COMPLETED,
    FIRST_COMPLETED,
    FIRST_EXCEPTION,
    BrokenExecutor,
    CancelledError,
    Executor,
    InvalidStateError,
    TimeoutError,
)

from . import _constants, _fork, _progress
from ._core import hot
from ._fork import forked_child as _forked_child

_SETTLED = (_std.CANCELLED_AND_NOTIFIED, _std.FINISHED)
# The Go core's Mode values (gofutures.AllCompleted, FirstCompleted, FirstException).
_MODES = {
    ALL_COMPLETED: _constants.MODE_ALL_COMPLETED,
    FIRST_COMPLETED: _constants.MODE_FIRST_COMPLETED,
    FIRST_EXCEPTION: _constants.MODE_FIRST_EXCEPTION,
}


class Future(hot.FutureBase, _std.Future):
    """Represents the result of an asynchronous computation.

    Same API and behaviour as concurrent.futures.Future; the state machine
    lives in the Go core and no lock or condition is created per future
    unless the stdlib's own wait()/as_completed() ask for one.
    """

    def __repr__(self):
        state = self._state
        desc = _std._STATE_TO_DESCRIPTION_MAP[state]
        name = self.__class__.__name__
        if state == _std.FINISHED:
            if self._exception:
                return "<%s at %#x state=%s raised %s>" % (name, id(self), desc, self._exception.__class__.__name__)
            return "<%s at %#x state=%s returned %s>" % (name, id(self), desc, self._result.__class__.__name__)
        return "<%s at %#x state=%s>" % (name, id(self), desc)


def _settled(f):
    # Hot (every future of a wait() or as_completed()): one attribute and
    # one tuple test. A foreign future (dask's distributed.Future has a
    # _state of its own kind) counts as unsettled here: _Following reports
    # it at once if it is done, else follows it with a done callback.
    try:
        return f._state in _SETTLED
    except AttributeError:  # a foreign future with no _state at all
        _check_foreign(f)
        return False


def _check_foreign(f):
    # Anything with done() and add_done_callback() is followed; anything
    # else is refused as the stdlib's wait() refuses it (it takes every
    # future's _condition first).
    if not callable(getattr(f, "add_done_callback", None)) or not callable(getattr(f, "done", None)):
        raise AttributeError("%r object has no attribute '_condition'" % (type(f).__name__,), name="_condition", obj=f)


def _failed(f):
    if isinstance(f, _std.Future):
        return f._state == _std.FINISHED and f._exception is not None
    return _foreign_failed(f)


def _foreign_failed(f):
    # dask's distributed.Future says "error" in .status; exception() would
    # be a round trip to its scheduler (and must not run on its loop).
    status = getattr(f, "status", None)
    if isinstance(status, str):
        return status == "error"
    return f.done() and not f.cancelled() and f.exception() is not None


class _Following:
    """Follows a set of futures with one native Completions: gofutures
    futures report from Go, other concurrent.futures.Future objects through
    a stdlib-style waiter appended to their _waiters (under their
    _condition, as the stdlib does), and any other future (duck-typed:
    done() and add_done_callback(), as dask's distributed.Future) through
    a done callback. Use as a context manager so every registration that
    can be removed is removed at the end."""

    def __init__(self, futures):
        self.futures = list(futures)
        self.completions = hot.Completions()
        self._bridged = []
        self.foreign = []  # followed through done callbacks

    def __enter__(self):
        try:
            self._follow_all()
        except BaseException:
            # A foreign future may refuse a callback (a closed dask client):
            # undo what was registered so far, as __exit__ would.
            self.__exit__()
            raise
        return self

    def _follow_all(self):
        c = self.completions
        for tag, f in enumerate(self.futures):
            if c.watch(f, tag):
                continue
            if not isinstance(f, _std.Future):
                self._follow_foreign(f, tag)
                continue
            with f._condition:
                if _settled(f):
                    c.push(tag, _failed(f))
                else:
                    bridge = c.bridge(tag)
                    f._waiters.append(bridge)
                    self._bridged.append((f, bridge))

    def _follow_foreign(self, f, tag):
        _check_foreign(f)
        self.foreign.append(f)
        report = _Report(self.completions.bridge(tag))
        if f.done():
            # Reported now: a done future's callback may never come (dask
            # runs it on its client's loop, gone once the client is closed).
            report(f)
        else:
            f.add_done_callback(report)

    def __exit__(self, *exc):
        c = self.completions
        for f in self.futures:
            c.unwatch(f)
        for f, bridge in self._bridged:
            with f._condition:
                f._waiters.remove(bridge)


class _Report:
    """A foreign future's done callback: reports it through a Bridge (which
    also tells the deadlock check that a foreign future is followed). It
    may run on any thread (dask runs it on a callback thread of its own)
    and cannot be removed, so it may run after the wait is over: the
    Completions it reports to is then simply no longer read."""

    __slots__ = ("bridge",)

    def __init__(self, bridge):
        self.bridge = bridge

    def __call__(self, f):
        bridge, self.bridge = self.bridge, None
        if bridge is None:  # a callback must report once
            return
        if _foreign_failed(f):
            bridge.add_exception(f)
        else:
            bridge.add_result(f)


def wait(fs, timeout=None, return_when=ALL_COMPLETED):
    """Wait for the futures in fs to complete.

    Returns a named 2-tuple of sets (done, not_done), as
    concurrent.futures.wait does. return_when is FIRST_COMPLETED,
    FIRST_EXCEPTION or ALL_COMPLETED; timeout is in seconds (None: no limit).
    """
    if _forked_child():
        return _fork.wait(fs, timeout, return_when)
    fs = set(fs)
    done = {f for f in fs if _settled(f)}
    not_done = fs - done
    if return_when == FIRST_COMPLETED and done:
        return _std.DoneAndNotDoneFutures(done, not_done)
    if return_when == FIRST_EXCEPTION and any(_failed(f) for f in done):
        return _std.DoneAndNotDoneFutures(done, not_done)
    if not not_done:
        return _std.DoneAndNotDoneFutures(done, not_done)
    mode = _mode(return_when)
    with _Following(not_done) as following:
        following.completions.await_(mode, len(not_done), timeout)
    done = {f for f in fs if _settled(f)}
    done.update(f for f in following.foreign if f.done())
    return _std.DoneAndNotDoneFutures(done, fs - done)


def _mode(return_when):
    # Checked where the stdlib checks it: only when the wait must block.
    try:
        return _MODES[return_when]
    except (KeyError, TypeError):
        raise ValueError("Invalid return condition: %r" % (return_when,)) from None


def as_completed(fs, timeout=None, progress=False):
    """An iterator over the futures in fs that yields each as it completes
    (finished or cancelled), those already completed first.

    Raises TimeoutError if __next__() is called and the result isn't
    available after timeout seconds from the original call.

    progress (gofutures only): True, a dict of tqdm keyword arguments or a
    tqdm-like object shows a bar that counts the futures yielded; see
    gofutures.progress. Needs tqdm: pip install 'gofutures[progress]'.
    """
    if _forked_child():
        return _fork.as_completed(fs, timeout, progress)
    if progress is False:
        return _as_completed(fs, timeout)
    return _progress.track_completions(fs, timeout, progress)


def _as_completed(fs, timeout):
    # A generator, as the stdlib's as_completed: fs is read at the first next().
    if timeout is not None:
        end_time = timeout + time.monotonic()
    fs = set(fs)
    total = len(fs)
    finished, pending = _split_settled(fs)
    del fs
    following = _Following(pending)
    del pending  # _Following keeps the only list, which forgets each future it yields
    with following:
        # Yield without keeping a reference: a consumer that drops a yielded
        # future must be able to free it (and its result).
        finished.reverse()
        while finished:
            yield finished.pop()
        futures = following.futures
        left = len(futures)
        while left:
            remaining = None
            if timeout is not None:
                remaining = end_time - time.monotonic()
                if remaining < 0:
                    raise TimeoutError("%d (of %d) futures unfinished" % (left, total))
            tag = following.completions.next(remaining)
            if tag is None:
                raise TimeoutError("%d (of %d) futures unfinished" % (left, total))
            left -= 1
            yield _take(futures, tag)


def _split_settled(fs):
    # One look at each future: one that completes between two looks would
    # be in neither list, and never yielded. A function of its own: a loop
    # variable in the generator would keep the last future alive.
    finished, pending = [], []
    for f in fs:
        (finished if _settled(f) else pending).append(f)
    return finished, pending


def _take(items, index):
    item, items[index] = items[index], None
    return item


# fut.result(timeout), cancelling fut if that raises (a timeout, Ctrl-C, or
# the call's exception), as the stdlib's map does per item; one C call.
_result_or_cancel = hot.result_or_cancel


def map_with_buffer(executor, fn, iterables, timeout, buffersize, submit="submit"):
    """Executor.map with Python 3.14's semantics on every version: with
    buffersize, at most that many calls run ahead of the consumer and the
    input is read lazily; without it, every call is submitted at once.
    submit names the executor method that schedules fn(*args)."""
    if buffersize is not None and not isinstance(buffersize, int):
        raise TypeError("buffersize must be an integer or None")
    if buffersize is not None and buffersize < 1:
        raise ValueError("buffersize must be None or > 0")
    if timeout is not None:
        end_time = timeout + time.monotonic()
    args_iter = zip(*iterables, strict=False)  # the shortest ends the map, as in the stdlib
    if buffersize:
        fs = collections.deque(getattr(executor, submit)(fn, *args) for args in itertools.islice(args_iter, buffersize))
        # The iterator must not keep the executor alive (the stdlib's does not).
        executor_ref = weakref.ref(executor)
    else:
        # map() drives the submits from C: no Python frame per item.
        fs = collections.deque(map(getattr(executor, submit), itertools.repeat(fn), *iterables) if iterables else ())
    del executor

    def result_iterator():
        try:
            while fs:
                if buffersize:
                    ex = executor_ref()
                    args = next(args_iter, None) if ex is not None else None
                    if args is not None:
                        fs.append(getattr(ex, submit)(fn, *args))
                    del ex
                # No local names the future: once its result is yielded, the
                # consumer holds the only reference to that result.
                if timeout is None:
                    yield _result_or_cancel(fs.popleft())
                else:
                    yield _result_or_cancel(fs.popleft(), end_time - time.monotonic())
        finally:
            for future in fs:
                future.cancel()

    return result_iterator()


def pool_stats(s, workers):
    """The stats() keys every pool has, from its Go stats struct s (gopy's
    PoolStats or ProcPoolStats); workers: the live workers."""
    return {
        "workers": workers,
        "idle": s.Idle,
        "queued": s.Queued,
        "running": s.Running,
        "done": s.Done,
        "failed": s.Failed,
        "cancelled": s.Cancelled,
        "submitted": s.Submitted,
        "shutdown": s.Shutdown,
        "broken": s.Broken,
    }
