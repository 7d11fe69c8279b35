"""How initializer arguments that can only be inherited reach the workers.

multiprocessing objects (a Queue, a Lock, an Event, a Pipe's connections)
refuse to be pickled except while a process is being spawned: their
__getstate__ asks multiprocessing for the "spawning Popen", and their file
descriptors travel through it (DupFd) to the child at known fd numbers. The
stdlib's spawn pools get this for initargs because each worker is a spawned
multiprocessing Process.

gofutures' workers are exec'd by the Go supervisor (or forked by the
zygote with the same descriptors) instead, so while it
pickles the init payload, ChildFds stands in for that Popen: each descriptor
an object hands it is duplicated, and the pickle records the number the
worker will find it under (5, 6, ...: after the task and result pipes on 3
and 4). The Go pool passes the duplicates to every worker it starts and
closes them when the pool ends.

Only spawn-style objects can cross an exec: a Lock or Queue made from a
'fork' context has already unlinked its semaphores, so multiprocessing
refuses to pickle it, with its own clear error.
"""

import collections
import contextlib
import io
import os
import pickle
from multiprocessing import context as _mp_context
from multiprocessing.popen_spawn_posix import _DupFd
from multiprocessing.reduction import ForkingPickler
from typing import ClassVar

import cloudpickle

from . import _pickling
from ._constants import FIRST_FD  # the worker's first passed descriptor (gofutures/procpool.go: Files)


class ChildFds:
    """The spawning Popen that multiprocessing objects see while the init
    payload is pickled. Owns the duplicated descriptors until they are handed
    to the Go pool (take)."""

    DupFd = _DupFd  # what the child unpickles: detach() gives the fd number

    def __init__(self):
        self._fds = []

    def duplicate_for_child(self, fd):
        self._fds.append(os.dup(fd))
        return FIRST_FD + len(self._fds) - 1

    def take(self):
        """The descriptors, in worker fd order; the caller now owns them."""
        fds, self._fds = self._fds, []
        return fds

    def close(self):
        for fd in self.take():
            os.close(fd)


class _ValuePickler(cloudpickle.Pickler):
    # cloudpickle (a lambda or notebook initializer) plus multiprocessing's
    # reducers for Connection and friends.
    dispatch_table: ClassVar = collections.ChainMap(ForkingPickler._extra_reducers, cloudpickle.Pickler.dispatch_table)


def dumps_init(obj, initializer, child_fds):
    """Pickle the init payload as multiprocessing would for a spawned child;
    descriptors it needs are collected in child_fds. The initializer goes by
    reference when it can (so that the globals it sets are the ones the
    tasks read), by value otherwise, as _pickling.dumps decides for calls."""
    if not _pickling.needs_value(initializer):
        try:
            return _dump(ForkingPickler, obj, child_fds)
        except (pickle.PicklingError, AttributeError, TypeError):
            child_fds.close()  # the retry collects its own
    return _dump(_ValuePickler, obj, child_fds)


def _dump(pickler, obj, child_fds):
    buf = io.BytesIO()
    with _spawning(child_fds):
        pickler(buf).dump(obj)
    return buf.getvalue()


@contextlib.contextmanager
def _spawning(popen):
    _mp_context.set_spawning_popen(popen)
    try:
        yield
    finally:
        _mp_context.set_spawning_popen(None)
