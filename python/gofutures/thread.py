"""ThreadPoolExecutor whose workers are Go goroutines that call Python.

Each worker is a goroutine locked to its own OS thread with one persistent
Python thread state; it takes the GIL only while Python runs and may run
several queued tasks per acquisition. Scheduling, shutdown and the broken
state live in the Go core; submit is native (no Python frame per task).
"""

import itertools
import math
import os
import threading
import weakref
from concurrent.futures import thread as _std_thread
from concurrent.futures._base import LOGGER
from concurrent.futures.thread import BrokenThreadPool  # the stdlib's class, re-exported

from . import _base, _fork, _progress
from ._constants import WAIT_SLICE
from ._core import cold, hot
from ._fork import forked_child as _forked_child

__all__ = ["ThreadPoolExecutor", "BrokenThreadPool"]

# How long one cold-API join call may block; Ctrl-C is handled between calls.
_JOIN_SLICE_MS = round(WAIT_SLICE * 1000)

_executors = weakref.WeakSet()  # live executors, for the interpreter-exit join


def _join(join_once):
    while not join_once(_JOIN_SLICE_MS):
        pass


def _python_exit():
    # Runs before the interpreter joins its own threads and finalizes: every
    # worker must be done with its Python thread state before finalization,
    # and, as in the stdlib, the program waits for the queued work.
    if _forked_child():
        return
    hot._set_interpreter_exiting()
    for executor in list(_executors):
        executor.shutdown(wait=False)
    _join(cold.JoinAllThreadPools)


threading._register_atexit(_python_exit)


# The most workers a Go pool is asked for: a larger max_workers (the stdlib
# accepts any, 10**30 included) is one the pool never reaches anyway.
_WORKER_LIMIT = 2**31 - 1


def _worker_limit(max_workers):
    """The Go pool's worker limit for the stdlib's max_workers, which may be
    any real number: its pool starts a thread while it has fewer than
    max_workers, so 2.5 allows 3."""
    if max_workers >= _WORKER_LIMIT:
        return _WORKER_LIMIT
    if max_workers != max_workers:
        # The stdlib accepts NaN and then never starts a thread (its tasks
        # wait forever).
        raise ValueError("max_workers must be greater than 0, got %r" % (max_workers,))
    return math.ceil(max_workers)


def _default_max_workers():
    cpus = os.process_cpu_count() if hasattr(os, "process_cpu_count") else os.cpu_count()
    return min(32, (cpus or 1) + 4)


def _check_context(cls, initializer, initargs, ctxkwargs):
    """3.14's ThreadPoolExecutor(**ctxkwargs): they go to cls.prepare_context(),
    as in the stdlib, whose own takes none (so any is a TypeError, as there);
    before 3.14 there is no such argument. gofutures' workers run calls as the
    stdlib's default context does, so a subclass's prepare_context(), which
    would change how they run, is refused rather than silently ignored."""
    prepare = getattr(cls, "prepare_context", None)
    if prepare is None:
        if ctxkwargs:
            raise TypeError("ThreadPoolExecutor() got an unexpected keyword argument %r" % next(iter(ctxkwargs)))
        return
    if (
        prepare.__func__ is not _std_thread.ThreadPoolExecutor.prepare_context.__func__
        and cls._hooks_type is _WorkerHooks
    ):
        raise TypeError(
            "%s overrides prepare_context(): gofutures' thread pool runs each call "
            "in its own workers and cannot use another worker context "
            "(derive from concurrent.futures.ThreadPoolExecutor for that)" % cls.__name__
        )
    prepare(initializer, initargs, **ctxkwargs)


class _WorkerThread(threading._DummyThread):
    """The threading.Thread that threading.current_thread() returns inside a
    task, and that executor._threads lists: named as the stdlib names its
    workers; join() waits for the worker to stop."""

    def __init__(self, name):
        super().__init__()
        self.name = name
        self._gf_stopped = threading.Event()

    def is_alive(self):
        return not self._gf_stopped.is_set()

    def join(self, timeout=None):
        if self is threading.current_thread():
            raise RuntimeError("cannot join current thread")
        self._gf_stopped.wait(timeout)


class _WorkerHooks:
    """What a worker runs, on its own thread, when it starts and stops. The Go
    pool holds this object (not the executor, so that an executor that is
    dropped can be garbage collected as the stdlib's can)."""

    __slots__ = ("initargs", "initializer", "prefix", "threads")

    def __init__(self, prefix, initializer, initargs):
        self.prefix, self.initializer, self.initargs = prefix, initializer, initargs
        self.threads = set()  # the executor's _threads

    def start(self, index):
        self.threads.add(_WorkerThread("%s_%d" % (self.prefix, index)))

    def init(self, index):
        if self.initializer is not None:
            try:
                self.initializer(*self.initargs)
            except BaseException:
                LOGGER.critical("Exception in initializer:", exc_info=True)
                raise

    def stop(self, index, retired):
        with threading._active_limbo_lock:
            thread = threading._active.pop(threading.get_ident(), None)
        if isinstance(thread, _WorkerThread):
            thread._gf_stopped.set()
            if retired:
                # An extra worker of a growing pool, whose wait ended: _threads
                # lists the pool's workers, not every worker it ever had.
                # Workers that stop at shutdown stay listed, as the stdlib's do.
                self.threads.discard(thread)


class ThreadPoolExecutor(hot.ThreadPoolBase, _std_thread.ThreadPoolExecutor):
    """An Executor that runs calls on a pool of at most max_workers threads.

    Drop-in for concurrent.futures.ThreadPoolExecutor (and an instance of
    it, so asyncio accepts it as a default executor).
    """

    _counter = itertools.count().__next__
    # What each worker runs on its own thread (gofutures.interpreter's pool
    # derives it to give each worker an interpreter of its own).
    _hooks_type = _WorkerHooks
    # Whether the workers run Python in parallel (each in an interpreter with
    # its own GIL): the binding then keeps Go's scheduler out of their way
    # (pybind/scheduler.go).
    _parallel_workers = False

    def __new__(cls, *args, **kwargs):
        if _forked_child() and not issubclass(cls, _fork.ThreadPoolInChild):
            # A fork of a process that loaded gofutures: no Go core here.
            cls = _InChild
        return super().__new__(cls)

    def __init__(
        self,
        max_workers=None,
        thread_name_prefix="",
        initializer=None,
        initargs=(),
        *,
        grow_on_block=False,
        **ctxkwargs,
    ):
        """grow_on_block (gofutures only): while a task waits for a future,
        the pool may start one more worker in its place, so that tasks that
        submit to their own pool and wait (fork-join style) finish instead of
        raising DeadlockError. The extra workers exit when the waits end.
        ctxkwargs (3.14+): for prepare_context(), as in the stdlib."""
        if max_workers is None:
            max_workers = _default_max_workers()
        if max_workers <= 0:
            raise ValueError("max_workers must be greater than 0")
        if initializer is not None and not callable(initializer):
            raise TypeError("initializer must be a callable")
        _check_context(type(self), initializer, initargs, ctxkwargs)
        if not isinstance(grow_on_block, bool):
            raise TypeError("grow_on_block must be True or False, got %r" % (grow_on_block,))
        self._max_workers = max_workers
        self._thread_name_prefix = thread_name_prefix or ("ThreadPoolExecutor-%d" % self._counter())
        self._initializer = initializer
        self._initargs = initargs
        self._shutdown = False
        # initargs as given: as in the stdlib, one that is no iterable fails
        # in the workers' initializer call (and breaks the pool), not here.
        hooks = self._hooks_type(self._thread_name_prefix, initializer, initargs)
        self._threads = hooks.threads
        self._bind(
            cold.NewThreadPool(
                _worker_limit(max_workers), str(self._thread_name_prefix), grow_on_block, self._parallel_workers
            ),
            _base.Future,
            hooks,
        )
        _executors.add(self)

    def map(self, fn, *iterables, timeout=None, chunksize=1, buffersize=None, progress=False):
        """Returns an iterator equivalent to map(fn, *iterables), with the calls
        made on the pool; chunksize is accepted and ignored, as by the stdlib's
        thread pool; buffersize bounds how far the calls run ahead.

        progress (gofutures only): True, a dict of tqdm keyword arguments or
        a tqdm-like object shows a bar counting the results received; see
        gofutures.progress. Needs tqdm: pip install 'gofutures[progress]'."""
        if progress is not False:
            return _progress.track_map(
                progress,
                iterables,
                lambda: self.map(fn, *iterables, timeout=timeout, chunksize=chunksize, buffersize=buffersize),
            )
        return _base.map_with_buffer(self, fn, iterables, timeout, buffersize)

    def shutdown(self, wait=True, *, cancel_futures=False):
        """Stop accepting work; with cancel_futures, cancel what is still
        queued; with wait, return only once every worker has exited."""
        self._shutdown = True
        self._close(cancel_futures)
        if wait:
            pool_id = self._pool_id
            _join(lambda ms: cold.JoinThreadPool(pool_id, ms))

    shutdown.__doc__ = _std_thread.ThreadPoolExecutor.shutdown.__doc__ or shutdown.__doc__

    @property
    def _broken(self):
        # The stdlib's attribute: False, or why the pool is broken.
        if cold.ThreadPoolStats(self._pool_id).Broken:
            return "A thread initializer failed, the thread pool is not usable anymore"
        return False

    def stats(self):
        """A snapshot of the pool's counters from the Go core (gofutures
        only): workers alive, idle; tasks queued, running, done (of which
        failed) and cancelled before they ran; submitted in all."""
        s = cold.ThreadPoolStats(self._pool_id)
        return _base.pool_stats(s, s.Live)


class _InChild(_fork.ThreadPoolInChild, ThreadPoolExecutor):
    """ThreadPoolExecutor in a forked child of a process that loaded
    gofutures: the stdlib's pool (see _fork)."""
