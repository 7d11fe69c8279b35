"""ProcessPoolExecutor on worker processes started and supervised by Go.

Data flow:

    submit(fn, *args)                      worker process (_child/worker.py, plain Python)
      pickle (fn, args, kwargs)  --TASK frame, fd 3-->  unpickle, call
      Future (native)                                   pickle result / exception
      Go queue -> worker           <--RESULT/ERROR, fd 4--
        (short calls are pipelined: a worker is sent the next ones
        before it answers the one it runs, and hands them back if that
        one runs long; gofutures/procpipeline.go, _child/worker.py: _TaskPipe)
      supervisor goroutine: every outcome (kind, bytes) -> the binding's
        deliver (pybind/procpool.go), one way back:
        a future nobody observes (no done-callback, no stdlib wait()) is
        finished at once without the GIL, the outcome parked in it, built
        by the first result() / exception() that asks (pybind/future.c);
        an observed one goes to the results worker (holds the GIL), which
        builds it and completes the future, telling waiters and running
        callbacks. Both build it in one place (pybind/outcome.c: unpickle,
        or _outcome.build for a break, a call that failed alone, a value
        that cannot be unpickled)

How workers start follows mp_context, as in the stdlib. With 'fork' (the
default on Linux before 3.14) they are forks of this process, made when the
first task arrives, so they inherit its memory as it is then (globals,
modules, open data, multiprocessing objects in initargs); the child runs
_child/worker.py's run_forked in pure Python and never calls into the Go runtime it
inherited (pybind/fork.c). With 'spawn' or 'forkserver' they are forked by
the zygote, a helper process started once by exec of this interpreter that
never loads the Go runtime (_child/zygote.py), or, with GOFUTURES_ZYGOTE=0 or when
the zygote cannot serve, started by exec of this interpreter. A worker that dies is noticed at once by
its supervisor goroutine (its pipe closes, then its exit status is read):
the pool breaks as the stdlib's does and every pending future fails with
BrokenProcessPool saying which worker died, how, and what it was running.

Zygote and exec workers re-create the parent as multiprocessing's spawn
does, and multiprocessing objects in initargs (a Queue for logging, a Lock)
reach them as they reach spawned children (see _spawning.py), so they must
come from a spawn or forkserver context there. Workers start on demand, one
per task that finds no idle worker (as the stdlib's spawn and forkserver
pools), or all at the first task with 'fork' (as the stdlib's fork pools).

A call whose pickle cannot be loaded in the worker, or whose result cannot
be loaded here, fails with BrokenProcessPool as in the stdlib (its cause shows the
loading error), but only that call does: the pool and its other calls
go on, where the stdlib's pool breaks.

Opt-in extras (gofutures only; off by default, and then the pool behaves
as the stdlib's): survive=True (a dead worker fails only its call, with
WorkerDiedError, and is replaced), task_timeout= (a call running longer
has its worker killed: TaskTimeoutError), kill_task(future) (stop a running
call), max_worker_memory= (recycle a worker that grew too big), stats().
"""

import itertools
import json
import multiprocessing.spawn
import os
import pickle
import signal
import sys
import threading
import time
from concurrent.futures import process as _std_process
from concurrent.futures.process import BrokenProcessPool, _ExceptionWithTraceback  # noqa: F401

from . import _base, _bigpayload, _childstart, _fork, _outcome, _pickling, _progress, _spawning
from ._child import worker as _worker
from ._core import cold, go, hot
from ._fork import forked_child as _forked_child
from ._procextras import check_extras, check_worker_count, timeout_ns
from .thread import _join

__all__ = ["ProcessPoolExecutor", "BrokenProcessPool"]

hot.set_outcome_builder(_outcome.build, _bigpayload.loads)


def _python_exit():
    # As the stdlib, the program waits for queued work; and no results worker
    # may hold a Python thread state when the interpreter finalizes.
    if not _forked_child():
        _join(cold.JoinAllProcessPools)


threading._register_atexit(_python_exit)


class _WorkerProcess:
    """A handle on a worker process, for the stdlib's _processes: it can be
    signalled (terminate, kill), polled and joined. The Go supervisor reaps
    the process; a worker is alive until its pool has reaped it."""

    def __init__(self, pid, pool_id):
        self.pid = pid
        self._pool_id = pool_id

    def terminate(self):
        self._signal(signal.SIGTERM)

    def kill(self):
        self._signal(signal.SIGKILL)

    def _signal(self, sig):
        if self.is_alive():
            os.kill(self.pid, sig)

    def is_alive(self):
        return self.pid in _live_pids(self._pool_id)

    def join(self, timeout=None):
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.is_alive():
            if deadline is not None and time.monotonic() >= deadline:
                return
            time.sleep(0.005)

    def __repr__(self):
        return "<gofutures worker process pid=%d %s>" % (self.pid, "alive" if self.is_alive() else "exited")


def _worker_environ(config):
    # The Go runtime keeps the environment it saw when the library loaded;
    # workers must get os.environ as it is now, as the stdlib's do.
    try:
        env = ["%s=%s" % item for item in os.environ.items()]
        for entry in env:
            entry.encode("utf-8")
    except UnicodeError:  # a value that is not text: the runtime's copy
        config.InheritEnv = True
        return
    config.Env = go.Slice_string(env)


def _live_pids(pool_id):
    return list(cold.ProcessPoolPIDs(pool_id))


class _Hooks:
    """The pool's hooks: its results worker's start and stop (a thread the
    Go core runs, which completes observed futures with the GIL:
    pybind/worker.c) and, for a pool that forks its workers, what each
    forked child runs (forked_worker)."""

    __slots__ = ("_initargs", "_initializer")

    def __init__(self, initializer=None, initargs=()):
        self._initializer, self._initargs = initializer, initargs

    def forked_worker(self, number, task_fd, result_fd):
        """In a worker just forked from the pool's process: its worker loop;
        returns its exit code."""
        return _worker.run_forked(number, task_fd, result_fd, self._initializer, self._initargs)

    def start(self, index):
        pass

    def init(self, index):
        pass

    def stop(self, index, retired):
        with threading._active_limbo_lock:
            threading._active.pop(threading.get_ident(), None)


def _chunks(iterables, chunksize):
    # As the stdlib of this version, whose errors for a chunksize that is no
    # int differ: itertools.batched from 3.13 (TypeError), islice before
    # (ValueError).
    if sys.version_info >= (3, 13):
        yield from itertools.batched(zip(*iterables, strict=False), chunksize)
        return
    it = zip(*iterables, strict=False)
    while True:
        chunk = tuple(itertools.islice(it, chunksize))
        if not chunk:
            return
        yield chunk


class ProcessPoolExecutor(hot.ProcessPoolBase, _std_process.ProcessPoolExecutor):
    """An Executor that runs calls in a pool of at most max_workers worker
    processes. Drop-in for concurrent.futures.ProcessPoolExecutor.

    gofutures' opt-in keywords (the defaults keep the stdlib's behaviour):

    survive: True makes a worker that dies unexpectedly fail only the call
        it was running, with WorkerDiedError (a BrokenProcessPool), and be
        replaced; the pool goes on. Workers that keep dying while they
        start (3 in a row, no call completing in between: a crashing
        initializer) still break the pool, as without it.
    task_timeout: seconds; a call still running that long after it reached
        its worker has the worker killed (SIGKILL) and replaced, and fails
        with TaskTimeoutError. The pool goes on, with or without survive.
    max_worker_memory: bytes; a worker whose resident memory (VmRSS, read
        from /proc after each call; Linux only, ignored elsewhere) is above
        it is retired after that call and replaced, as max_tasks_per_child
        retires one.
    """

    def __new__(cls, *args, **kwargs):
        if _forked_child() and not issubclass(cls, _fork.ProcessPoolInChild):
            # A fork of a process that loaded gofutures: no Go core here.
            cls = _InChild
        return super().__new__(cls)

    def __init__(
        self,
        max_workers=None,
        mp_context=None,
        initializer=None,
        initargs=(),
        *,
        max_tasks_per_child=None,
        survive=False,
        task_timeout=None,
        max_worker_memory=None,
    ):
        if max_workers is None:
            max_workers = (os.process_cpu_count() if hasattr(os, "process_cpu_count") else os.cpu_count()) or 1
        else:
            if max_workers <= 0:
                raise ValueError("max_workers must be greater than 0")
            max_workers = check_worker_count(max_workers)
        if initializer is not None and not callable(initializer):
            raise TypeError("initializer must be a callable")
        if max_tasks_per_child is not None:
            if not isinstance(max_tasks_per_child, int):
                raise TypeError("max_tasks_per_child must be an integer")
            if max_tasks_per_child <= 0:
                raise ValueError("max_tasks_per_child must be >= 1")
            if mp_context is not None and mp_context.get_start_method() == "fork":
                raise ValueError(
                    "max_tasks_per_child is incompatible with the 'fork' "
                    "multiprocessing start method; supply a different mp_context."
                )
        extras = check_extras(survive, task_timeout, max_worker_memory)
        self._max_workers = max_workers
        if mp_context is None:
            # As the stdlib: max_tasks_per_child implies spawn; otherwise the
            # default context (fork on Linux before 3.14, then forkserver).
            mp_context = multiprocessing.get_context("spawn" if max_tasks_per_child else None)
        self._mp_context = mp_context
        self._initializer, self._initargs = initializer, initargs
        self._shutdown_called = False
        start_method = mp_context.get_start_method(allow_none=False)
        self._forks_pending = start_method == "fork"  # the first submit waits for them
        config = cold.ProcessPoolConfig(Workers=max_workers)
        config.Survive, config.TaskTimeoutNs, config.MaxWorkerMemory = extras
        if start_method == "fork":
            config.Fork = True
            self._start(config, _Hooks(initializer, tuple(initargs)))
            return
        # What multiprocessing's spawn sends its children: sys.path, the
        # working directory, how to re-import __main__, the authkey.
        preparation = multiprocessing.spawn.get_preparation_data("gofutures-worker")
        preparation["authkey"] = bytes(preparation["authkey"])
        init = {"initializer": initializer, "initargs": tuple(initargs), "start_method": start_method}
        child_fds = _spawning.ChildFds()
        try:
            payload = pickle.dumps(preparation) + _spawning.dumps_init(init, initializer, child_fds)
        except BaseException:
            child_fds.close()
            raise
        config.Command = go.Slice_string(_childstart.worker_command())
        config.Init = go.Slice_byte.from_bytes(payload)
        config.MaxTasksPerChild = max_tasks_per_child or 0
        config.Lazy = True
        _worker_environ(config)
        zygote = _childstart.zygote_command()
        if zygote:
            config.ZygoteCommand = go.Slice_string(zygote)
            config.ZygotePrepare = json.dumps(
                _childstart.preparation(sys.modules, preparation.get("init_main_from_path"))
            )
        config.Fds = go.Slice_int(child_fds.take())  # the pool's from here on, even if it fails
        self._start(config, _Hooks())

    def _start(self, config, hooks):
        try:
            pool_id = cold.NewProcessPool(config)
        except RuntimeError as exc:  # gopy's wrapping of the Go error
            raise OSError("cannot start the process pool: %s" % exc) from None
        self._bind(pool_id, _base.Future, hooks)

    def _broken_error(self):
        return BrokenProcessPool(
            "A child process terminated abruptly, the process pool is not usable anymore: %s" % self._broken_message()
        )

    def submit(self, fn, /, *args, **kwargs):
        """Schedules fn(*args, **kwargs) in a worker process; returns a Future."""
        return self._submit_call(fn, args, kwargs, False)

    def submit_with_timeout(self, timeout, fn, /, *args, **kwargs):
        """As submit(fn, *args, **kwargs), with a time limit of this call's
        own (gofutures only), in seconds, in place of the pool's
        task_timeout: past it the worker is killed and replaced and the
        future raises TaskTimeoutError."""
        return self._submit_call(fn, args, kwargs, False, timeout_ns("timeout", timeout))

    def _submit_chunk(self, fn, chunk):
        # One message runs fn(*args) for every args in chunk; the worker
        # answers with the list of results (as the stdlib's _process_chunk).
        return self._submit_call(fn, chunk, None, True)

    def _submit_call(self, fn, args, kwargs, chunked, timeout_ns=0):
        if self._shutdown_called:
            broken = self._broken_message()
            if broken is not None:
                raise self._broken_error()
            raise RuntimeError("cannot schedule new futures after shutdown")
        try:
            # A big call's payload is a reference to the shared memory
            # behind fd (_bigpayload), which the Go pool owns once given.
            payload, fd = _pickling.payload((fn, args, kwargs, chunked), self._spare_memfd)
        except Exception as exc:
            # Only this call fails, with the pickling error.
            self._forked_at_first_submit()
            future = _base.Future()
            future.set_running_or_notify_cancel()
            future.set_exception(exc)
            return future
        if fd >= 0:
            future = self._submit_payload_limited(payload, timeout_ns, fd)
        elif timeout_ns:
            future = self._submit_payload_limited(payload, timeout_ns)
        else:
            future = self._submit_payload(payload)
        if isinstance(future, int):
            raise self._broken_error()
        self._forked_at_first_submit()
        return future

    def _forked_at_first_submit(self):
        # A fork pool's workers are forks of the program as it is at its
        # first submit, whatever that submit holds (the stdlib's start them
        # there), and that submit returns once they exist: see
        # gofutures.ProcessPool.ForksDone.
        if self._forks_pending:
            self._forks_pending = False
            self._start_workers()
            self._await_forks()

    def map(self, fn, *iterables, timeout=None, chunksize=1, buffersize=None, progress=False):
        """Returns an iterator equivalent to map(fn, *iterables), computed in
        the worker processes, chunksize calls per message.

        progress (gofutures only): True, a dict of tqdm keyword arguments or
        a tqdm-like object shows a bar counting the results received (one
        per item, whatever the chunksize); see gofutures.progress."""
        if progress is not False:
            return _progress.track_map(
                progress,
                iterables,
                lambda: self.map(fn, *iterables, timeout=timeout, chunksize=chunksize, buffersize=buffersize),
            )
        if chunksize < 1:
            raise ValueError("chunksize must be >= 1.")
        if chunksize == 1:
            return _base.map_with_buffer(self, fn, iterables, timeout, buffersize)
        results = _base.map_with_buffer(
            self, fn, [_chunks(iterables, chunksize)], timeout, buffersize, submit="_submit_chunk"
        )
        return itertools.chain.from_iterable(results)

    def shutdown(self, wait=True, *, cancel_futures=False):
        """Stop accepting work; with cancel_futures cancel what is queued;
        with wait return once every worker has exited."""
        self._shutdown_called = True
        self._close(cancel_futures, 0)
        if wait:
            pool_id = self._pool_id
            _join(lambda ms: cold.JoinProcessPool(pool_id, ms))

    def kill_task(self, future):
        """Stops the call of future (gofutures only): if it is running, its
        worker process is killed (SIGKILL) and replaced, and the future ends
        cancelled (result() raises CancelledError); if it is still queued,
        it is cancelled as by future.cancel(). Returns False if the call has
        already finished (or its result is on its way), True otherwise.
        future.cancel() itself keeps the stdlib's meaning (never a running
        call)."""
        if not isinstance(future, _base.Future):
            raise TypeError("kill_task() takes a future returned by this executor's submit(), got %r" % (future,))
        if future.done():
            return False
        if future.cancel():
            return True
        return self._kill_task(future)

    def stats(self):
        """A snapshot of the pool's counters from the Go core (gofutures
        only), with ThreadPoolExecutor.stats()'s keys: workers alive, idle;
        calls queued, running, done (of which failed) and cancelled;
        submitted in all. Plus: killed (workers killed for their call by
        task_timeout or kill_task), died (worker deaths survived with
        survive=True), recycled (workers retired over max_worker_memory),
        replaced (the sum: workers that left the pool mid-life)."""
        s = cold.ProcessPoolStats(self._pool_id)
        return {
            **_base.pool_stats(s, s.Workers),
            "killed": s.Killed,
            "died": s.Died,
            "recycled": s.Recycled,
            "replaced": s.Killed + s.Died + s.Recycled,
        }

    def terminate_workers(self):
        """Python 3.14's terminate_workers(): SIGTERM every worker at once;
        queued tasks are cancelled, running ones fail with BrokenProcessPool."""
        self._shutdown_called = True
        self._close(True, signal.SIGTERM)

    def kill_workers(self):
        """Python 3.14's kill_workers(): as terminate_workers, with SIGKILL."""
        self._shutdown_called = True
        self._close(True, signal.SIGKILL)

    @property
    def _broken(self):
        # The stdlib's attribute: False, or why the pool is broken.
        return self._broken_message() or False

    @property
    def _processes(self):
        # The stdlib's {pid: process} of live workers; these handles can be
        # signalled (terminate, kill), polled and joined (_WorkerProcess).
        pool_id = self._pool_id
        return {pid: _WorkerProcess(pid, pool_id) for pid in _live_pids(pool_id)}

    def _worker_pids(self):
        return _live_pids(self._pool_id)


class _InChild(_fork.ProcessPoolInChild, ProcessPoolExecutor):
    """ProcessPoolExecutor in a forked child of a process that loaded
    gofutures: the stdlib's pool (see _fork)."""
