"""gofutures in a forked child of a process that loaded it.

A child made by os.fork(), a multiprocessing 'fork' context, or any other
fork of a process whose Go runtime was loaded has one thread and none of
the runtime's: a call into Go there could wait forever. So in such a child
(forked_child(), a flag the native library sets in every child it sees
forked, pybind/fork.c) gofutures never calls into Go:

- ThreadPoolExecutor and ProcessPoolExecutor made in the child are the
  stdlib's pools (the mixins below), still instances of gofutures' classes,
  with gofutures' extra arguments where they can be honoured without the
  core (map's buffersize= and progress=) and a clear error where they
  cannot (grow_on_block, survive, task_timeout, max_worker_memory, stats);
- Future() makes a detached future: a gofutures.Future whose methods are
  the stdlib's (pybind/future.c); wait() and as_completed() are the
  stdlib's (with progress=);
- pools and futures the child inherited from the parent refuse every use
  with a RuntimeError saying so, and their release at the child's exit
  leaves the parent's pools alone.

The parent's pools are not the child's to use: its workers, pipes and zygote
belong to the parent, which goes on using them.
"""

import importlib

# By their full names: a program may have put gofutures in the place of
# concurrent.futures in sys.modules.
_std = importlib.import_module("concurrent.futures._base")
_std_process = importlib.import_module("concurrent.futures.process")
_std_thread = importlib.import_module("concurrent.futures.thread")

# After the stdlib's modules are taken by name above.
from . import _progress  # noqa: E402
from ._core import hot  # noqa: E402

forked_child = hot.forked_child  # () -> bool, the native flag (pybind/fork.c)

_NO_CORE = (
    "%s needs gofutures' Go core, which cannot run in a process forked from one that had loaded "
    "it (this one): create the pool in a process that does not fork after loading gofutures, "
    "or do without it here"
)


def wait(fs, timeout=None, return_when=_std.ALL_COMPLETED):
    return _std.wait(fs, timeout, return_when)


def as_completed(fs, timeout=None, progress=False):
    if progress is False:
        return _std.as_completed(fs, timeout)
    return _progress.track_completions(fs, timeout, progress)


class ThreadPoolInChild:
    """Mixed in before gofutures.ThreadPoolExecutor for the pools a forked
    child makes (thread.py): the stdlib's pool. Still an instance of
    gofutures' (and of the stdlib's) class, as asyncio's
    set_default_executor() requires; gofutures' map (buffersize=,
    progress=) runs over the stdlib's submit."""

    _broken = False  # the stdlib's attribute, in place of gofutures' property

    def __init__(self, max_workers=None, thread_name_prefix="", initializer=None, initargs=(), *, grow_on_block=False):
        if grow_on_block:
            raise RuntimeError(_NO_CORE % "ThreadPoolExecutor(grow_on_block=True)")
        _std_thread.ThreadPoolExecutor.__init__(self, max_workers, thread_name_prefix, initializer, initargs)

    submit = _std_thread.ThreadPoolExecutor.submit
    shutdown = _std_thread.ThreadPoolExecutor.shutdown

    def stats(self):
        raise RuntimeError(_NO_CORE % "stats()")


class ProcessPoolInChild:
    """Mixed in before gofutures.ProcessPoolExecutor for the pools a forked
    child makes (process.py): the stdlib's pool, as ThreadPoolInChild."""

    _broken = False  # the stdlib's attributes, in place of gofutures' properties
    _processes = None

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
        if survive or task_timeout is not None or max_worker_memory is not None:
            raise RuntimeError(_NO_CORE % "ProcessPoolExecutor(survive=, task_timeout=, max_worker_memory=)")
        _std_process.ProcessPoolExecutor.__init__(
            self, max_workers, mp_context, initializer, initargs, max_tasks_per_child=max_tasks_per_child
        )

    submit = _std_process.ProcessPoolExecutor.submit
    shutdown = _std_process.ProcessPoolExecutor.shutdown

    def _submit_chunk(self, fn, chunk):
        # What gofutures' map submits for chunksize > 1.
        return self.submit(_std_process._process_chunk, fn, chunk)

    def _worker_pids(self):
        return list(self._processes or ())

    def _needs_core(self, *args, **kwargs):
        raise RuntimeError(_NO_CORE % "this method")

    stats = kill_task = submit_with_timeout = _needs_core
    if not hasattr(_std_process.ProcessPoolExecutor, "terminate_workers"):  # before 3.14
        terminate_workers = kill_workers = _needs_core
    else:
        terminate_workers = _std_process.ProcessPoolExecutor.terminate_workers
        kill_workers = _std_process.ProcessPoolExecutor.kill_workers
