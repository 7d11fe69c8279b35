"""gofutures in a forked child of a process that loaded it.

A child made by os.fork(), a multiprocessing 'fork' context, or any other
fork of a process whose Go runtime was loaded has one thread and none of
the runtime's: a call into Go there could wait forever. So in such a child
(forked_child(), a flag the native library sets in every child it sees
forked, pybind/fork.c) gofutures never calls into Go:

- ThreadPoolExecutor and ProcessPoolExecutor made in the child are these
  classes: the stdlib's pools, with gofutures' extra arguments where they
  can be honoured without the core (map's buffersize= and progress=) and a
  clear error where they cannot (grow_on_block, survive, task_timeout,
  max_worker_memory);
- Future() makes a detached future: a gofutures.Future whose methods are
  the stdlib's (pybind/future.c); wait() and as_completed() are the
  stdlib's (with progress=);
- pools and futures the child inherited from the parent refuse every use
  with a RuntimeError saying so, and their release at the child's exit
  leaves the parent's pools alone.

The parent's pools are not the child's to use: its workers, pipes and zygote
belong to the parent, which goes on using them.
"""
import functools
import importlib
import itertools

# By their full names: a program may have put gofutures in the place of
# concurrent.futures in sys.modules.
_std = importlib.import_module("concurrent.futures._base")
_std_process = importlib.import_module("concurrent.futures.process")
_std_thread = importlib.import_module("concurrent.futures.thread")

from . import _progress
from ._core import hot

forked_child = hot.forked_child  # () -> bool, the native flag (pybind/fork.c)

_NO_CORE = ("%s needs gofutures' Go core, which cannot run in a process forked from one that had loaded "
            "it (this one): create the pool in a process that does not fork after loading gofutures, "
            "or do without it here")


def wait(fs, timeout=None, return_when=_std.ALL_COMPLETED):
    return _std.wait(fs, timeout, return_when)


def as_completed(fs, timeout=None, progress=False):
    if progress is False:
        return _std.as_completed(fs, timeout)
    return _progress.track_completions(fs, timeout, progress)


def _lazy_map(executor, fn, iterables, timeout, chunksize, buffersize):
    # 3.14's map(buffersize=) on every version, as gofutures offers it.
    from . import _base
    if chunksize == 1:
        return _base.map_with_buffer(executor, fn, iterables, timeout, buffersize)
    chunks = _std_process._get_chunks(*iterables, chunksize=chunksize)
    results = _base.map_with_buffer(executor, functools.partial(_std_process._process_chunk, fn),
                                    [chunks], timeout, buffersize)
    return itertools.chain.from_iterable(results)


class ThreadPoolExecutor(_std_thread.ThreadPoolExecutor):
    """gofutures.ThreadPoolExecutor in a forked child: the stdlib's pool."""

    def __init__(self, max_workers=None, thread_name_prefix="", initializer=None, initargs=(),
                 *, grow_on_block=False):
        if grow_on_block:
            raise RuntimeError(_NO_CORE % "ThreadPoolExecutor(grow_on_block=True)")
        super().__init__(max_workers, thread_name_prefix, initializer, initargs)

    def map(self, fn, *iterables, timeout=None, chunksize=1, buffersize=None, progress=False):
        if progress is not False:
            return _progress.track_map(progress, iterables, lambda: self.map(
                fn, *iterables, timeout=timeout, chunksize=chunksize, buffersize=buffersize))
        if buffersize is None:
            return super().map(fn, *iterables, timeout=timeout, chunksize=chunksize)
        return _lazy_map(self, fn, iterables, timeout, 1, buffersize)


class ProcessPoolExecutor(_std_process.ProcessPoolExecutor):
    """gofutures.ProcessPoolExecutor in a forked child: the stdlib's pool."""

    def __init__(self, max_workers=None, mp_context=None, initializer=None, initargs=(),
                 *, max_tasks_per_child=None, survive=False, task_timeout=None,
                 max_worker_memory=None):
        if survive or task_timeout is not None or max_worker_memory is not None:
            raise RuntimeError(_NO_CORE % "ProcessPoolExecutor(survive=, task_timeout=, max_worker_memory=)")
        super().__init__(max_workers, mp_context, initializer, initargs,
                         max_tasks_per_child=max_tasks_per_child)

    def map(self, fn, *iterables, timeout=None, chunksize=1, buffersize=None, progress=False):
        if progress is not False:
            return _progress.track_map(progress, iterables, lambda: self.map(
                fn, *iterables, timeout=timeout, chunksize=chunksize, buffersize=buffersize))
        if buffersize is None:
            return super().map(fn, *iterables, timeout=timeout, chunksize=chunksize)
        if chunksize < 1:
            raise ValueError("chunksize must be >= 1.")
        return _lazy_map(self, fn, iterables, timeout, chunksize, buffersize)
